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


PACKAGES = ("protoserve_runtime", "protoserve_models", "inference_svc", "explain_svc", "worker_svc", "monitoring_svc",
            "gateway", "protoserve_cli")


def test_import_contracts_hold() -> None:
    """Layers (CLI > deployables > model package > runtime), services apart, no cycles: pyproject.toml."""
    result = subprocess.run([str(BIN / "lint-imports")], cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout
    assert "0 broken" in result.stdout


def test_every_package_is_under_a_contract() -> None:
    text = (REPO_ROOT / "pyproject.toml").read_text()
    for package in PACKAGES:
        assert f'"{package}"' in text.partition("[tool.importlinter]")[2], package


def test_mypy_is_clean() -> None:
    packages = [p for p in PACKAGES if (REPO_ROOT / p).is_dir()]
    result = subprocess.run([str(BIN / "mypy"), *packages], cwd=REPO_ROOT, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout
