"""The journey of the issue, in a real browser against a real server: a data scientist
signs in, registers a model through the form, trains a tiny model and watches it reach
100 %, deploys the result, sends a prediction from the "try it" form and finds the
request in monitoring; an admin approves the version in governance and finds every step
in the audit log. Each tab is checked with axe-core on the way, and photographed."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from modelhub.client import Client
from tests.dashboard.browser import PHONE, Tab, open_tab, sign_in
from tests.dashboard.conftest import create_token, write_safetensors
from tests.integration.conftest import ServerProcess

SPEC = """\
name: journey-pipe
type: pre_training
trainer: tabular_classifier
datasets: [journey-data]
max_epochs: 4
hyperparameters: {learning_rate: 0.05}
result_model: {name: journey-clf, type: classification}
"""
TABS = {
    "registry": "/models",
    "training": "/training",
    "deployments": "/deployments",
    "monitoring": "/monitoring",
    "governance": "/governance",
    "audit": "/audit",
    "personas": "/personas",
}


def checked(tab: Tab, shot: str) -> None:
    """axe finds nothing serious or critical, no console error so far; photograph it."""
    tab.page.wait_for_load_state("networkidle")
    assert tab.serious_accessibility_violations() == [], shot
    assert tab.errors == [], (shot, tab.errors)
    tab.screenshot(shot)


def wait_for_text(tab: Tab, selector: str, pattern: str, timeout: float = 120) -> str:
    """Wait, without reloading, until the page (updating itself over SSE or htmx) shows
    text matching `pattern` in `selector`; Playwright fails the test after `timeout`."""
    locator = tab.page.locator(selector).first
    expect(locator).to_contain_text(re.compile(pattern), timeout=timeout * 1000)
    return str(locator.inner_text())


@pytest.fixture(scope="module")
def scientist(dashboard_server: ServerProcess, tmp_path_factory: pytest.TempPathFactory) -> str:
    token = create_token(dashboard_server, "dana", "data_scientist")
    csv = tmp_path_factory.mktemp("journey") / "journey.csv"
    # A rule the model can learn in three epochs, so its curves go somewhere.
    rows = "".join(f"{i % 7},{i % 5},{int(i % 7 > 3)}\n" for i in range(300))
    csv.write_text("a,b,label\n" + rows)
    with Client(dashboard_server.url, token=token) as dana:
        dana.register_dataset(csv, "journey-data")
    return token


@pytest.fixture
def journey_tab(chromium: Any, dashboard_server: ServerProcess) -> Iterator[Tab]:
    tab = open_tab(chromium, dashboard_server.url)
    try:
        yield tab
    finally:
        tab.page.context.close()


def test_the_journey(
    journey_tab: Tab,
    chromium: Any,
    dashboard_server: ServerProcess,
    scientist: str,
    tmp_path: Path,
) -> None:
    tab, page = journey_tab, journey_tab.page
    sign_in(tab, scientist)
    checked(tab, "registry")

    # Register a model through the header's form.
    page.get_by_role("link", name="Register Model").click()
    page.wait_for_url("**/models/register")
    page.get_by_label("Name").fill("journey-weights")
    page.locator("#f-type").select_option("custom")
    page.get_by_label("Description").fill("Weights registered from the browser")
    page.get_by_label("License").fill("apache-2.0")
    page.get_by_label("Tags").fill("team=journey, source=browser")
    page.locator("#f-files").set_input_files(str(write_safetensors(tmp_path / "w.safetensors")))
    checked(tab, "register-form")
    page.get_by_role("button", name="Register").click()
    page.wait_for_url("**/models/journey-weights/versions/1")
    assert "journey-weights v1" in page.locator("h1").inner_text()

    # Train: paste a spec, create and start, watch it reach 100 % with its curve drawn.
    page.get_by_role("link", name="Start Training").click()
    page.wait_for_url("**/training/start")
    page.locator("#f-spec").fill(SPEC)
    page.get_by_role("button", name="Create and start").click()
    page.wait_for_url(re.compile(r".*/training/runs/\d+$"))
    wait_for_text(tab, "#run-percent", r"^100\s?%$", timeout=240)
    page.locator("#loss-curve canvas").first.wait_for()
    checked(tab, "training-run")
    page.locator("#run-result").click()
    page.wait_for_url("**/models/journey-clf/versions/1")
    checked(tab, "registry-version")

    # Deploy the result to staging.
    page.locator("#f-deployment").fill("journey-clf")
    page.locator("#f-environment").select_option("staging")
    page.locator("#deploy-form").get_by_role("button", name="Deploy").click()
    page.wait_for_url("**/deployments/journey-clf")

    # Try it: the form comes prefilled with a request the model accepts.
    try:
        wait_for_text(tab, "#deployment-status .badge", r"^running$", timeout=180)
        page.reload()  # the example request is now read from the model being served
        page.locator("#try-it").get_by_role("button", name="Send").click()
        latency = wait_for_text(tab, "#try-it-result .latency", r"\d")
        assert re.search(r"ms|s$", latency)
        assert "outputs" in page.locator("#try-it-result").inner_text()
        checked(tab, "deployments")

        # The request shows in monitoring.
        page.goto("/monitoring/journey-clf")
        deadline = time.monotonic() + 90
        while int(page.locator("#requests-total").get_attribute("data-value") or 0) < 1:
            assert time.monotonic() < deadline, "the prediction never showed in monitoring"
            page.wait_for_timeout(2000)
            page.reload()
        checked(tab, "monitoring")
    finally:
        with dashboard_server.http(timeout=60) as http:
            http.post("/api/v1/deployments/journey-clf/stop")

    # An admin approves the trained version; the audit log shows every step.
    admin = open_tab(chromium, dashboard_server.url)
    try:
        sign_in(admin, dashboard_server.token, "/governance/journey-clf/1")
        admin.page.locator("#f-note").fill("Checked the curve and the answer in the browser.")
        admin.page.get_by_role("button", name="Approve").click()
        wait_for_text(admin, "main", r"approved", timeout=30)
        checked(admin, "governance")
        admin.page.goto("/audit")
        log = admin.page.locator("main").inner_text()
        for action in ("models.register", "runs.start", "deployments.create", "models.approve"):
            assert action in log, action
        assert "dana" in log
        wait_for_text(admin, "#audit-verify", r"chain intact", timeout=30)
        checked(admin, "audit")
    finally:
        admin.page.context.close()


@pytest.mark.parametrize("look", ["light", "dark"])
def test_every_tab_passes_axe(chromium: Any, dashboard_server: ServerProcess, look: str) -> None:
    tab = open_tab(chromium, dashboard_server.url, dark=look == "dark")
    try:
        sign_in(tab, dashboard_server.token)
        for name, path in TABS.items():
            tab.page.goto(path)
            checked(tab, f"tab-{name}-{look}")
    finally:
        tab.page.context.close()


def test_every_tab_fits_a_phone(chromium: Any, dashboard_server: ServerProcess) -> None:
    tab = open_tab(chromium, dashboard_server.url, viewport=PHONE)
    try:
        sign_in(tab, dashboard_server.token)
        for name, path in TABS.items():
            tab.page.goto(path)
            tab.page.wait_for_load_state("networkidle")
            width = tab.page.evaluate("() => document.documentElement.scrollWidth")
            assert width <= PHONE["width"], f"{name} scrolls sideways ({width} px)"
            tab.screenshot(f"tab-{name}-phone")
        assert tab.errors == []
    finally:
        tab.page.context.close()
