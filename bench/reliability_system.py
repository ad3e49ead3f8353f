"""What the reliability benches share: the built-in models (built once into a cache dir) and the
whole system started on loopback in a temporary directory."""

from __future__ import annotations

import argparse
import contextlib
import tempfile
from collections.abc import Iterator
from pathlib import Path

from protoserve_models.builtin.build import build_models
from tests.reliability.system import System


def arguments(description: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--models", type=Path, help="a built model repository (default: build one in a temp dir)")
    return parser


@contextlib.contextmanager
def running_system(models: Path | None, **settings: str) -> Iterator[System]:
    with tempfile.TemporaryDirectory(prefix="protoserve-reliability-") as tmp:
        root = Path(tmp)
        if models is None:
            models = root / "models"
            build_models(models)
        system = System.start(root / "system", models, **settings)
        try:
            yield system
        finally:
            system.stop()
