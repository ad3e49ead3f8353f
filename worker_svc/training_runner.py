"""A training run on a job worker: the engine runs while a heartbeat keeps the job claimed (a fit
can outlast the visibility timeout), progress goes to the job record, and the finished run is
stored on the record before the job completes."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from typing import Any

from protoserve_models.training.engine import Engine, RunStopped
from protoserve_models.training.record import TrainingSpec

Report = Callable[[int], bool]  # progress in steps of 100; False when the run must stop


class TrainingRunner:
    def __init__(self, engine: Engine, heartbeat_seconds: float) -> None:
        self.engine = engine
        self.heartbeat_seconds = heartbeat_seconds

    def run(self, spec_json: bytes, report: Report, stop: threading.Event) -> dict[str, Any]:
        """Train; the run's record (protobuf JSON form). Raises RunStopped when the job was cancelled,
        taken over or the worker is stopping, before the new version exists."""
        spec = TrainingSpec.from_json(spec_json)
        done = threading.Event()
        state = {"steps": 0, "lost": False}

        def send(steps: int) -> None:
            if not report(steps):
                state["lost"] = True

        def progress(fraction: float) -> None:
            state["steps"] = int(fraction * 100)
            send(int(state["steps"]))
            if state["lost"] or stop.is_set():
                raise RunStopped()

        def beat() -> None:
            while not done.wait(self.heartbeat_seconds):
                try:
                    send(int(state["steps"]))
                except Exception:  # a missed beat is retried at the next one
                    pass

        heart = threading.Thread(target=beat, name="training-heartbeat", daemon=True)
        heart.start()
        try:
            return self.engine.train(spec, progress)
        finally:
            done.set()
            heart.join()


def run_fields(run: dict[str, Any]) -> dict[str, str]:
    """What a finished run writes on its job record."""
    return {"training": json.dumps(run), "version": str(run.get("version", ""))}
