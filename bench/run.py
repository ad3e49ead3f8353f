"""protoserve vs MLServer vs Flask+gunicorn vs BentoML vs bare grpc.aio servers, same models, same load, one run.

    .venv/bin/python -m bench.run                 # everything (installs the peers' venvs on first run)
    .venv/bin/python -m bench.run --models iris-knn --targets protoserve,echo,proto-floor --duration 3
    .venv/bin/python -m bench.run --models penguins-pipeline --targets flask-gunicorn --points c64x1,c1x1

Models (bench/user_models.py): iris-knn (built in) and the models users bring, penguins-pipeline
(a DataFrame pipeline, joblib) and cancer-trees (gradient-boosted trees, skops), each added with
`protoserve models add`; every peer gets the same fitted estimator as one joblib file. The gRPC
targets speak the Open Inference Protocol (bench/payloads.py: one FP64 matrix for iris-knn, one
tensor per column in MLServer's pandas-codec style for a DataFrame model) and are driven by
bench/loadgen.py over 1 and 4 client connections; Flask+gunicorn and BentoML take JSON rows and
are driven by bench/http_loadgen.py (a connection per request). Server CPU per request is the CPU
time of the server's process tree during the measured window, over the requests done; its RSS
(the tree's sum) is taken after its last point. Results go to bench/.work/results.json, and
`python -m bench.report` turns them into the markdown tables of docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import datetime
import importlib.metadata
import json
import os
import shlex
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import joblib
import numpy as np
from inference import grpc_predict_v2_pb2 as v2

from bench import http_loadgen, loadgen, payloads, report
from bench.user_models import BUILTIN, MODELS, BenchModel, prepare
from protoserve_runtime.redis_server import free_port

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
WORK = BENCH / ".work"
MLSERVER_VENV = BENCH / ".venv-mlserver"
# uvloop 0.22+ breaks MLServer 1.7.1's parallel workers (get_event_loop with no loop); 0.21 works.
MLSERVER_PINS = ["mlserver==1.7.1", "mlserver-sklearn==1.7.1", "uvloop==0.21.0"]
FLASK_VENV = BENCH / ".venv-flask"
FLASK_PINS = ["flask==3.1.3", "gunicorn==27.0.1"]
BENTOML_VENV = BENCH / ".venv-bentoml"
BENTOML_PINS = ["bentoml==1.4.40"]
MODEL_NAMES = ",".join(MODELS)
POINTS = "c1x1,c64x1,c64x32"  # concurrency x rows per request
CONNECTIONS = "1,4"
TARGETS = ("echo,proto-floor,model-floor,protoserve,protoserve-no-levers,mlserver-pw0,mlserver-pw1,mlserver-pw2,flask-gunicorn,"
           "bentoml-w1,bentoml-w2")
PER_REQUEST = 0  # the connections of an HTTP target's points: one per request in flight


@dataclass(frozen=True)
class Wire:
    """How a target is driven: the protocol shown in the table, its readiness probe, its load
    client for a number of connections, and the address the client drives for a model."""

    name: str
    ready: Callable[[str], bool]
    client: Callable[[int], loadgen.Client]
    endpoint: Callable[[str, str], str]  # (target address, model name) -> address or URL driven
    pools_connections: bool  # the client's connection count is a parameter of the point
    probabilities: Callable[[str, bytes], np.ndarray]  # one call (endpoint, request) -> its probabilities


def grpc_client(connections: int) -> loadgen.Client:
    return partial(loadgen.grpc_client, connections=connections)


def grpc_probabilities(address: str, request: bytes) -> np.ndarray:
    return payloads.grpc_probabilities(loadgen.call(address, request))


def json_probabilities(url: str, body: bytes) -> np.ndarray:
    return payloads.json_probabilities(http_loadgen.post(url, body))


GRPC = Wire("v2 gRPC", loadgen.server_ready, grpc_client, lambda address, _: address, True, grpc_probabilities)
FLASK_REST = Wire("REST/JSON rows", http_loadgen.server_ready, lambda _: http_loadgen.client,
                  lambda address, model: f"{address}/models/{model}/predict", False, json_probabilities)
BENTOML_REST = Wire("REST/JSON rows", partial(http_loadgen.server_ready, path="/readyz"), lambda _: http_loadgen.client,
                    lambda address, _: f"{address}/predict", False, json_probabilities)
CHECK_ROWS = 5


@dataclass
class Target:
    name: str
    command: list[str]
    address: str  # what the readiness probe takes
    models: list[str]  # served by this one server
    request: Callable[[BenchModel, int], bytes]  # (model, rows per request) -> request bytes
    wire: Wire = GRPC
    env: dict[str, str] = field(default_factory=dict)
    serves_models: bool = True  # False for the floors, whose answers are constants


def parse_points(text: str) -> list[tuple[int, int]]:
    """"c64x1,c1x1" -> [(64, 1), (1, 1)]: (concurrency, rows per request)."""
    points = []
    for item in text.split(","):
        concurrency, _, rows = item.strip().removeprefix("c").partition("x")
        if not (concurrency.isdigit() and rows.isdigit() and int(concurrency) > 0 and int(rows) > 0):
            raise argparse.ArgumentTypeError(f"point {item!r} is not cNxM (concurrency N, M rows per request)")
        points.append((int(concurrency), int(rows)))
    return points


def parse_models(text: str) -> list[str]:
    names = [name.strip() for name in text.split(",")]
    unknown = [name for name in names if name not in MODELS]
    if unknown:
        raise argparse.ArgumentTypeError(f"unknown model(s) {', '.join(unknown)}; known: {MODEL_NAMES}")
    return names


def parse_counts(text: str) -> list[int]:
    if not all(item.strip().isdigit() and int(item) > 0 for item in text.split(",")):
        raise argparse.ArgumentTypeError(f"{text!r} is not a list of positive numbers")
    return [int(item) for item in text.split(",")]


def ensure_venv(venv: Path, pins: list[str], executable: str, same_as_ours: tuple[str, ...] = ("scikit-learn",)) -> Path:
    """venv/bin/executable, creating venv with pins on first use (and installing them again when
    the pins change). The packages `same_as_ours` get protoserve's versions, so that the exported
    estimator loads unchanged."""
    path = venv / "bin" / executable
    pins = [*pins, *(f"{name}=={importlib.metadata.version(name)}" for name in same_as_ours)]
    stamp = venv / ".bench-pins"
    if path.exists() and stamp.exists() and stamp.read_text() == "\n".join(pins):
        return path
    if not (venv / "bin" / "pip").exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    subprocess.run([str(venv / "bin" / "pip"), "install", "--quiet", *pins], check=True)
    stamp.write_text("\n".join(pins))
    return path


def ensure_mlserver() -> Path:
    return ensure_venv(MLSERVER_VENV, MLSERVER_PINS, "mlserver")


def model_files(folder: Path, peer_files: Mapping[str, Path]) -> Path:
    """A fresh folder holding exactly the given models' joblib files, as `<name>.joblib`."""
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    for name, path in peer_files.items():
        shutil.copyfile(path, folder / f"{name}.joblib")
    return folder


