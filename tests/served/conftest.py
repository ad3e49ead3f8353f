"""Users' models added with `protoserve models add` and served by the whole system: inference,
explain, monitoring, a job worker and the gateway, on one Redis."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import start_inference
from tests.explain.conftest import start_explain
from tests.gateway.conftest import GatewayProcess, start_gateway
from tests.harness import ServiceProcess, start_side_by_side
from tests.jobs.harness import WorkerProcess
from tests.monitoring.system import start_monitoring
from tests.served.shapes import BUILDERS, Shape

PROTOSERVE = str(Path(sys.executable).with_name("protoserve"))
BROKEN = "penguins-broken"


def add(shape: Shape, repository: Path) -> subprocess.CompletedProcess[str]:
    """`protoserve models add` as a user types it."""
    argv = [PROTOSERVE, "models", "add", shape.name, str(shape.model_file), "--sample", str(shape.sample_file),
            "--repository", str(repository), *shape.flags]
    if shape.target:
        argv += ["--target", shape.target]
    return subprocess.run(argv, capture_output=True, text=True, timeout=300)


def break_a_copy(repository: Path) -> None:
    """A version whose card is wrong for its model: a number column declared a string column.
    Its rows pass the card's checks, and the model then fails on its own reference sample."""
    source, target = repository / "penguins" / "1", repository / BROKEN / "1"
    shutil.copytree(source, target)
    card = json.loads((target / "card.json").read_text())
    card["name"] = BROKEN
    for feature in card["inputs"]:
        if feature["name"] == "bill_length_mm":
            feature.update(type="string", dtype="object")
    sample = card["reference_sample"]
    sample["bill_length_mm"] = [None if v is None else f"{v} mm" for v in sample["bill_length_mm"]]
    (target / "card.json").write_text(json.dumps(card))


@pytest.fixture(scope="session")
def shapes(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Shape]:
    root = tmp_path_factory.mktemp("user-models")
    # Two at a time: the MLflow shapes are saved by a training script's process each, mostly importing.
    with ThreadPoolExecutor(max_workers=2) as pool:
        return {shape.name: shape for shape in pool.map(lambda build: build(root), BUILDERS)}


@pytest.fixture(scope="session")
def added(shapes: dict[str, Shape], tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """What `protoserve models add` printed for each shape (all added to one repository)."""
    repository = tmp_path_factory.mktemp("served-repository")
    printed = {}
    # Two at a time, as two users adding models to one repository would: each command is a process
    # of its own, mostly spent importing, and the machine has two cores.
    with ThreadPoolExecutor(max_workers=2) as pool:
        results = dict(zip(shapes, pool.map(lambda shape: add(shape, repository), shapes.values())))
    for name, result in results.items():
        assert result.returncode == 0, f"{name}: {result.stderr[-3000:]}"
        printed[name] = result.stdout
    break_a_copy(repository)
    printed["repository"] = str(repository)
    return printed


@dataclass
class Served:
    repository: Path
    inference: ServiceProcess
    explain: ServiceProcess
    monitoring: ServiceProcess
    gateway: GatewayProcess
    worker: WorkerProcess


@pytest.fixture(scope="session")
def served(added: dict[str, str], redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    repository = Path(added["repository"])
    logs = tmp_path_factory.mktemp("served-logs")
    key = uuid.uuid4().hex[:10]
    shared = {
        "PROTOSERVE_REDIS_URL": redis_url, "PROTOSERVE_REDIS_PREFIX": f"served-{key}",
        "PROTOSERVE_EVENTS_STREAM": f"served-{key}:events", "PROTOSERVE_REPOSITORY_POLL_SECONDS": "0.5",
        "PROTOSERVE_LABELED_EXAMPLES_STREAM": f"served-{key}:labeled-examples",
    }
    inference, explain, monitoring = start_side_by_side(
        lambda: start_inference(repository, logs, PROTOSERVE_INFERENCE_WORKERS="1",
                                PROTOSERVE_EVENTS_FLUSH_SECONDS="0.02", **shared),
        lambda: start_explain(repository, logs, PROTOSERVE_EXPLAIN_WORKERS="1", **shared),
        lambda: start_monitoring(repository, logs, redis_url, PROTOSERVE_MONITORING_KEY_PREFIX=f"served-{key}:monitoring",
                                 PROTOSERVE_DRIFT_MIN_ROWS="20", **shared),
    )
    worker = WorkerProcess(repository, shared, logs / "worker.log")
    gateway = start_gateway(logs, [inference.address], PROTOSERVE_EXPLAIN_ADDRESS=explain.address,
                            PROTOSERVE_MONITORING_ADDRESS=monitoring.address)
    yield Served(repository, inference, explain, monitoring, gateway, worker)
    gateway.terminate()
    worker.stop()
    monitoring.terminate()
    explain.terminate()
    inference.terminate()
