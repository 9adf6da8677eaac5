"""The frame every page shares, seen in a real browser: sign-in, the header, the tabs,
keyboard access, light and dark, a phone's width, and no console errors."""

from __future__ import annotations

from typing import Any

from tests.dashboard.browser import PHONE, open_tab, sign_in
from tests.integration.conftest import ServerProcess


def test_sign_in_page_and_a_wrong_token(chromium: Any, dashboard_server: ServerProcess) -> None:
    tab = open_tab(chromium, dashboard_server.url)
    try:
        tab.page.goto("/account")
        assert tab.page.get_by_label("API token").is_visible()
        assert tab.serious_accessibility_violations() == []
        tab.page.get_by_label("API token").fill("mh_not-a-token")
        tab.page.get_by_role("button", name="Sign in").click()
        alert = tab.page.get_by_role("alert")
        alert.wait_for()
        assert "token" in alert.inner_text().lower()
        assert tab.page.context.cookies() == []
        tab.screenshot("signin-wrong-token")
    finally:
        tab.page.context.close()


def test_signed_in_frame_light_dark_and_phone(
    chromium: Any, dashboard_server: ServerProcess
) -> None:
    for dark, viewport, name in ((False, None, "light"), (True, None, "dark"), (False, PHONE, "phone")):
        tab = (
            open_tab(chromium, dashboard_server.url, dark=dark, viewport=viewport)
            if viewport
            else open_tab(chromium, dashboard_server.url, dark=dark)
        )
        try:
            sign_in(tab, dashboard_server.token, "/account")
            page = tab.page
            cookie = next(c for c in page.context.cookies() if c["name"] == "modelhub_session")
            assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
            assert page.evaluate("() => document.cookie") == ""  # scripts cannot read it
            assert page.locator("#account-role").inner_text() == "admin"
            assert page.get_by_role("link", name="Register Model").is_visible()
            assert tab.serious_accessibility_violations() == [], name
            # Keyboard: the first Tab reaches the skip link, which moves focus to <main>.
            page.keyboard.press("Tab")
            assert page.evaluate("() => document.activeElement.textContent") == "Skip to content"
            width = page.evaluate("() => document.documentElement.scrollWidth")
            assert width <= page.viewport_size["width"], f"{name}: the page scrolls sideways"
            tab.screenshot(f"account-{name}")
            assert tab.errors == [], tab.errors
        finally:
            tab.page.context.close()