def mlserver_dir(parallel_workers: int, port: int, peer_files: Mapping[str, Path]) -> Path:
    """A repository for MLServer: one folder per model, the same fitted estimators, adaptive batching on."""
    folder = WORK / f"mlserver-pw{parallel_workers}"
    shutil.rmtree(folder, ignore_errors=True)
    for name, path in peer_files.items():
        model_files(folder / name, {"model": path})
        (folder / name / "model-settings.json").write_text(json.dumps({
            "name": name,
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


def grpc_request(outputs: tuple[str, ...] = ()) -> Callable[[BenchModel, int], bytes]:
    return lambda model, rows: payloads.grpc_request(model, rows, outputs)


def targets(names: list[str], models: list[str], peer_files: Mapping[str, Path]) -> Iterator[Target]:
    """The targets in order; BentoML serves one model per server (a service is one class), the
    others every model at once."""
    for name in names:
        port = free_port()
        address = f"127.0.0.1:{port}"
        if name in ("protoserve", "protoserve-no-levers"):
            # Metrics on (as by default) but on free ports: the default 9100 may be taken on a shared machine.
            env = {"PROTOSERVE_MODEL_REPOSITORY": str(WORK / "models"), "PROTOSERVE_INFERENCE_ADDRESS": address,
                   "PROTOSERVE_LOG_LEVEL": "warning", "PROTOSERVE_INFERENCE_METRICS_ADDRESS": "127.0.0.1:0"}
            if name == "protoserve-no-levers":  # the same code with its levers off: the "before" of each lever
                env |= {"PROTOSERVE_FAST_KERNELS": "", "PROTOSERVE_MODEL_THREADS": "0"}
            yield Target(name, [sys.executable, "-m", "inference_svc.main"], address, models, grpc_request(), env=env)
        elif name.startswith("mlserver-pw"):
            folder = mlserver_dir(int(name.removeprefix("mlserver-pw")), port, peer_files)
            # MLServer's sklearn runtime answers `predict` unless asked; ask for the probabilities.
            yield Target(name, [str(ensure_mlserver()), "start", str(folder)], address, models,
                         grpc_request(("predict_proba",)))
        elif name == "echo":
            response = WORK / "echo-response.bin"
            response.write_bytes(echo_response())
            yield Target(name, [sys.executable, str(BENCH / "echo_server.py"), str(port), str(response)], address, models,
                         grpc_request(), serves_models=False)
        elif name == "proto-floor":
            yield Target(name, [sys.executable, str(BENCH / "proto_floor_server.py"), str(port)], address, models,
                         grpc_request(), serves_models=False)
        elif name == "model-floor":
            yield Target(name, [sys.executable, str(BENCH / "model_floor_server.py"), str(port)], address, models,
                         grpc_request(), env={"BENCH_MODEL_DIR": str(model_files(WORK / "model-floor", peer_files))})
        elif name == "flask-gunicorn":
            yield flask_target(name, address, models, peer_files)
        elif name.startswith("bentoml-w"):
            yield from bentoml_targets(name, models, peer_files)
        else:
            raise SystemExit(f"unknown target {name!r}")


def flask_target(name: str, address: str, models: list[str], peer_files: Mapping[str, Path]) -> Target:
    gunicorn = ensure_venv(FLASK_VENV, FLASK_PINS, "gunicorn", ("scikit-learn", "pandas"))
    folder = model_files(WORK / "flask", peer_files)
    # Sync workers (gunicorn's default, and what people run), one per core of this machine. No
    # control socket: gunicorn 27's default path is shared by every gunicorn of the user.
    command = [str(gunicorn), "-w", "2", "-b", address, "--no-control-socket", "--chdir", str(BENCH), "flask_app:app"]
    return Target(name, command, f"http://{address}", models, payloads.json_rows, FLASK_REST,
                  {"BENCH_MODEL_DIR": str(folder)})


def bentoml_targets(name: str, models: list[str], peer_files: Mapping[str, Path]) -> Iterator[Target]:
    bentoml = ensure_venv(BENTOML_VENV, BENTOML_PINS, "bentoml", ("scikit-learn", "pandas"))
    for model in models:
        port = free_port()
        command = [str(bentoml), "serve", "bentoml_service:Classifier", "--host", "127.0.0.1", "--port", str(port),
                   "--working-dir", str(BENCH)]
        env = {"BENCH_MODEL_FILE": str(peer_files[model]), "BENCH_WORKERS": name.removeprefix("bentoml-w"),
               "BENTOML_HOME": str(WORK / "bentoml"), "BENTOML_DO_NOT_TRACK": "true"}
        yield Target(name, command, f"http://127.0.0.1:{port}", [model], payloads.json_rows, BENTOML_REST, env)


def echo_response() -> bytes:
    """What protoserve answers for one iris-knn row (so the echo server sends as many bytes)."""
    response = v2.ModelInferResponse(model_name=BUILTIN, model_version="1")
    label = response.outputs.add(name="label", datatype="BYTES", shape=[1])
    label.contents.bytes_contents.append(b"setosa")
    probabilities = response.outputs.add(name="probabilities", datatype="FP64", shape=[1, 3])
    probabilities.contents.fp64_contents.extend([1.0, 0.0, 0.0])
    return response.SerializeToString()


def check_answers(target: Target, model: BenchModel, peer_file: Path) -> bool:
    """Whether the target answers a few rows with the probabilities the estimator gives locally
    (a request it misreads, say strings decoded as bytes that an encoder ignores, shows here)."""
    endpoint = target.wire.endpoint(target.address, model.name)
    try:
        served = target.wire.probabilities(endpoint, target.request(model, CHECK_ROWS))
    except Exception as error:  # any failure is a failed check, reported beside the figures
        print(f"WARNING: {target.name} failed to answer {model.name}: {error}", flush=True)
        return False
    expected = joblib.load(peer_file).predict_proba(model.inputs(CHECK_ROWS))
    if served.shape != expected.shape or not np.allclose(served, expected, rtol=1e-6, atol=1e-9):
        print(f"WARNING: {target.name} answers {model.name} with {served.tolist()}, not {expected.tolist()}", flush=True)
        return False
    return True


def measure(target: Target, model: BenchModel, connections: int, concurrency: int, rows: int, server_pid: int,
            args: argparse.Namespace) -> dict[str, Any]:
    point = loadgen.run(
        target.wire.endpoint(target.address, model.name), target.request(model, rows), concurrency,
        args.client_processes, args.warmup, args.duration, server_pid, target.wire.client(connections),
    )
    return {
        "model": model.name, "target": target.name, "protocol": target.wire.name, "connections": connections,
        "concurrency": concurrency, "rows": rows, "rps": point.rps, "rows_per_s": point.rps * rows,
        "p50_ms": point.percentile(50), "p99_ms": point.percentile(99),
        "cpu_ms_per_req": point.cpu_ms_per_request if point.requests else float("nan"), "errors": point.errors,
    }


def run_target(
    target: Target, peer_files: Mapping[str, Path], args: argparse.Namespace
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The target's points (every model it serves × connections × points, each marked with whether
    its answers were checked right) and its memory after them."""
    log = (WORK / f"{target.name}-{'+'.join(target.models)}.log").open("wb")
    process = subprocess.Popen(target.command, env={**os.environ, **target.env}, cwd=ROOT, stdout=log, stderr=log)
    try:
        deadline = time.monotonic() + 180
        while not target.wire.ready(target.address):
            if process.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"{target.name} did not start; see {log.name}")
            time.sleep(0.5)
        results = []
        for name in target.models:
            answers_ok = check_answers(target, MODELS[name], peer_files[name]) if target.serves_models else None
            for connections in args.connections if target.wire.pools_connections else [PER_REQUEST]:
                for concurrency, rows in args.points:
                    results.append(measure(target, MODELS[name], connections, concurrency, rows, process.pid, args))
                    results[-1]["answers_ok"] = answers_ok
                    print(report.text_row(results[-1]), flush=True)
        processes = loadgen.tree_rss(process.pid)
        return results, {
            "target": target.name, "models": target.models, "rss_kib": sum(rss for _, rss in processes) // 1024,
            "processes": [[name, rss // 1024] for name, rss in processes],  # (name, KiB) each: one worker's share
        }
    finally:
        process.terminate()
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", type=parse_models, default=parse_models(MODEL_NAMES),
                        help=f"comma-separated, default {MODEL_NAMES}")
    parser.add_argument("--targets", default=TARGETS, help=f"comma-separated, default {TARGETS}")
    parser.add_argument("--points", type=parse_points, default=parse_points(POINTS),
                        help=f"comma-separated cNxM: concurrency N, M rows per request (default {POINTS})")
    parser.add_argument("--connections", type=parse_counts, default=parse_counts(CONNECTIONS),
                        help=f"gRPC connections per client process, each a run of every point (default {CONNECTIONS})")
    parser.add_argument("--warmup", type=float, default=1.0)
    parser.add_argument("--duration", type=float, default=3.0)
    parser.add_argument("--client-processes", type=int, default=1)
    parser.add_argument("--output", type=Path, default=WORK / "results.json")
    args = parser.parse_args()
    WORK.mkdir(exist_ok=True)
    started = {"date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
               "command": shlex.join([".venv/bin/python", "-m", "bench.run", *sys.argv[1:]]),
               "cpus": os.cpu_count(), "load_average_start": os.getloadavg()[0]}
    peer_files = prepare(args.models, WORK)
    print(report.text_header())
    points: list[dict[str, Any]] = []
    servers = []
    for target in targets(args.targets.split(","), args.models, peer_files):
        measured, server = run_target(target, peer_files, args)
        points += measured
        servers.append(server)
    run = {**started, "load_average_end": os.getloadavg()[0], "points": points, "servers": servers}
    args.output.write_text(json.dumps(run, indent=2))
    print()
    print(report.servers_text(run))
    print(report.goals_text(run))


if __name__ == "__main__":
    main()
