"""The monitoring dashboard in headless Chromium, over a real monitored system behind the gateway."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import expect

from tests.gateway.conftest import GatewayProcess, pick_model, start_gateway
from tests.monitoring.system import reference_rows, start_monitoring, start_publishing_inference, wait_until

ROWS = 300  # above PROTOSERVE_DRIFT_MIN_ROWS (200), so the window is judged for drift


@pytest.fixture(scope="module")
def monitored_gateway(model_repository: Path, redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[
    GatewayProcess
]:
    """Inference publishing events, monitoring with fast alert rules, the gateway in front of both."""
    log_dir = tmp_path_factory.mktemp("dashboard")
    names = {"PROTOSERVE_EVENTS_STREAM": "test:dashboard:events", "PROTOSERVE_MONITORING_KEY_PREFIX": "test:dashboard"}
    started = [start_publishing_inference(model_repository, log_dir, redis_url, **names)]
    try:
        started.append(start_monitoring(model_repository, log_dir, redis_url, **names))
        gateway = start_gateway(log_dir, [started[0].address], PROTOSERVE_MONITORING_ADDRESS=started[1].address)
        started.append(gateway)
        yield gateway
    finally:
        for service in reversed(started):
            service.terminate()


def send_shifted_traffic(http: httpx.Client, model_repository: Path) -> list[dict[str, Any]]:
    rows = reference_rows(model_repository, "iris-knn", ROWS, seed=11)
    for row in rows:
        row["sepal_width"] += 1.5
    predictions: list[dict[str, Any]] = []
    for start in range(0, ROWS, 100):
        response = http.post("/v1/models/iris-knn:predict", json={"rows": rows[start : start + 100]})
        assert response.status_code == 200, response.text
        predictions += response.json()["predictions"]
    return predictions


def send_feedback(http: httpx.Client, predictions: list[dict[str, Any]]) -> None:
    """True labels for 40 predictions, one in four wrong: 75% accuracy."""
    for i, prediction in enumerate(predictions[:40]):
        predicted = prediction["classification"]["label"]
        truth = predicted if i % 4 else ("setosa" if predicted != "setosa" else "virginica")
        body = {"prediction_id": prediction["prediction_id"], "label": truth}
        # The monitoring service learns of a prediction when it consumes its event: 404 until then.
        response = wait_until(lambda b=body: (r := http.post("/v1/feedback", json=b)).status_code != 404 and r,
                              what="the prediction to be consumed")
        assert response.status_code == 200, response.text


def test_dashboard_shows_the_drift_alert_of_the_shifted_feature(
    browser: Any, monitored_gateway: GatewayProcess, model_repository: Path, tmp_path: Path
) -> None:
    base = monitored_gateway.url
    with httpx.Client(base_url=base, timeout=60) as http:
        predictions = send_shifted_traffic(http, model_repository)
        context = browser.new_context(viewport={"width": 1000, "height": 900})
        page = context.new_page()
        outside: list[str] = []
        page.on("request", lambda request: None if request.url.startswith(base) else outside.append(request.url))
        page.goto(base + "/")
        page.wait_for_selector("#fields .field")
        pick_model(page, "iris-knn")

        page.wait_for_selector('#alerts .alert[data-feature="sepal_width"]', timeout=90_000)
        alerts = page.locator("#alerts .alert")
        assert alerts.evaluate_all("rows => rows.map(r => [r.dataset.rule, r.dataset.feature])") == [
            ["feature drift", "sepal_width"]
        ]
        expect(page.locator("#traffic-summary")).to_contain_text(f"{ROWS} rows", timeout=30_000)
        assert page.locator("#traffic-chart rect.traffic-bar").count() > 0
        expect(page.locator('#drift .feature[data-feature="sepal_width"] .verdict')).to_have_text("drifted", timeout=30_000)
        features = page.locator("#drift .feature")
        assert features.count() == 4
        assert features.evaluate_all("fs => fs.filter(f => f.classList.contains('drifted')).map(f => f.dataset.feature)") == [
            "sepal_width"
        ]
        shifted = page.locator('#drift .feature[data-feature="sepal_width"]')
        assert shifted.locator("rect.ref").count() == shifted.locator("rect.live").count() > 1

        send_feedback(http, predictions)
        expect(page.locator('#accuracy [data-window="5m"] .accuracy-value')).to_have_text("75.0% (40)", timeout=30_000)
        page.screenshot(path=str(tmp_path / "dashboard.png"), full_page=True)
        assert (tmp_path / "dashboard.png").stat().st_size > 0
        assert outside == [], f"the page reached beyond the gateway: {outside}"
        context.close()
