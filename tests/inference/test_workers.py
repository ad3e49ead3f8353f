"""Several workers on one port: health is SERVING only while every worker is ready."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import grpc
import psutil
from grpc_health.v1 import health_pb2, health_pb2_grpc

from tests.conftest import start_inference

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


def workers_of(pid: int) -> list[psutil.Process]:
    return [c for c in psutil.Process(pid).children() if "spawn_main" in " ".join(c.cmdline())]


def mapped_libraries(process: psutil.Process, package: str) -> list[str]:
    """The compiled modules of a package that the process has loaded."""
    return [m.path for m in process.memory_maps() if f"/{package}/" in m.path]


def wait_for(condition, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.1)


def test_health_follows_every_worker(model_repository: Path, tmp_path: Path) -> None:
    service = start_inference(model_repository, tmp_path, PROTOSERVE_INFERENCE_WORKERS="2")
    assert service.process is not None
    port = int(service.address.rsplit(":", 1)[1])
    try:
        workers = workers_of(service.process.pid)
        assert len(workers) == 2
        assert mapped_libraries(workers[0], "sklearn"), "a worker maps scikit-learn's compiled modules"
        assert not mapped_libraries(psutil.Process(service.process.pid), "sklearn"), "the supervisor loads no model library"
        seen: list[int] = []
        with grpc.insecure_channel(service.address) as channel:
            watch = health_pb2_grpc.HealthStub(channel).Watch(health_pb2.HealthCheckRequest(service=""), timeout=180)

            def follow() -> None:
                try:
                    for response in watch:
                        seen.append(response.status)
                except grpc.RpcError:
                    pass

            follower = threading.Thread(target=follow)
            follower.start()
            wait_for(lambda: SERVING in seen)
            # Our stream is held by one worker; kill the other. Ours must say NOT_SERVING until a
            # replacement worker has loaded its models, then SERVING again.
            ours = [w for w in workers if any(c.laddr.port == port and c.status == "ESTABLISHED" for c in w.net_connections())]
            assert len(ours) == 1
            other = next(w for w in workers if w.pid != ours[0].pid)
            other.kill()
            wait_for(lambda: NOT_SERVING in seen[seen.index(SERVING):])
            wait_for(lambda: seen[-1] == SERVING)
            replacement = [w for w in workers_of(service.process.pid) if w.pid not in {ours[0].pid, other.pid}]
            assert len(replacement) == 1
            watch.cancel()
            follower.join()
        assert service.terminate() == 0
        gone, alive = psutil.wait_procs([ours[0], *replacement], timeout=30)
        assert not alive, "SIGTERM to the parent stops every worker"
    finally:
        service.kill()
