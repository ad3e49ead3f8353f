"""Independent versions: each service says its version, contracts change compatibly, and a client
built from an earlier commit's protos works against the current server (a rolling upgrade)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import grpc
import pytest

import inference_svc
from protoserve_runtime import server_info
from protoserve_runtime.codegen import generate
from tests.harness import REPO_ROOT

BUF = Path(sys.executable).parent / "buf"


def git(*args: str) -> str:
    return subprocess.run(["git", *args], cwd=REPO_ROOT, check=True, capture_output=True, text=True).stdout.strip()


def export_protos(commit: str, into: Path) -> Path:
    """protos/ and buf.yaml as they were at commit."""
    into.mkdir(parents=True)
    archive = subprocess.run(["git", "archive", commit, "protos", "buf.yaml"], cwd=REPO_ROOT, check=True,
                             capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    return into


def buf_breaking(against: Path, cwd: Path = REPO_ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(BUF), "breaking", "--against", str(against)], cwd=cwd, capture_output=True, text=True)


def test_each_service_reports_its_own_version(inference_address: str) -> None:
    with grpc.insecure_channel(inference_address) as channel:
        info = server_info.fetch(channel)
    assert (info.service, info.version) == ("inference", inference_svc.__version__)
    assert "inference.GRPCInferenceService" in info.grpc_services


def previous_commit() -> str:
    try:
        return git("rev-parse", "--verify", "--quiet", "HEAD~1^{commit}")
    except subprocess.CalledProcessError:
        pytest.skip("buf breaking: this clone has no previous commit to compare the protos against (a first commit "
                    "or a shallow clone); .ci/run says so too")


def test_protos_are_compatible_with_the_previous_commit(tmp_path: Path) -> None:
    previous = export_protos(previous_commit(), tmp_path / "previous")
    result = buf_breaking(previous)
    assert result.returncode == 0, f"breaking changes against HEAD~1:\n{result.stdout}{result.stderr}"


def test_buf_breaking_catches_a_removed_field(tmp_path: Path) -> None:
    """The check above can fail: a copy of the current protos with a field taken out is refused."""
    current = export_protos("HEAD", tmp_path / "current")
    changed = tmp_path / "changed"
    subprocess.run(["cp", "-r", str(current), str(changed)], check=True)
    proto = changed / "protos/protoserve/serverinfo/v1/server_info_service.proto"
    text = proto.read_text(encoding="utf-8")
    proto.write_text(text.replace("  string version = 2;\n", ""), encoding="utf-8")
    result = buf_breaking(current, cwd=changed)
    assert result.returncode != 0 and "version" in result.stdout + result.stderr


def test_a_client_of_the_previous_contract_works_against_the_current_server(
    inference_address: str, tmp_path: Path
) -> None:
    """Rolling upgrade: the server is new, the client was generated from the protos before their last change."""
    last_change = git("rev-list", "-1", "HEAD", "--", "protos")
    old_protos = export_protos(f"{last_change}~1", tmp_path / "old") / "protos"
    assert (old_protos / "protoserve/inference/v1/inference_service.proto").exists()
    old_gen = tmp_path / "old-gen"
    generate(old_gen, old_protos)
    result = subprocess.run([sys.executable, str(Path(__file__).parent / "old_client.py"), str(old_gen), inference_address],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    seen = json.loads(result.stdout)
    assert seen["generated_from"].startswith(str(old_gen))
    assert seen["label"] == "setosa" and "iris-knn" in seen["models"]
    assert seen["version"] == inference_svc.__version__
