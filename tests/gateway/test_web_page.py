"""The web page in headless Chromium (Debian's, never a downloaded one): pick, fill, click, read."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page

from tests.gateway.conftest import GatewayProcess, pick_model


@pytest.fixture
def page(browser: Any, gateway: GatewayProcess) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1000, "height": 900})
    page = context.new_page()
    outside: list[str] = []
    page.on("request", lambda request: None if request.url.startswith(gateway.url) else outside.append(request.url))
    page.goto(gateway.url + "/")
    page.wait_for_selector("#fields .field")
    yield page
    assert outside == [], f"the page reached beyond the gateway: {outside}"
    context.close()


def test_sentiment_text_box_and_probability_bars(page: Page, tmp_path: Path) -> None:
    pick_model(page, "sentiment")
    page.fill("#input-text", "I love this phone, the screen is gorgeous and the battery lasts for days!")
    page.click("#predict")
    page.wait_for_selector("#headline")
    assert page.inner_text("#headline").startswith("positive")
    bars = page.locator(".bar-row")
    assert bars.count() == 3
    assert sorted(bars.evaluate_all("rows => rows.map(r => r.dataset.label)")) == ["negative", "neutral", "positive"]
    widths = bars.evaluate_all("rows => rows.map(r => parseFloat(r.querySelector('.bar').style.width))")
    assert abs(sum(widths) - 100) < 1
    page.screenshot(path=str(tmp_path / "sentiment.png"), full_page=True)
    assert (tmp_path / "sentiment.png").stat().st_size > 0


def test_regression_mean_with_an_error_band(page: Page, tmp_path: Path) -> None:
    pick_model(page, "regression-gp")
    for name, value in {"age": "0.03", "bmi": "0.06", "bp": "0.02", "s5": "0.03"}.items():
        page.fill(f"#input-{name}", value)
    page.click("#predict")
    page.wait_for_selector("#band")
    assert page.inner_text("#headline").startswith("mean ")
    band = page.locator("#band rect")
    assert float(band.get_attribute("width") or 0) > 1
    page.screenshot(path=str(tmp_path / "regression.png"), full_page=True)


def test_errors_are_shown(page: Page) -> None:
    pick_model(page, "iris-knn")
    for name in ("sepal_width", "petal_length", "petal_width"):
        page.fill(f"#input-{name}", "1.5")  # sepal_length stays empty: the service names it
    page.click("#predict")
    page.wait_for_selector("#error")
    assert "400" in page.inner_text("#error") and "sepal_length" in page.inner_text("#error")


def test_explanation_of_a_sentiment(page: Page, tmp_path: Path) -> None:
    pick_model(page, "sentiment")
    page.fill("#input-text", "A dull, lifeless and painfully boring film.")
    page.click("#explain")
    page.wait_for_selector("#explanation")
    assert page.inner_text("#explanation").startswith("Why 'negative'")
    names = page.locator(".attr-row").evaluate_all("rows => rows.map(r => r.dataset.name)")
    assert "boring" in names or "dull" in names, names
    page.screenshot(path=str(tmp_path / "explain.png"), full_page=True)


def test_a_slow_model_card_never_replaces_a_newer_pick(page: Page) -> None:
    def slow_card(route: Any) -> None:
        page.wait_for_timeout(1500)  # the sentiment card answers after the iris card
        route.continue_()

    page.route("**/v1/models/sentiment", slow_card)
    with page.expect_response("**/v1/models/sentiment"):
        page.select_option("#model", "sentiment")
        assert page.get_attribute("#form", "aria-busy") == "true"
        assert page.is_disabled("#predict")
        pick_model(page, "iris-knn")
        page.fill("#input-sepal_length", "5.1")
    page.wait_for_timeout(200)  # let the page handle the late answer before reading it back
    assert page.get_attribute("#form", "data-model") == "iris-knn"
    assert page.input_value("#input-sepal_length") == "5.1"
    assert page.locator("textarea#input-text").count() == 0
