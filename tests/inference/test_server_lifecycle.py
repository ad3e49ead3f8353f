"""Health follows the server's life; SIGTERM drains in-flight calls before stopping."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from protoserve.inference.v1 import inference_service_pb2_grpc

from tests.conftest import start_inference
from tests.inference.rows import predict_request


def test_serving_after_start_and_not_serving_during_shutdown(model_repository: Path, tmp_path: Path) -> None:
    service = start_inference(model_repository, tmp_path, PROTOSERVE_GRACE_SECONDS="5")
    seen: list[int] = []
    got_serving = threading.Event()
    with grpc.insecure_channel(service.address) as channel:
        watch = health_pb2_grpc.HealthStub(channel).Watch(health_pb2.HealthCheckRequest(service=""), timeout=60)

        def follow() -> None:
            try:
                for response in watch:
                    seen.append(response.status)
                    if response.status == health_pb2.HealthCheckResponse.SERVING:
                        got_serving.set()
            except grpc.RpcError:
                pass  # the stream ends when the server stops

        follower = threading.Thread(target=follow)
        follower.start()
        assert got_serving.wait(10)
        # A large request (about a second of work) in flight when SIGTERM arrives must still be answered.
        stub = inference_service_pb2_grpc.InferenceServiceStub(channel)
        rows = [{"text": f"review number {i}: not bad at all, rather good"} for i in range(10_000)]
        in_flight = stub.Predict.future(predict_request("sentiment", rows), timeout=60)
        time.sleep(0.3)  # let it reach the server; its work takes longer than this
        assert service.terminate() == 0
        assert len(in_flight.result().predictions) == 10_000
        follower.join(10)
    # A worker process may say NOT_SERVING for a moment until it sees its siblings ready; what
    # matters is SERVING while up, then NOT_SERVING once the shutdown starts.
    first_serving = seen.index(health_pb2.HealthCheckResponse.SERVING)
    assert health_pb2.HealthCheckResponse.NOT_SERVING in seen[first_serving + 1:]
    log = service.log_text()
    assert '"message": "stopping: health NOT_SERVING, draining in-flight calls"' in log
    assert '"message": "stopped"' in log
