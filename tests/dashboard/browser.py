"""Debian's Chromium driven by Playwright: the browser the dashboard tests look through.

Where no Chromium is installed the browser tests skip with the reason; CI sets
MODELHUB_REQUIRE_BROWSER=1, under which a missing browser fails the run instead.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = os.environ.get("MODELHUB_TEST_CHROMIUM", "/usr/bin/chromium")
REQUIRE_BROWSER = os.environ.get("MODELHUB_REQUIRE_BROWSER", "") not in ("", "0")
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
AXE = Path(__file__).parent / "vendor" / "axe.min.js"
# Where the test run leaves its screenshots (git ignores it); docs/img holds the chosen ones.
SCREENSHOTS = Path(__file__).resolve().parents[2] / ".screenshots"
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}


def browser_missing() -> str | None:
    if shutil.which(CHROMIUM) is None and not Path(CHROMIUM).is_file():
        return f"no Chromium at {CHROMIUM} (Debian package chromium)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "Playwright for Python is not installed (the dev extra)"
    return None


# Per module, not per session: Playwright's sync API keeps an event loop running in this
# thread while it is open, and later tests that run their own loop (asyncio.run) would
# find it there.
@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    reason = browser_missing()
    if reason is not None:
        if REQUIRE_BROWSER:
            pytest.fail(f"MODELHUB_REQUIRE_BROWSER=1 and {reason}", pytrace=False)
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        try:
            yield browser
        finally:
            browser.close()


@dataclass
class Tab:
    """One browser tab, with every console error and uncaught exception it saw."""

    page: Any
    errors: list[str] = field(default_factory=list)

    def screenshot(self, name: str) -> Path:
        SCREENSHOTS.mkdir(exist_ok=True)
        path = SCREENSHOTS / f"{name}.png"
        self.page.screenshot(path=str(path), full_page=True)
        return path

    def serious_accessibility_violations(self) -> list[str]:
        """axe-core's serious and critical findings on the page as it is now."""
        if not self.page.evaluate("() => typeof window.axe !== 'undefined'"):
            self.page.add_script_tag(path=str(AXE))
        result = self.page.evaluate(
            "async () => (await axe.run(document, {resultTypes: ['violations']})).violations"
        )
        return [
            f"{v['id']} ({v['impact']}): {v['help']} at "
            + ", ".join(str(node["target"]) for node in v["nodes"][:3])
            for v in result
            if v["impact"] in ("serious", "critical")
        ]


def open_tab(
    browser: Any, base_url: str, *, viewport: dict[str, int] = DESKTOP, dark: bool = False
) -> Tab:
    context = browser.new_context(
        base_url=base_url, viewport=viewport, color_scheme="dark" if dark else "light"
    )
    context.set_default_timeout(30_000)
    page = context.new_page()
    tab = Tab(page)

    def on_console(message: Any) -> None:
        if message.type == "error":
            tab.errors.append(message.text)

    page.on("console", on_console)
    page.on("pageerror", lambda error: tab.errors.append(str(error)))
    return tab


def sign_in(tab: Tab, token: str, next_path: str = "/models") -> None:
    tab.page.goto(f"/signin?next={next_path}")
    tab.page.get_by_label("API token").fill(token)
    tab.page.get_by_role("button", name="Sign in").click()
    tab.page.wait_for_url(f"**{next_path}")
