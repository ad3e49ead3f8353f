"""Clients that are not our Python stubs: grpcurl through reflection, and Node.js built from protos/."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

from tests.harness import REPO_ROOT

GRPCURL = str(Path(sys.executable).with_name("grpcurl"))


def grpcurl(*args: str) -> str:
    result = subprocess.run([GRPCURL, *args], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_grpcurl_lists_describes_and_calls_through_reflection(inference_address: str) -> None:
    services = grpcurl("-plaintext", inference_address, "list").split()
    assert "protoserve.inference.v1.InferenceService" in services
    assert "grpc.health.v1.Health" in services
    described = grpcurl("-plaintext", inference_address, "describe", "protoserve.inference.v1.InferenceService")
    for rpc in ("Predict", "ListModels", "GetModel"):
        assert f"rpc {rpc}" in described
    message = grpcurl("-plaintext", inference_address, "describe", "protoserve.inference.v1.PredictRequest")
    assert "repeated .google.protobuf.Struct rows" in message
    answer = json.loads(grpcurl(
        "-plaintext", "-d", '{"model": "sentiment", "rows": [{"text": "I hate waiting, this is awful"}]}',
        inference_address, "protoserve.inference.v1.InferenceService/Predict",
    ))
    assert answer["predictions"][0]["classification"]["label"] == "negative"
    models = json.loads(grpcurl("-plaintext", inference_address, "protoserve.inference.v1.InferenceService/ListModels"))
    assert len(models["models"]) == 4


def test_readme_grpcurl_examples_work_as_pasted(inference_address: str) -> None:
    readme = (REPO_ROOT / "README.md").read_text()
    commands = [m for m in re.findall(r"^grpcurl .*?(?<!\\)$", readme, flags=re.M | re.S)]
    assert commands, "the README shows grpcurl examples"
    for command in commands:
        if "127.0.0.1:50051" not in command:
            continue  # another service's example; its own tests run it
        command = command.replace("\\\n", " ").replace("127.0.0.1:50051", inference_address)
        result = subprocess.run(command.replace("grpcurl", GRPCURL, 1), shell=True, capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, f"{command}\n{result.stderr}"


def test_node_client_built_from_protos(inference_address: str) -> None:
    node = shutil.which("node")
    assert node, "Node.js is needed for this test (make test installs its packages with npm)"
    result = subprocess.run(
        [node, str(REPO_ROOT / "tests/node/client.js"), inference_address, str(REPO_ROOT / "protos")],
        capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 0, result.stderr
    answer = json.loads(result.stdout)
    assert answer["models"] == ["iris-knn", "regression-gp", "risk", "sentiment"]
    assert answer["prediction"]["predictions"][0]["classification"]["label"] == "virginica"
