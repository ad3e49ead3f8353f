"""Steady mixed load on a running System: predictions and explanations through the gateway and
straight to the replicas over gRPC (plus jobs and feedback where those services exist).

Each call's outcome is kept with its time, so a fault's figures (requests failed, time to
recover) come from the same record as a soak's (no errors at all).
"""

from __future__ import annotations

import itertools
import threading
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import grpc
import httpx
from protoserve.inference.v1 import inference_service_pb2 as pb
from protoserve.inference.v1 import inference_service_pb2_grpc

from tests.reliability.system import HAS_JOBS, HAS_MONITORING, System

if TYPE_CHECKING:
    from tests.reliability.jobs import JobLedger

IRIS = {"sepal_length": 5.1, "sepal_width": 3.5, "petal_length": 1.4, "petal_width": 0.2}
OK = "OK"
FEEDBACK_AFTER = 1.0  # seconds


@dataclass(frozen=True)
class Outcome:
    at: float  # time.monotonic()
    kind: str
    result: str  # OK, an HTTP status, or a gRPC code name
    seconds: float


@dataclass
class Record:
    outcomes: list[Outcome] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, outcome: Outcome) -> None:
        with self.lock:
            self.outcomes.append(outcome)

    def failures(self, since: float = 0.0) -> list[Outcome]:
        return [o for o in self.outcomes if o.result != OK and o.at >= since]

    def summary(self) -> dict[str, Counter[str]]:
        by_kind: dict[str, Counter[str]] = {}
        for o in self.outcomes:
            by_kind.setdefault(o.kind, Counter())[o.result] += 1
        return by_kind

    def recovered_after(self, since: float) -> float | None:
        """Seconds from ``since`` to the first success of every kind after its last failure."""
        worst = 0.0
        for kind in {o.kind for o in self.outcomes}:
            mine = [o for o in self.outcomes if o.kind == kind and o.at >= since]
            failed = [o.at for o in mine if o.result != OK]
            if not failed:
                continue
            later = [o.at for o in mine if o.result == OK and o.at > failed[-1]]
            if not later:
                return None
            worst = max(worst, later[0] - since)
        return worst


Action = Callable[[], str]  # returns OK or the failure's code


def _failure(response: httpx.Response) -> str:
    """The HTTP status, with the gateway's error code and message for a 5xx (to diagnose it)."""
    if response.status_code < 500:
        return str(response.status_code)
    return f"{response.status_code} {response.text[:300]}"


class Actions:
    """One client's calls; each thread of the load has its own (httpx and gRPC clients are per thread)."""

    def __init__(self, system: System, jobs: JobLedger | None = None) -> None:
        self.system = system
        self.jobs = jobs
        self.http = httpx.Client(base_url=system.gateway_url, timeout=30, headers=system.bearer("admin"))
        self.channels = [grpc.insecure_channel(system.address(name)) for name in system.services
                         if name.startswith("inference-")]
        self.predictions: deque[tuple[float, str]] = deque(maxlen=1000)
        self.stubs = itertools.cycle([inference_service_pb2_grpc.InferenceServiceStub(c) for c in self.channels])
        if jobs is not None:
            from protoserve.jobs.v1 import job_service_pb2_grpc

            self.job_stubs = [job_service_pb2_grpc.JobServiceStub(c) for c in self.channels]

    def close(self) -> None:
        self.http.close()
        for channel in self.channels:
            channel.close()

    def _rest(self, path: str, body: dict[str, object]) -> str:
        try:
            response = self.http.post(path, json=body)
        except httpx.TransportError as exc:
            return type(exc).__name__
        return OK if response.status_code == 200 else _failure(response)

    def rest_predict(self) -> str:
        try:
            response = self.http.post("/v1/models/iris-knn:predict", json={"rows": [IRIS], "skip_cache": True})
        except httpx.TransportError as exc:
            return type(exc).__name__
        if response.status_code != 200:
            return _failure(response)
        prediction_id = response.json()["predictions"][0].get("prediction_id")
        if prediction_id:  # where monitoring exists: feedback on it a little later
            self.predictions.append((time.monotonic(), prediction_id))
        return OK

    def rest_feedback(self) -> str:
        """Feedback on a prediction at least a second old, so monitoring has consumed its event."""
        ready = [p for p in self.predictions if time.monotonic() - p[0] >= FEEDBACK_AFTER]
        if not ready:
            return self.rest_predict()
        # the newest one old enough; older ones are dropped (made while Redis or monitoring was
        # down, their events are gone by design and their feedback would be NOT_FOUND for good)
        _, prediction_id = ready[-1]
        for _ in ready:
            self.predictions.popleft()
        return self._rest("/v1/feedback", {"prediction_id": prediction_id, "label": "setosa"})

    def rest_sentiment(self) -> str:
        return self._rest("/v1/models/sentiment:predict", {"rows": [{"text": "a warm and funny film"}]})

    def rest_explain(self) -> str:
        return self._rest("/v1/models/sentiment:explain", {"rows": [{"text": "a dull and lifeless film"}], "top_k": 2})

    def grpc_predict(self) -> str:
        request = pb.PredictRequest(model="iris-knn")
        request.rows.add().update(IRIS)
        try:
            next(self.stubs).Predict(request, metadata=self.system.metadata("predict"), timeout=30)
        except grpc.RpcError as exc:
            return exc.code().name  # type: ignore[attr-defined, no-any-return]
        return OK

    def grpc_job(self) -> str:
        from tests.reliability.jobs import ROWS, submit

        assert self.jobs is not None
        return submit(self.job_stubs, self.jobs, [IRIS] * ROWS, self.system.metadata("predict"))

    def mix(self) -> list[tuple[str, Action]]:
        return [("rest_predict", self.rest_predict), ("grpc_predict", self.grpc_predict),
                ("rest_sentiment", self.rest_sentiment), ("rest_predict", self.rest_predict),
                ("grpc_predict", self.grpc_predict), ("rest_explain", self.rest_explain),
                *([("rest_feedback", self.rest_feedback)] if HAS_MONITORING else []),
                *([("grpc_job", self.grpc_job)] if self.jobs is not None else [])]


class Load:
    """``threads`` clients, each calling its mix in turn at ``rate / threads`` calls per second."""

    def __init__(self, system: System, rate: float = 20.0, threads: int = 4) -> None:
        self.system, self.rate, self.threads_n = system, rate, threads
        self.record = Record()
        self.jobs: JobLedger | None = None
        if HAS_JOBS:
            from tests.reliability.jobs import JobLedger

            self.jobs = JobLedger()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def __enter__(self) -> Load:
        if self.jobs is not None:
            from tests.reliability.jobs import Verifier

            # asks the replica that fault tests never kill
            self.verifier = Verifier(self.system.address("inference-1"), self.jobs, self.system.metadata("predict"))
        for _ in range(self.threads_n):
            thread = threading.Thread(target=self._run, daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(60)
        if self.jobs is not None:
            self.verifier.finish()

    def _run(self) -> None:
        actions = Actions(self.system, self.jobs)
        interval = self.threads_n / self.rate
        try:
            for kind, action in itertools.cycle(actions.mix()):
                if self._stop.is_set():
                    return
                start = time.monotonic()
                result = action()
                took = time.monotonic() - start
                self.record.add(Outcome(start, kind, result, took))
                self._stop.wait(max(0.0, interval - took))
        finally:
            actions.close()
