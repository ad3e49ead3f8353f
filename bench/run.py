"""protoserve vs MLServer vs Flask+gunicorn vs bare grpc.aio servers, same model, same load, one run.

    .venv/bin/python -m bench.run                 # everything (installs the peers' venvs on first run)
    .venv/bin/python -m bench.run --targets protoserve,echo,proto-floor --duration 3
    .venv/bin/python -m bench.run --targets flask-gunicorn --points c64x1,c1x1

Each target serves iris-knn (MLServer's sklearn runtime and the Flask app get the same fitted
estimator, exported with joblib) over the Open Inference Protocol: the gRPC targets are driven by
bench/loadgen.py with the same typed FP64 request, Flask+gunicorn over REST/JSON by
bench/http_loadgen.py with the same rows as a prebuilt JSON body, at concurrency 1, 16, 64 (1 row)
and 64 × 32 rows. Server CPU per request is the CPU time of the server's process tree during the
measured window, over the requests done.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import joblib
import numpy as np
from inference import grpc_predict_v2_pb2 as v2
from sklearn.datasets import load_iris

from bench import http_loadgen, loadgen
from protoserve_models.builtin.build import build_models
from protoserve_models.repository import PROJECT_TRUSTED_TYPES, load_model_file
from protoserve_runtime.redis_server import free_port

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
WORK = BENCH / ".work"
MLSERVER_VENV = BENCH / ".venv-mlserver"
# uvloop 0.22+ breaks MLServer 1.7.1's parallel workers (get_event_loop with no loop); 0.21 works.
MLSERVER_PINS = ["mlserver==1.7.1", "mlserver-sklearn==1.7.1", "uvloop==0.21.0"]
FLASK_VENV = BENCH / ".venv-flask"
FLASK_PINS = ["flask==3.1.3", "gunicorn==27.0.1"]
MODEL = "iris-knn"
POINTS = "c1x1,c16x1,c64x1,c64x32"  # concurrency x rows per request
TARGETS = "echo,proto-floor,protoserve,mlserver-pw0,mlserver-pw1,mlserver-pw2,flask-gunicorn"


@dataclass(frozen=True)
class Wire:
    """How a target is driven: the name shown in the table, its readiness probe and load client."""

    name: str
    ready: Callable[[str], bool]
    client: loadgen.Client


GRPC = Wire("v2 gRPC", loadgen.server_ready, loadgen.grpc_client)
REST = Wire("v2 REST/JSON", http_loadgen.server_ready, http_loadgen.client)


@dataclass
class Target:
    name: str
    command: list[str]
    env: dict[str, str]
    address: str
    request: Callable[[int], bytes]
    wire: Wire = GRPC


def iris_rows(rows: int) -> np.ndarray:
    data = load_iris().data
    return np.resize(data, (rows, data.shape[1])).astype(np.float64)


def infer_request(rows: int, outputs: tuple[str, ...] = ()) -> bytes:
    request = v2.ModelInferRequest(model_name=MODEL)
    tensor = request.inputs.add(name="input", datatype="FP64", shape=[rows, 4])
    tensor.contents.fp64_contents.extend(iris_rows(rows).ravel().tolist())
    for name in outputs:
        request.outputs.add(name=name)
    return request.SerializeToString()


def infer_json(rows: int) -> bytes:
    """The same rows as infer_request, as an Open Inference Protocol REST body."""
    tensor = {"name": "input", "datatype": "FP64", "shape": [rows, 4], "data": iris_rows(rows).ravel().tolist()}
    return json.dumps({"inputs": [tensor]}).encode()


def parse_points(text: str) -> list[tuple[int, int]]:
    """"c64x1,c1x1" -> [(64, 1), (1, 1)]: (concurrency, rows per request)."""
    points = []
    for item in text.split(","):
        concurrency, _, rows = item.strip().removeprefix("c").partition("x")
        if not (concurrency.isdigit() and rows.isdigit() and int(concurrency) > 0 and int(rows) > 0):
            raise argparse.ArgumentTypeError(f"point {item!r} is not cNxM (concurrency N, M rows per request)")
        points.append((int(concurrency), int(rows)))
    return points


def models() -> Path:
    repository = WORK / "models"
    build_models(repository, [MODEL])
    return repository


def ensure_venv(venv: Path, pins: list[str], executable: str) -> Path:
    """venv/bin/executable, creating venv with pins on first use."""
    path = venv / "bin" / executable
    if not path.exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        # The same scikit-learn as protoserve's, so that the exported estimator loads unchanged.
        pins = [*pins, f"scikit-learn=={importlib.metadata.version('scikit-learn')}"]
        subprocess.run([str(venv / "bin" / "pip"), "install", "--quiet", *pins], check=True)
    return path


def ensure_mlserver() -> Path:
    return ensure_venv(MLSERVER_VENV, MLSERVER_PINS, "mlserver")


def export_estimator(repository: Path, path: Path) -> Path:
    """The fitted iris-knn estimator as a plain joblib file, for the peers' own loaders."""
    path.parent.mkdir(parents=True, exist_ok=True)
    joblib.dump(load_model_file(repository / MODEL / "1", PROJECT_TRUSTED_TYPES).estimator, path)
    return path


def mlserver_dir(repository: Path, parallel_workers: int, port: int) -> Path:
    """A model folder for MLServer: the same fitted estimator, adaptive batching on."""
    folder = WORK / f"mlserver-pw{parallel_workers}"
    model_dir = folder / MODEL
    export_estimator(repository, model_dir / "model.joblib")
    (model_dir / "model-settings.json").write_text(json.dumps({
        "name": MODEL,
        "implementation": "mlserver_sklearn.SKLearnModel",
        "max_batch_size": 32,
        "max_batch_time": 0.001,
        "parameters": {"uri": "./model.joblib", "version": "1"},
    }))
    (folder / "settings.json").write_text(json.dumps({
        "host": "127.0.0.1", "grpc_port": port, "http_port": free_port(), "metrics_port": free_port(),
        "parallel_workers": parallel_workers, "debug": False,
    }))
    return folder


