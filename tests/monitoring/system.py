"""A monitored system for tests: inference publishing events, monitoring consuming them, one Redis."""

from __future__ import annotations

import time
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import numpy as np
from prometheus_client.parser import text_string_to_metric_families
from protoserve.inference.v1 import inference_service_pb2 as inference_pb
from protoserve.inference.v1 import inference_service_pb2_grpc
from protoserve.monitoring.v1 import monitoring_service_pb2 as pb
from protoserve.monitoring.v1 import monitoring_service_pb2_grpc

from protoserve_models.card import ModelCard
from protoserve_runtime.redis_server import free_port
from tests.conftest import start_inference
from tests.harness import ServiceProcess
from tests.inference.rows import predict_request

# Fast alert evaluation so tests wait little; everything else as shipped.
# The latency rule is off: a busy test machine must not raise alerts the tests do not expect.
FAST = {
    "PROTOSERVE_ALERT_INTERVAL_SECONDS": "0.2",
    "PROTOSERVE_EVENTS_FLUSH_SECONDS": "0.02",
    "PROTOSERVE_ALERT_LATENCY_P99_MS": "0",
}


def wait_until(predicate: Callable[[], Any], timeout: float = 90.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def start_monitoring(model_repository: Path, log_dir: Path, redis_url: str, **settings: str) -> ServiceProcess:
    env = {
        "PROTOSERVE_MODEL_REPOSITORY": str(model_repository),
        "PROTOSERVE_REDIS_URL": redis_url,
        "PROTOSERVE_MONITORING_METRICS_ADDRESS": f"127.0.0.1:{free_port()}",
        **FAST,
        **settings,
    }
    service = ServiceProcess("monitoring_svc.main", "PROTOSERVE_MONITORING_ADDRESS", env, log_dir / "monitoring.log")
    service.start()
    return service


def start_publishing_inference(model_repository: Path, log_dir: Path, redis_url: str, **settings: str) -> ServiceProcess:
    # One worker: the tests read the publisher's counters from its one /metrics endpoint.
    return start_inference(
        model_repository, log_dir, PROTOSERVE_REDIS_URL=redis_url, PROTOSERVE_INFERENCE_WORKERS="1",
        PROTOSERVE_INFERENCE_METRICS_ADDRESS=f"127.0.0.1:{free_port()}", **{**FAST, **settings},
    )


def metrics_url(service: ServiceProcess, setting: str) -> str:
    return f"http://{service.extra_env[setting]}/metrics"


def scrape(url: str) -> dict[str, list[Any]]:
    """Samples of every metric family at url, by family name, parsed by prometheus_client."""
    with urllib.request.urlopen(url, timeout=10) as response:
        text = response.read().decode()
    return {family.name: list(family.samples) for family in text_string_to_metric_families(text)}


def sample_value(samples: dict[str, list[Any]], family: str, name: str, **labels: str) -> float:
    matching = (s for s in samples.get(family, []) if s.name == name)
    return sum(s.value for s in matching if all(s.labels.get(k) == v for k, v in labels.items()))


def reference_rows(model_repository: Path, model: str, count: int, seed: int) -> list[dict[str, Any]]:
    """Rows resampled from the card's reference sample: drawn from the training distribution."""
    card = ModelCard.read(model_repository / model / "1")
    columns = card.reference_sample
    size = len(next(iter(columns.values())))
    picked = np.random.default_rng(seed).integers(0, size, count)
    return [{name: columns[name][i] for name in card.feature_names} for i in picked.tolist()]


@dataclass
class Clients:
    inference: inference_service_pb2_grpc.InferenceServiceStub
    monitoring: monitoring_service_pb2_grpc.MonitoringServiceStub

    def predict(self, model: str, rows: Sequence[dict[str, Any]], chunk: int = 100) -> list[Any]:
        predictions: list[Any] = []
        for start in range(0, len(rows), chunk):
            response: inference_pb.PredictResponse = self.inference.Predict(
                predict_request(model, rows[start : start + chunk]), timeout=60
            )
            predictions.extend(response.predictions)
        return predictions

    def window(self, model: str, window: str = "5m") -> pb.WindowMetrics:
        try:
            response = self.monitoring.GetModelMetrics(pb.GetModelMetricsRequest(model=model, window=window), timeout=30)
        except grpc.RpcError as exc:
            if exc.code() == grpc.StatusCode.NOT_FOUND:  # type: ignore[attr-defined]
                return pb.WindowMetrics()
            raise
        return response.windows[0]

    def wait_rows(self, model: str, rows: int, window: str = "5m") -> pb.WindowMetrics:
        return wait_until(lambda: (w := self.window(model, window)).row_count >= rows and w, what=f"{rows} rows of {model}")

    def wait_evaluation(self) -> pb.ListAlertsResponse:
        """Wait for an alert evaluation that started after now."""
        after = time.time()
        return wait_until(
            lambda: (r := self.monitoring.ListAlerts(pb.ListAlertsRequest(), timeout=30)).last_evaluation_time.ToNanoseconds()
            > after * 1e9 and r,
            what="an alert evaluation",
        )


def clients(inference_address: str, monitoring_address: str) -> Iterator[Clients]:
    with grpc.insecure_channel(inference_address) as inference, grpc.insecure_channel(monitoring_address) as monitoring:
        yield Clients(
            inference_service_pb2_grpc.InferenceServiceStub(inference),
            monitoring_service_pb2_grpc.MonitoringServiceStub(monitoring),
        )
