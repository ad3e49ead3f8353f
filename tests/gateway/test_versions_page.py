"""The Versions panel in headless Chromium, and ModelService's REST routes (PUT included) with auth on."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Page, expect

from protoserve_runtime.auth import KeyStore
from tests.conftest import start_inference
from tests.gateway.conftest import start_gateway
from tests.lifecycle.system import add_version

WAIT_MS = 60_000  # how long the page may take on a busy machine (a bound, not a measure)
RUN = {
    "run_id": "run-7", "model": "iris-knn", "recipe": "iris-knn", "parameters": {"n_neighbors": 7},
    "state": "TRAINING_RUN_STATE_SUCCEEDED", "version": "2", "duration_seconds": 1.25,
    "data": {"sha256": "ab" * 32, "train_rows": 120, "test_rows": 30, "rows_by_source": {"builtin": 150}},
    "metrics": {"accuracy": 0.97},
    "promotion": {"mode": "PROMOTION_MODE_AUTO", "promoted": False, "champion_version": "1", "metric": "accuracy",
                  "challenger_score": 0.9667, "champion_score": 0.9667, "margin": 0.01,
                  "reason": "the challenger did not beat the champion by the margin"},
}


@pytest.fixture(scope="module")
def versions_system(model_repository: Path, redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[
    dict[str, Any]
]:
    """iris-knn versions 1 and 2 (2 made by a recorded training run), auth on, Redis for the state."""
    repository = tmp_path_factory.mktemp("versions-models")
    (repository / "iris-knn").mkdir()
    for version in ("1", "2"):
        add_version(model_repository, repository, "iris-knn", version)
    card_path = repository / "iris-knn" / "2" / "card.json"
    card = json.loads(card_path.read_text(encoding="utf-8"))
    card_path.write_text(json.dumps({**card, "training": {**card.get("training", {}), "run": RUN}}), encoding="utf-8")
    data_dir = tmp_path_factory.mktemp("versions-data")
    store = KeyStore(data_dir / "api_keys.json")
    keys = {scope: store.create(f"{scope}-key", [scope])[0] for scope in ("predict", "admin")}
    settings = {"PROTOSERVE_AUTH": "on", "PROTOSERVE_DATA_DIR": str(data_dir)}
    logs = tmp_path_factory.mktemp("versions-logs")
    inference = start_inference(repository, logs, PROTOSERVE_INFERENCE_WORKERS="1", PROTOSERVE_REDIS_URL=redis_url,
                                PROTOSERVE_REDIS_PREFIX=f"versions-{uuid.uuid4().hex[:8]}", **settings)
    gateway = start_gateway(logs, [inference.address], **settings)
    yield {"keys": keys, "url": gateway.url}
    gateway.terminate()
    inference.terminate()


def test_rest_routes_need_admin_and_put_works(versions_system: dict[str, Any]) -> None:
    keys = versions_system["keys"]
    admin = {"authorization": f"Bearer {keys['admin']}"}
    with httpx.Client(base_url=versions_system["url"], timeout=30) as client:
        body = {"routes": [{"version": "1", "weight": 90}, {"version": "2", "weight": 10}], "shadow_version": ""}
        denied = client.put("/v1/models/iris-knn/traffic", json=body, headers={"authorization": f"Bearer {keys['predict']}"})
        assert denied.status_code == 403
        response = client.put("/v1/models/iris-knn/traffic", json=body, headers=admin)
        assert response.status_code == 200, response.text
        assert [r["weight"] for r in response.json()["routes"]] == [90, 10]
        bad = client.put("/v1/models/iris-knn/traffic", json={"routes": [{"version": "1", "weight": 0}]}, headers=admin)
        assert bad.status_code == 400 and "routes[0].weight" in bad.text
        policy = client.put("/v1/models/iris-knn/version-policy", json={"policy": {"all": {}}}, headers=admin)
        assert policy.status_code == 200 and policy.json()["versions"] == ["2", "1"]
        promoted = client.post("/v1/models/iris-knn/versions/1:promote", json={}, headers=admin)
        assert promoted.status_code == 200 and promoted.json()["version"] == "1"
        listing = client.get("/v1/models/iris-knn/versions", headers=admin).json()
        assert listing["default_version"] == "1" and [v["version"] for v in listing["versions"]] == ["2", "1"]


def test_versions_panel_needs_admin_then_shows_every_version(
    browser: Any, versions_system: dict[str, Any], tmp_path: Path
) -> None:
    keys = versions_system["keys"]
    with httpx.Client(base_url=versions_system["url"], timeout=30) as client:
        body = {"routes": [{"version": "1", "weight": 90}, {"version": "2", "weight": 10}], "shadow_version": "2"}
        assert client.put("/v1/models/iris-knn/traffic", json=body,
                          headers={"authorization": f"Bearer {keys['admin']}"}).status_code == 200
    context = browser.new_context(viewport={"width": 1200, "height": 1000})
    page: Page = context.new_page()
    page.goto(versions_system["url"] + "/")
    page.fill("#api-key", keys["predict"])
    page.dispatch_event("#api-key", "change")
    expect(page.locator("#versions-status")).to_contain_text("admin scope", timeout=WAIT_MS)
    page.fill("#api-key", keys["admin"])
    page.dispatch_event("#api-key", "change")
    expect(page.locator("#versions-table tr.version")).to_have_count(2, timeout=WAIT_MS)
    rows = page.locator("#versions-table tr.version")
    assert rows.evaluate_all("rows => rows.map(r => r.dataset.version)") == ["2", "1"]
    two, one = page.locator('tr[data-version="2"]'), page.locator('tr[data-version="1"]')
    assert one.locator(".v-traffic").inner_text() == "90.0%" and two.locator(".v-traffic").inner_text() == "10.0%"
    assert "shadow" in two.locator(".v-role").inner_text() and "ready" in two.locator(".v-state").inner_text()
    assert "accuracy" in one.locator(".v-metrics").inner_text()
    assert "built outside a training run" in one.locator(".v-run").inner_text()
    assert two.locator(".run-recipe").inner_text() == "iris-knn"
    assert "n_neighbors=7" in two.locator(".run-parameters").inner_text()
    assert "120 train / 30 held-out rows (builtin 150)" in two.locator(".run-data").inner_text()
    assert two.locator(".run-duration").inner_text() == "1.250 s"
    decision = two.locator(".run-promotion").inner_text()
    assert "not promoted" in decision and "0.967" in decision and "champion v1" in decision
    assert "shadow v2" in page.inner_text("#versions-status")
    page.locator("#versions-panel").screenshot(path=str(tmp_path / "versions.png"))
    context.close()