def targets(names: list[str], repository: Path) -> list[Target]:
    out = []
    for name in names:
        port = free_port()
        address = f"127.0.0.1:{port}"
        if name == "protoserve":
            env = {"PROTOSERVE_MODEL_REPOSITORY": str(repository), "PROTOSERVE_INFERENCE_ADDRESS": address,
                   "PROTOSERVE_LOG_LEVEL": "warning"}
            out.append(Target(name, [sys.executable, "-m", "inference_svc.main"], env, address, infer_request))
        elif name.startswith("mlserver-pw"):
            folder = mlserver_dir(repository, int(name.removeprefix("mlserver-pw")), port)
            command = [str(ensure_mlserver()), "start", str(folder)]
            out.append(Target(name, command, {}, address, lambda rows: infer_request(rows, ("predict_proba",))))
        elif name == "echo":
            response = WORK / "echo-response.bin"
            response.write_bytes(echo_response())
            out.append(Target(name, [sys.executable, str(BENCH / "echo_server.py"), str(port), str(response)], {},
                              address, infer_request))
        elif name == "proto-floor":
            out.append(Target(name, [sys.executable, str(BENCH / "proto_floor_server.py"), str(port)], {},
                              address, infer_request))
        elif name == "flask-gunicorn":
            gunicorn = ensure_venv(FLASK_VENV, FLASK_PINS, "gunicorn")
            model_file = export_estimator(repository, WORK / "flask" / "model.joblib")
            # Sync workers (gunicorn's default, and what people run), one per core of this machine. No
            # control socket: gunicorn 27's default path is shared by every gunicorn of the user.
            command = [str(gunicorn), "-w", "2", "-b", address, "--no-control-socket", "--chdir", str(BENCH), "flask_app:app"]
            out.append(Target(name, command, {"BENCH_MODEL_FILE": str(model_file)},
                              f"http://{address}/v2/models/{MODEL}/infer", infer_json, REST))
        else:
            raise SystemExit(f"unknown target {name!r}")
    return out


def echo_response() -> bytes:
    """What protoserve answers for one row (so the echo server sends as many bytes)."""
    response = v2.ModelInferResponse(model_name=MODEL, model_version="1")
    label = response.outputs.add(name="label", datatype="BYTES", shape=[1])
    label.contents.bytes_contents.append(b"setosa")
    probabilities = response.outputs.add(name="probabilities", datatype="FP64", shape=[1, 3])
    probabilities.contents.fp64_contents.extend([1.0, 0.0, 0.0])
    return response.SerializeToString()


def measure(target: Target, server_pid: int, concurrency: int, rows: int, args: argparse.Namespace) -> dict[str, float]:
    point = loadgen.run(
        target.address, target.request(rows), concurrency, args.client_processes, args.warmup, args.duration, server_pid,
        target.wire.client,
    )
    return {
        "concurrency": concurrency, "rows": rows, "rps": point.rps, "rows_per_s": point.rps * rows,
        "p50_ms": point.percentile(50), "p99_ms": point.percentile(99),
        "cpu_ms_per_req": point.cpu_ms_per_request, "errors": point.errors,
    }


def run_target(target: Target, args: argparse.Namespace) -> list[dict[str, float | str]]:
    log = (WORK / f"{target.name}.log").open("wb")
    process = subprocess.Popen(target.command, env={**os.environ, **target.env}, cwd=ROOT, stdout=log, stderr=log)
    try:
        deadline = time.monotonic() + 180
        while not target.wire.ready(target.address):
            if process.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"{target.name} did not start; see {log.name}")
            time.sleep(0.5)
        results: list[dict[str, float | str]] = []
        for concurrency, rows in args.points:
            result = measure(target, process.pid, concurrency, rows, args)
            results.append({"target": target.name, "protocol": target.wire.name, **result})
            print_row(results[-1])
        return results
    finally:
        process.terminate()
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()


def print_row(r: dict[str, float | str]) -> None:
    point = f"c{int(r['concurrency'])} x {int(r['rows'])}"
    print(f"{r['target']:<14} {r['protocol']:<12} {point:<10} {r['rps']:>9.0f} {r['rows_per_s']:>10.0f} {r['p50_ms']:>8.2f} "
          f"{r['p99_ms']:>8.2f} {r['cpu_ms_per_req']:>10.3f} {int(r['errors']):>6}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--targets", default=TARGETS, help=f"comma-separated, default {TARGETS}")
    parser.add_argument("--points", type=parse_points, default=parse_points(POINTS),
                        help=f"comma-separated cNxM: concurrency N, M rows per request (default {POINTS})")
    parser.add_argument("--warmup", type=float, default=1.0)
    parser.add_argument("--duration", type=float, default=3.0)
    parser.add_argument("--client-processes", type=int, default=1)
    args = parser.parse_args()
    WORK.mkdir(exist_ok=True)
    repository = models()
    header = ('target', 'protocol', 'point', 'req/s', 'rows/s', 'p50 ms', 'p99 ms', 'cpu ms/req', 'errors')
    print('{:<14} {:<12} {:<10} {:>9} {:>10} {:>8} {:>8} {:>10} {:>6}'.format(*header))
    results = []
    for target in targets(args.targets.split(","), repository):
        results += run_target(target, args)
    (WORK / "results.json").write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
