"""The OpenAPI document is generated from the protos, validates, and holds up under schemathesis."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import httpx
from openapi_spec_validator import validate

from gateway.discovery import discover_routes
from protoserve_runtime.auth import scope_for
from tests.gateway.conftest import GatewayProcess

CHECKS = "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance"


def test_document_validates_and_covers_every_route(http: httpx.Client) -> None:
    spec = http.get("/openapi.json").json()
    validate(spec)
    for route in discover_routes():
        operation = spec["paths"][route.openapi_path][route.http_method.lower()]
        scope = scope_for(route.full_method)
        assert operation.get("security", []) == ([{"bearerAuth": [scope]}] if scope else [])
    predict = spec["paths"]["/v1/models/{model}:predict"]["post"]
    body = predict["requestBody"]["content"]["application/json"]["schema"]
    assert set(body["properties"]) == {"version", "rows", "skip_cache"}  # model comes from the path
    task = spec["components"]["schemas"]["protoserve.common.v1.ModelCard"]["properties"]["task"]
    assert task["enum"] == ["TASK_UNSPECIFIED", "TASK_CLASSIFICATION", "TASK_REGRESSION", "TASK_ANOMALY_DETECTION",
                            "TASK_CLUSTERING"]


def test_every_model_has_a_real_row_as_example(http: httpx.Client) -> None:
    """Each model's example row (its card's reference sample) fills "Try it out" and fuzzers' requests."""
    spec = http.get("/openapi.json").json()
    validate(spec)
    predict = spec["paths"]["/v1/models/{model}:predict"]["post"]
    examples = predict["requestBody"]["content"]["application/json"]["examples"]
    assert {"iris-knn", "sentiment", "regression-gp", "risk"} <= set(examples)
    for name, example in examples.items():
        answer = http.post(f"/v1/models/{name}:predict", json=example["value"])
        assert answer.status_code == 200, (name, answer.text)
    model = next(p for p in predict["parameters"] if p["name"] == "model")
    assert set(model["examples"]) == set(examples)
    assert "examples" in spec["paths"]["/v1/models/{model}:explain"]["post"]["requestBody"]["content"]["application/json"]


def test_schemathesis_finds_no_server_error_and_no_schema_violation(gateway: GatewayProcess, tmp_path: Path) -> None:
    # A bounded, seeded run (a few hundred cases) against the gateway on loopback.
    result = subprocess.run(
        [str(Path(sys.executable).parent / "schemathesis"), "run", f"{gateway.url}/openapi.json",
         "--checks", CHECKS, "--max-examples", "80", "--seed", "7", "--phases", "examples,coverage,fuzzing",
         "--workers", "1", "--request-timeout", "30", "--no-color"],
        cwd=tmp_path, capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, result.stdout[-6000:]
    generated = re.search(r"(\d+) generated", result.stdout)
    assert generated and int(generated.group(1)) >= 100, result.stdout[-2000:]
