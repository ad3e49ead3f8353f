"""One whole system for the reliability tests (auth on, two inference replicas); fault tests
restart what they kill, so the next test finds every process serving again."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.reliability.system import System


@pytest.fixture(scope="session")
def system(model_repository: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[System]:
    running = System.start(tmp_path_factory.mktemp("system"), model_repository)
    yield running
    running.stop()
