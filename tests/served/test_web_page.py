"""The web page with users' models, in headless Chromium: a select of the categories seen in
training, a checkbox for a boolean, and each task's answer."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import Page

from tests.gateway.conftest import browser, pick_model  # noqa: F401  (the browser fixture)
from tests.served.conftest import Served


@pytest.fixture
def page(browser: Any, served: Served) -> Iterator[Page]:  # noqa: F811
    context = browser.new_context(viewport={"width": 1000, "height": 900})
    page = context.new_page()
    page.goto(served.gateway.url + "/")
    page.wait_for_selector("#fields .field")
    yield page
    context.close()


def test_categories_are_a_select_and_missing_values_an_empty_choice(page: Page) -> None:
    pick_model(page, "penguins")
    options = page.locator("#input-island option").evaluate_all("options => options.map(o => o.value)")
    assert options == ["Biscoe", "Dream", "Torgersen"]  # island is never missing: no empty choice
    assert page.locator("#input-sex option").evaluate_all("options => options.map(o => o.value)")[0] == ""
    for name, value in {"bill_length_mm": "39.1", "bill_depth_mm": "18.7", "flipper_length_mm": "181",
                        "body_mass_g": "3750"}.items():
        page.fill(f"#input-{name}", value)
    page.select_option("#input-island", "Torgersen")
    page.select_option("#input-sex", "")  # sent as null, which this column takes
    page.click("#predict")
    page.wait_for_selector("#headline")
    assert page.inner_text("#headline").startswith("Adelie")


def test_a_boolean_is_a_checkbox(page: Page) -> None:
    pick_model(page, "penguins-typed")
    assert page.get_attribute("#input-male", "type") == "checkbox"
    assert page.get_attribute("#input-year", "step") == "1"
    for name, value in {"bill_length_mm": "49.5", "flipper_length_mm": "220", "year": "2008"}.items():
        page.fill(f"#input-{name}", value)
    page.check("#input-male")
    page.click("#predict")
    page.wait_for_selector("#headline")
    assert page.inner_text("#headline").split()[0] in {"Adelie", "Chinstrap", "Gentoo"}


def test_an_anomaly_answer_and_a_label_without_probabilities(page: Page) -> None:
    pick_model(page, "cancer-outliers")
    for name in ("mean radius", "mean texture", "mean perimeter", "mean area", "mean smoothness", "mean compactness"):
        page.fill(f"[id='input-{name}']", "1000")  # far outside anything seen
    page.click("#predict")
    page.wait_for_selector("#headline")
    assert page.inner_text("#headline").startswith("outlier (score -")
    pick_model(page, "review-text")
    page.fill("#input-text", "What a wonderful, moving film.")
    page.click("#predict")
    page.wait_for_selector("#headline")
    assert page.inner_text("#headline").startswith("positive (decision score")
