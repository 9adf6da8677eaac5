"""One real `modelhub server` for every dashboard test, and a signed-in browser session
over plain HTTP (cookie jar, CSRF token) for the tests that need no real browser.

Each module names its own models, pipelines and deployments, so that tests sharing the
server never see each other's rows as their own.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.dashboard.browser import chromium  # noqa: F401 (the browser fixture)
from tests.integration.conftest import ServerProcess, make_server, running

CSRF_IN_PAGE = re.compile(r'"X-CSRF-Token": "([0-9a-f]{64})"')


@pytest.fixture(scope="session")
def dashboard_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    srv = make_server(tmp_path_factory.mktemp("dashboard-server"))
    with running(srv):
        yield srv


@dataclass
class Session:
    """A person signed in to the dashboard: the session cookie in `http`'s jar, and the
    CSRF token read from a page, as a browser would hold them."""

    http: httpx.Client
    csrf: str

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.http.get(path, **kwargs)

    def post(
        self, path: str, data: dict[str, Any] | None = None, *, htmx: bool = False, **kwargs: Any
    ) -> httpx.Response:
        """A form post carrying the CSRF field; `htmx` sends it as htmx does (header)."""
        headers = {"hx-request": "true", "x-csrf-token": self.csrf} if htmx else {}
        fields = dict(data or {})
        if not htmx:
            fields["csrf"] = self.csrf
        return self.http.post(path, data=fields, headers=headers, **kwargs)


def sign_in(server: ServerProcess, token: str) -> Session:
    http = httpx.Client(base_url=server.url, timeout=60, follow_redirects=False)
    answer = http.post("/signin", data={"token": token, "next": "/models"})
    assert answer.status_code == 303, answer.text[:500]
    page = http.get("/account")
    assert page.status_code == 200, page.text[:500]
    found = CSRF_IN_PAGE.search(page.text)
    assert found is not None, "no CSRF token in the page"
    return Session(http, found.group(1))


@pytest.fixture(scope="session")
def admin_session(dashboard_server: ServerProcess) -> Iterator[Session]:
    session = sign_in(dashboard_server, dashboard_server.token)
    try:
        yield session
    finally:
        session.http.close()


def create_token(server: ServerProcess, name: str, role: str) -> str:
    """A token of `role` for a new user `name`, made through the API as the admin."""
    with server.http(timeout=30) as http:
        added = http.post("/api/v1/auth/users", json={"name": name, "role": role})
        assert added.status_code == 201, added.text
        answer = http.post("/api/v1/auth/tokens", json={"user": name})
        assert answer.status_code == 201, answer.text
        return str(answer.json()["token"])


def write_safetensors(path: Path, seed: int = 0) -> Path:
    """A small real safetensors model file (two tensors)."""
    import torch
    from safetensors.torch import save_file

    generator = torch.Generator().manual_seed(seed)
    save_file(
        {
            "layer.weight": torch.randn(8, 4, generator=generator),
            "layer.bias": torch.zeros(8),
        },
        str(path),
    )
    return path
