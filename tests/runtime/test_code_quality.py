"""Style and types are checked by the same tools `make lint` runs, so CI holds them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.harness import REPO_ROOT

BIN = Path(sys.executable).parent


def test_ruff_is_clean() -> None:
    result = subprocess.run([str(BIN / "ruff"), "check", "."], cwd=REPO_ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout


def test_mypy_is_clean() -> None:
    packages = [p for p in ("protoserve_runtime", "inference_svc", "monitoring_svc", "gateway") if (REPO_ROOT / p).is_dir()]
    result = subprocess.run([str(BIN / "mypy"), *packages], cwd=REPO_ROOT, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout
