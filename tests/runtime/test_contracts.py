"""protos/ is the single source: buf lint is clean and gen/ is what protoc makes of it now."""

from __future__ import annotations

import filecmp
import subprocess
import sys
from pathlib import Path

from protoserve_runtime.codegen import GEN_ROOT, generate
from tests.harness import REPO_ROOT


def test_buf_lint_is_clean() -> None:
    buf = Path(sys.executable).with_name("buf")
    result = subprocess.run([str(buf), "lint"], cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr


def test_generated_code_is_current(tmp_path: Path) -> None:
    fresh = generate(tmp_path / "gen")
    assert fresh
    for module in fresh:
        relative = module.relative_to(tmp_path / "gen")
        current = GEN_ROOT / relative
        assert current.exists(), f"{relative} is missing from gen/: run `make gen`"
        assert filecmp.cmp(module, current, shallow=False), f"{relative} is stale: run `make gen`"
