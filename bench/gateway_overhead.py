"""Gateway overhead: REST predict through the gateway vs direct gRPC predict, same model, same run.

Starts one inference server and one gateway on loopback, then for each concurrency (1 and 64 by
default) sends the same one-row iris-knn request as gRPC Predict, REST POST /v1/models/iris-knn:predict
and Open Inference Protocol REST POST /v2/models/iris-knn/infer (JSON tensors), and the peer in the
same run: MLServer's own REST POST /v2/models/iris-knn/infer (the same fitted estimator, adaptive
batching on, as in bench/run.py; installed into bench/.venv-mlserver on first use), and the floor
of the design: a second gateway in front of bench/proto_floor_server.py (no model). It prints a
Markdown table (req/s, p50, p99, and CPU per request of the gateway's and of the serving process
trees). The load generator is one asyncio process on the same machine,
so on a small box it competes with the servers for the cores: compare rows of the same run only.

    .venv/bin/python bench/gateway_overhead.py --models models --requests 2000
    .venv/bin/python bench/gateway_overhead.py --no-mlserver --no-floor   # protoserve paths only
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import aiohttp
import grpc
import psutil
from protoserve.inference.v1 import inference_service_pb2_grpc

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.explain_latency import measure as latency  # noqa: E402
from bench.explain_latency import warmup_calls  # noqa: E402  (one timing loop for every bench)
from bench.loadgen import server_ready  # noqa: E402
from bench.run import WORK, ensure_mlserver, mlserver_dir  # noqa: E402
from bench.user_models import BUILTIN, export_builtin  # noqa: E402
from protoserve_models.builtin.build import build_models  # noqa: E402
from protoserve_runtime.redis_server import free_port  # noqa: E402
from tests.gateway.conftest import start_gateway  # noqa: E402
from tests.harness import ServiceProcess  # noqa: E402
from tests.inference.rows import predict_request  # noqa: E402

ROW = {"sepal_length": 5.1, "sepal_width": 3.5, "petal_length": 1.4, "petal_width": 0.2}
V2_BODY = {"inputs": [{"name": "input", "datatype": "FP64", "shape": [1, 4], "data": [5.1, 3.5, 1.4, 0.2]}]}
# MLServer's sklearn runtime answers `predict` unless asked; ask for the probabilities protoserve returns.
MLSERVER_BODY = {**V2_BODY, "outputs": [{"name": "predict_proba"}]}


@contextmanager
def mlserver(repository: Path) -> Iterator[tuple[str, int]]:
    """MLServer serving iris-knn with one parallel worker (its default); yields its REST base URL and pid."""
    estimator = export_builtin(repository, BUILTIN, WORK / "estimators" / f"{BUILTIN}.joblib")
    folder = mlserver_dir(1, free_port(), {BUILTIN: estimator})
    http_port = json.loads((folder / "settings.json").read_text())["http_port"]
    url = f"http://127.0.0.1:{http_port}"
    log = (folder / "mlserver.log").open("wb")
    process = subprocess.Popen([str(ensure_mlserver()), "start", str(folder)], stdout=log, stderr=log)
    try:
        deadline = time.monotonic() + 180
        while True:
            try:
                with urllib.request.urlopen(f"{url}/v2/models/iris-knn/ready", timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"MLServer did not start; see {folder / 'mlserver.log'}")
            time.sleep(0.5)
        yield url, process.pid
    finally:
        process.terminate()
        process.wait(30)
        log.close()


@contextmanager
def proto_floor() -> Iterator[tuple[str, int]]:
    """bench/proto_floor_server.py (v2 ModelInfer answered from constants, no model); yields its
    address and pid. A gateway in front of it is the floor of the two-hop design."""
    port = free_port()
    process = subprocess.Popen([sys.executable, str(REPO / "bench" / "proto_floor_server.py"), str(port)], cwd=REPO)
    try:
        address = f"127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while not server_ready(address):
            if process.poll() is not None or time.monotonic() > deadline:
                raise SystemExit("the proto-floor server did not start")
            time.sleep(0.2)
        yield address, process.pid
    finally:
        process.terminate()
        process.wait(30)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process and its children (worker processes) so far."""
    tree = [psutil.Process(pid)]
    tree += tree[0].children(recursive=True)
    total = 0.0
    for process in tree:
        try:
            times = process.cpu_times()
        except psutil.NoSuchProcess:
            continue
        total += times.user + times.system
    return total


async def measure(inference: str, gateway: str, peer: str | None, pids: dict[str, int], concurrencies: list[int],
                  total: int, floor_gateway: str | None = None) -> list[str]:
    """``pids``: the process trees whose CPU is counted: "gateway", "inference", with a peer "peer",
    with a floor gateway (a gateway in front of proto-floor) "floor-gateway" and "floor"."""
    rows = ["| path | concurrency | req/s | p50 ms | p99 ms | gateway CPU ms/req | server CPU ms/req |",
            "|---|---:|---:|---:|---:|---:|---:|"]
    request = predict_request("iris-knn", [ROW])
    request.skip_cache = True
    # aiohttp rather than httpx: its lower per-request cost leaves more of the cores to the servers.
    async with grpc.aio.insecure_channel(inference) as channel, \
            aiohttp.ClientSession(gateway, connector=aiohttp.TCPConnector(limit=128)) as http, \
            aiohttp.ClientSession(peer or gateway, connector=aiohttp.TCPConnector(limit=128)) as peer_http, \
            aiohttp.ClientSession(floor_gateway or gateway, connector=aiohttp.TCPConnector(limit=128)) as floor_http:
        stub = inference_service_pb2_grpc.InferenceServiceStub(channel)

        async def grpc_predict() -> None:
            await stub.Predict(request, timeout=60)

        async def rest_predict() -> None:
            async with http.post("/v1/models/iris-knn:predict", json={"rows": [ROW], "skip_cache": True}) as response:
                response.raise_for_status()
                await response.read()

        async def rest_v2_infer() -> None:
            async with http.post("/v2/models/iris-knn/infer", json=V2_BODY) as response:
                response.raise_for_status()
                await response.read()

        async def mlserver_v2_infer() -> None:
            async with peer_http.post("/v2/models/iris-knn/infer", json=MLSERVER_BODY) as response:
                response.raise_for_status()
                await response.read()

        async def floor_v2_infer() -> None:
            async with floor_http.post("/v2/models/iris-knn/infer", json=V2_BODY) as response:
                response.raise_for_status()
                await response.read()

        # (name, call, the server whose CPU is counted, the gateway whose CPU is counted or None)
        paths = [("gRPC Predict (direct)", grpc_predict, "inference", None),
                 ("REST /v1 predict (gateway)", rest_predict, "inference", "gateway"),
                 ("REST /v2 infer (gateway)", rest_v2_infer, "inference", "gateway")]
        if floor_gateway is not None:
            paths.append(("REST /v2 infer (gateway → proto-floor, no model)", floor_v2_infer, "floor", "floor-gateway"))
        if peer is not None:
            paths.append(("REST /v2 infer (MLServer 1.7.1)", mlserver_v2_infer, "peer", None))
        for concurrency in concurrencies:
            for name, call, server, via_gateway in paths:
                requests = total if concurrency > 1 else total // 4
                before = {k: cpu_seconds(pid) for k, pid in pids.items()}
                p50, p99, rps = await latency([call] * concurrency, requests)  # callers share the client's connections
                calls = requests + warmup_calls(concurrency)
                spent = {k: (cpu_seconds(pid) - before[k]) * 1000 / calls for k, pid in pids.items()}
                gateway_cpu = f"{spent[via_gateway]:.2f}" if via_gateway else "-"
                rows.append(f"| {name} | {concurrency} | {rps:,.0f} | {p50:.2f} | {p99:.2f} | {gateway_cpu} "
                            f"| {spent[server]:.2f} |")
                print(rows[-1], file=sys.stderr, flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=Path, default=REPO / "models", help="model repository (built if missing)")
    parser.add_argument("--requests", type=int, default=2000, help="requests per row at concurrency > 1")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 64])
    parser.add_argument("--gateway-workers", type=int, default=1, help="gateway worker processes")
    parser.add_argument("--mlserver", action=argparse.BooleanOptionalAction, default=True,
                        help="measure MLServer's REST in the same run (the peer)")
    parser.add_argument("--floor", action=argparse.BooleanOptionalAction, default=True,
                        help="also measure a gateway in front of bench/proto_floor_server.py (no model)")
    args = parser.parse_args()
    build_models(args.models, ["iris-knn"])
    logs = Path(tempfile.mkdtemp(prefix="bench-gateway-"))
    inference = ServiceProcess("inference_svc.main", "PROTOSERVE_INFERENCE_ADDRESS",
                               {"PROTOSERVE_MODEL_REPOSITORY": str(args.models), "PROTOSERVE_LOG_LEVEL": "warning"},
                               logs / "inference.log")
    inference.start()
    gateway_env = {"PROTOSERVE_LOG_LEVEL": "warning", "PROTOSERVE_GATEWAY_WORKERS": str(args.gateway_workers)}
    gateway = start_gateway(logs, [inference.address], **gateway_env)
    with ExitStack() as stack:
        stack.callback(inference.terminate)
        stack.callback(gateway.terminate)
        assert gateway.process is not None and inference.process is not None
        pids = {"gateway": gateway.process.pid, "inference": inference.process.pid}
        floor_url = None
        if args.floor:
            floor_address, pids["floor"] = stack.enter_context(proto_floor())
            floor_logs = logs / "floor"
            floor_logs.mkdir()
            floor_gateway = start_gateway(floor_logs, [floor_address], **gateway_env)
            stack.callback(floor_gateway.terminate)
            assert floor_gateway.process is not None
            pids["floor-gateway"], floor_url = floor_gateway.process.pid, floor_gateway.url
        peer = None
        if args.mlserver:
            peer, pids["peer"] = stack.enter_context(mlserver(args.models))
        rows = asyncio.run(measure(inference.address, gateway.url, peer, pids, args.concurrency, args.requests, floor_url))
    print("\n".join(rows))


if __name__ == "__main__":
    main()
