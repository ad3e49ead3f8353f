"""Tracing: one REST call is one trace across the gateway and the services (real processes, real
Redis, spans written by each process to a shared JSON-lines file); off, nothing of OpenTelemetry
is even imported; on, log lines carry the trace and span ids."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from protoserve_runtime.tracing import TracingConfig
from tests.conftest import start_inference
from tests.explain.conftest import start_explain
from tests.gateway.conftest import GatewayProcess, start_gateway
from tests.harness import REPO_ROOT, ServiceProcess, start_side_by_side
from tests.jobs.harness import WorkerProcess, redis_env
from tests.monitoring.system import start_monitoring

Span = dict[str, Any]
PREDICT = "protoserve.inference.v1.InferenceService/Predict"


def read_spans(path: Path) -> list[Span]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def poll(path: Path, found: Callable[[list[Span]], Any], what: str, timeout: float = 60.0) -> Any:
    """found(spans) until it is truthy: spans reach the file as each process ends them."""
    deadline = time.monotonic() + timeout
    while True:
        result = found(read_spans(path))
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}; spans: {json.dumps(read_spans(path), indent=1)[-6000:]}")
        time.sleep(0.1)


def trace_of(spans: list[Span], root_name: str) -> list[Span] | None:
    roots = [s for s in spans if s["name"] == root_name and s["kind"] == "SERVER" and s["service"] == "protoserve-gateway"]
    if len(roots) > 1:
        raise AssertionError(f"{len(roots)} gateway spans named {root_name!r}: one call was sent")
    return [s for s in spans if s["trace_id"] == roots[0]["trace_id"]] if roots else None


def assert_one_tree(spans: list[Span]) -> Span:
    """Every span's parent is in the trace and exactly one span, the gateway's, has none; returns it."""
    ids = {s["span_id"] for s in spans}
    roots = [s for s in spans if s["parent_span_id"] is None]
    assert len(roots) == 1, roots
    assert roots[0]["service"] == "protoserve-gateway" and roots[0]["kind"] == "SERVER"
    for span in spans:
        assert span["parent_span_id"] is None or span["parent_span_id"] in ids, f"{span['name']}: parent missing"
    return roots[0]


def one(spans: list[Span], name: str, **where: Any) -> Span:
    matching = [s for s in spans if s["name"] == name and all(s.get(k) == v for k, v in where.items())]
    assert len(matching) == 1, f"{len(matching)} spans named {name!r} {where}; names: {[s['name'] for s in spans]}"
    return matching[0]


class TracedSystem:
    def __init__(self, gateway: GatewayProcess, traces: Path, worker: WorkerProcess) -> None:
        self.gateway = gateway
        self.traces = traces
        self.worker = worker


@pytest.fixture(scope="module")
def system(model_repository: Path, redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TracedSystem]:
    """Gateway (two workers), inference (two workers, no fast kernel: every call is queued in the
    batcher), explain, monitoring and a job worker, each appending its spans to one file."""
    logs = tmp_path_factory.mktemp("tracing")
    traces = logs / "spans.jsonl"
    env = redis_env(redis_url, PROTOSERVE_TRACES_FILE=str(traces), PROTOSERVE_LOG_FORMAT="json")
    monitoring, inference, explain = start_side_by_side(
        lambda: start_monitoring(model_repository, logs, redis_url,
                                 PROTOSERVE_MONITORING_KEY_PREFIX=f"tracing-{os.getpid()}", **env),
        lambda: start_inference(model_repository, logs, PROTOSERVE_INFERENCE_WORKERS="2", PROTOSERVE_FAST_KERNELS="", **env),
        lambda: start_explain(model_repository, logs, PROTOSERVE_EXPLAIN_WORKERS="1", **env),
    )
    gateway = start_gateway(logs, [inference.address], PROTOSERVE_GATEWAY_WORKERS="2",
                            PROTOSERVE_MONITORING_ADDRESS=monitoring.address, PROTOSERVE_EXPLAIN_ADDRESS=explain.address,
                            **env)
    worker = WorkerProcess(model_repository, env, logs / "worker.log")
    services: list[ServiceProcess] = [gateway, inference, explain, monitoring]
    try:
        yield TracedSystem(gateway, traces, worker)
    finally:
        worker.stop()
        for service in services:
            service.terminate()


def test_a_rest_predict_is_one_trace_across_the_processes(system: TracedSystem) -> None:
    row = {"sepal_length": round(random.uniform(4, 8), 3), "sepal_width": 3.1, "petal_length": 1.4, "petal_width": 0.2}
    answer = httpx.post(f"{system.gateway.url}/v1/models/iris-knn:predict", json={"rows": [row]}, timeout=30)
    assert answer.status_code == 200, answer.text

    wanted = ("POST /v1/models/{model}:predict", f"{PREDICT}", "batch queue wait", "predict iris-knn",
              "publish prediction events")

    def complete(spans: list[Span]) -> list[Span] | None:
        found = trace_of(spans, wanted[0])
        return found if found and {n for n in wanted} <= {s["name"] for s in found} else None

    spans = poll(system.traces, complete, "the predict call's spans")
    root = assert_one_tree(spans)
    assert root["attributes"]["http.route"] == "/v1/models/{model}:predict"
    assert root["attributes"]["http.response.status_code"] == 200
    client = one(spans, PREDICT, kind="CLIENT")
    server = one(spans, PREDICT, kind="SERVER")
    assert client["parent_span_id"] == root["span_id"] and client["service"] == "protoserve-gateway"
    assert server["parent_span_id"] == client["span_id"] and server["service"] == "protoserve-inference"
    assert server["pid"] != root["pid"], "the gateway and the inference service are different processes"
    assert server["attributes"]["rpc.grpc.status_code"] == "OK"
    wait, model, events = one(spans, "batch queue wait"), one(spans, "predict iris-knn"), one(spans, "publish prediction events")
    for span in (wait, model, events):
        assert span["parent_span_id"] == server["span_id"] and span["pid"] == server["pid"]
    assert model["attributes"]["protoserve.batch.rows"] == 1 and model["attributes"]["protoserve.batch.requests"] == 1
    assert events["attributes"]["messaging.batch.message_count"] == 1


def forwarded_trace(system: TracedSystem, route: str, method: str, what: str) -> tuple[list[Span], Span, Span]:
    """The trace of one REST call the gateway forwards to one gRPC method, checked to be one tree
    of gateway span -> CLIENT span -> SERVER span; (spans, root, server span)."""

    def complete(spans: list[Span]) -> list[Span] | None:
        found = trace_of(spans, route)
        return found if found and len([s for s in found if s["name"] == method]) == 2 else None

    spans = poll(system.traces, complete, what)
    root = assert_one_tree(spans)
    server = one(spans, method, kind="SERVER")
    assert server["parent_span_id"] == one(spans, method, kind="CLIENT")["span_id"]
    assert one(spans, method, kind="CLIENT")["parent_span_id"] == root["span_id"]
    return spans, root, server


def test_a_monitoring_call_through_the_gateway_is_one_trace(system: TracedSystem) -> None:
    # Alerts answer 200 from the start; drift would answer 404 until the monitoring service has
    # consumed a prediction event, which no test here waits for.
    answer = httpx.get(f"{system.gateway.url}/v1/alerts", timeout=30)
    assert answer.status_code == 200, answer.text
    _, _, server = forwarded_trace(system, "GET /v1/alerts",
                                   "protoserve.monitoring.v1.MonitoringService/ListAlerts", "the alerts call's spans")
    assert server["service"] == "protoserve-monitoring"


def test_an_explain_call_through_the_gateway_is_one_trace(system: TracedSystem) -> None:
    row = {"sepal_length": 6.1, "sepal_width": 2.8, "petal_length": 4.7, "petal_width": 1.2}
    answer = httpx.post(f"{system.gateway.url}/v1/models/iris-knn:explain", json={"rows": [row]}, timeout=60)
    assert answer.status_code == 200, answer.text
    _, root, server = forwarded_trace(system, "POST /v1/models/{model}:explain",
                                      "protoserve.explain.v1.ExplainService/Explain", "the explain call's spans")
    assert server["service"] == "protoserve-explain" and server["pid"] != root["pid"]


def test_a_jobs_batches_link_to_the_call_that_submitted_it(system: TracedSystem) -> None:
    rows = [{"sepal_length": 5.0 + i / 10, "sepal_width": 3.0, "petal_length": 1.5, "petal_width": 0.2} for i in range(5)]
    answer = httpx.post(f"{system.gateway.url}/v1/jobs", json={"model": "iris-knn", "rows": rows}, timeout=30)
    assert answer.status_code in (200, 202), answer.text
    job_id = answer.json()["job"]["job_id"]
    submit = "protoserve.jobs.v1.JobService/SubmitJob"

    def batches(spans: list[Span]) -> tuple[Span, list[Span]] | None:
        servers = [s for s in spans if s["name"] == submit and s["kind"] == "SERVER"]
        runs = [s for s in spans if s["name"] == "run job" and s["attributes"].get("protoserve.job.id") == job_id]
        done = [s for s in spans if s["name"] == "predict iris-knn" and s["attributes"].get("protoserve.job.id") == job_id]
        return (servers[0], [*runs, *done]) if servers and runs and done else None

    server, job_spans = poll(system.traces, batches, "the job's spans", timeout=120)
    for span in job_spans:
        assert span["service"] == "protoserve-worker"
        assert {"trace_id": server["trace_id"], "span_id": server["span_id"]} in span["links"], span
    run = next(s for s in job_spans if s["name"] == "run job")
    assert run["parent_span_id"] is None and run["trace_id"] != server["trace_id"]
    # The worker's log lines of that run carry its trace id.
    poll(system.traces, lambda _: f'"trace_id": "{run["trace_id"]}"' in system.worker.log_text(), "the worker's log line")


def _run_python(code: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "PROTOSERVE_TRACES"))}
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], env={**clean, **env}, cwd=REPO_ROOT,
                          capture_output=True, text=True, timeout=120, check=False)


def test_off_nothing_is_imported_or_wrapped(model_repository: Path, tmp_path: Path) -> None:
    """Built as the services build themselves with no OTEL_* set: neither the tracing SDK nor any of
    protoserve's tracing modules is loaded, no tracer provider is set, and the gateway and the
    inference batchers are the plain ones. (redis-py itself imports the OpenTelemetry *metrics* SDK
    when it is installed, for its own opt-in metrics: a start-up import, nothing per call.)"""
    done = _run_python(f"""
        import sys
        from protoserve_runtime import tracing
        from gateway.main import app
        from gateway.calls import Caller
        from inference_svc.service import build_core
        from inference_svc.settings import InferenceSettings
        from inference_svc.batching import ModelBatcher
        from protoserve_runtime.settings import from_env
        assert tracing.start("test", tracing.TracingConfig.from_environ()) is None
        gateway = app()
        assert type(gateway).__name__ == "HotApp", type(gateway)
        core = build_core(from_env(InferenceSettings, {{"PROTOSERVE_MODEL_REPOSITORY": {str(model_repository)!r}}}))
        core.repository.load_all()
        assert type(core._batcher(core.repository.get("iris-knn", None))) is ModelBatcher
        ours = ("protoserve_runtime.tracing_sdk", "protoserve_runtime.tracing_grpc", "protoserve_runtime.tracing_asgi",
                "inference_svc.traced", "worker_svc.traced", "opentelemetry.sdk.trace")
        loaded = sorted(m for m in sys.modules if m.startswith(ours))
        assert not loaded, loaded
        if "opentelemetry.trace" in sys.modules:
            from opentelemetry import trace
            assert trace._TRACER_PROVIDER is None
        print("ok")
    """, {"PROTOSERVE_LOG_LEVEL": "error"})
    assert done.returncode == 0 and done.stdout.strip().endswith("ok"), done.stderr[-3000:]


@pytest.mark.parametrize(
    ("environ", "exporter"),
    [
        ({}, None),
        ({"OTEL_SERVICE_NAME": "x", "OTEL_TRACES_SAMPLER": "always_on"}, None),  # settings of the SDK alone turn nothing on
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4317"}, "otlp"),
        ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://collector:4317"}, "otlp"),
        ({"OTEL_TRACES_EXPORTER": "console"}, "console"),
        ({"OTEL_TRACES_EXPORTER": "otlp,console"}, "otlp"),
        ({"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4317"}, None),
        ({"OTEL_SDK_DISABLED": "true", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4317"}, None),
        ({"OTEL_SDK_DISABLED": "TRUE", "OTEL_TRACES_EXPORTER": "otlp"}, None),
        ({"OTEL_SDK_DISABLED": "false", "OTEL_TRACES_EXPORTER": "otlp"}, "otlp"),
    ],
)
def test_on_only_when_the_otel_variables_say_so(environ: dict[str, str], exporter: str | None) -> None:
    assert TracingConfig.from_environ(None, environ).exporter == exporter


def test_disabled_wins_over_the_traces_file(tmp_path: Path) -> None:
    assert not TracingConfig.from_environ(tmp_path / "t", {"OTEL_SDK_DISABLED": "true"}).enabled
    assert TracingConfig.from_environ(tmp_path / "t", {}).exporter == "file"


@pytest.mark.parametrize("fmt", ["json", "text"])
def test_log_lines_carry_the_active_spans_ids(tmp_path: Path, fmt: str) -> None:
    spans = tmp_path / "spans.jsonl"
    done = _run_python(f"""
        import logging
        from pathlib import Path
        from protoserve_runtime import logging as json_logging, tracing
        json_logging.configure("test", "info", {fmt!r})
        traced = tracing.start("test", tracing.TracingConfig.from_environ(Path({str(spans)!r})))
        log = logging.getLogger("test")
        with traced.tracer.start_as_current_span("work"):
            log.info("inside")
        log.info("outside")
        traced.shutdown()
    """, {})
    assert done.returncode == 0, done.stderr
    span = one(read_spans(spans), "work")
    lines = done.stderr.splitlines()
    inside = next(line for line in lines if "inside" in line)
    outside = next(line for line in lines if "outside" in line)
    if fmt == "json":
        entry = json.loads(inside)
        assert (entry["trace_id"], entry["span_id"]) == (span["trace_id"], span["span_id"])
        assert "trace_id" not in json.loads(outside)
    else:
        assert f"trace_id={span['trace_id']}" in inside and f"span_id={span['span_id']}" in inside
        assert "trace_id" not in outside
