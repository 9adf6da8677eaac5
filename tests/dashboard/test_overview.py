"""The overview's stat cards: the service's figures against known data on a fresh
store, and /stats and GET /api/v1/overview on the shared dashboard server (asserting
only on the changes this module causes there)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from modelhub.client import Client, RegisterRequest
from modelhub.client.local import LocalClient
from modelhub.dashboard.format import human_count
from modelhub.domain.auth import Caller, Role
from modelhub.domain.overview import DAYS
from modelhub.services import Services, build_services
from modelhub.services.overview import OverviewService
from modelhub.settings import Settings
from modelhub.stores.metadata.factory import open_metadata_store
from tests.dashboard.conftest import Session, create_token, sign_in, write_safetensors
from tests.integration.conftest import ServerProcess

ADMIN = Caller(name="ada", role=Role.ADMIN)


@pytest.fixture(scope="module")
def weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_safetensors(tmp_path_factory.mktemp("ov-weights") / "w.safetensors")


@pytest.fixture
def fresh(tmp_path: Path) -> Iterator[tuple[LocalClient, Services]]:
    """A store of our own: a local client to seed it, the services to read it."""
    settings = Settings(home=tmp_path / "home")
    client = LocalClient(settings, actor="ada")
    services = build_services(settings)
    try:
        yield client, services
    finally:
        client.close()
        services.close()


def test_figures_of_a_known_store(fresh: tuple[LocalClient, Services], weights: Path) -> None:
    client, services = fresh
    empty = services.overview.figures(ADMIN)
    assert empty.models.value == 0 and empty.performance.value is None
    assert empty.performance.days == [None] * DAYS

    client.register(
        RegisterRequest(name="ov-a", type="classification", metrics={"accuracy": 0.8}), weights
    )
    client.register(
        RegisterRequest(name="ov-b", type="classification", metrics={"val_accuracy": 0.6}), weights
    )
    client.register(
        RegisterRequest(name="ov-c", type="classification", metrics={"accuracy": 0.1}), weights
    )
    for name in ("ov-a", "ov-b"):  # ov-c stays in development
        client.set_stage(name, 1, "staging", force=True)
        client.set_stage(name, 1, "production", force=True)

    found = services.overview.figures(ADMIN)
    assert len(found.day_ends) == DAYS and found.day_ends[-1] == found.generated_at
    assert found.models.value == 3
    assert found.models.days == [0, 0, 0, 0, 0, 0, 3]  # all registered today
    assert found.models.change == 3
    assert found.training.value == 0 and found.training.days == [0] * DAYS
    assert found.deployed.value == 0 and found.deployed.change == 0
    # The production versions' training metrics: accuracy, else val_accuracy.
    assert found.performance.value == pytest.approx(0.7)
    assert found.performance.days[-1] == pytest.approx(0.7)
    assert found.performance.days[0] is None  # neither version existed then
    assert found.performance.change is None


def test_each_day_counts_what_existed_by_its_end(
    fresh: tuple[LocalClient, Services], weights: Path
) -> None:
    """Read three days from now: the models registered today count from today's end on."""
    client, services = fresh
    client.register(RegisterRequest(name="ov-d", type="custom", metrics={"accuracy": 0.9}), weights)
    client.set_stage("ov-d", 1, "staging", force=True)
    client.set_stage("ov-d", 1, "production", force=True)
    store = open_metadata_store(services.settings.resolved_database_url)
    try:
        later = OverviewService(store, services.auth, lambda: datetime.now(UTC) + timedelta(days=3))
        found = later.figures(ADMIN)
    finally:
        store.close()
    assert found.models.days == [0, 0, 0, 1, 1, 1, 1] and found.models.change == 1
    assert found.performance.days == [None, None, None, 0.9, 0.9, 0.9, 0.9]
    assert found.performance.change is None  # unknown on the first day


@pytest.fixture(scope="module")
def viewer(dashboard_server: ServerProcess) -> Iterator[Session]:
    session = sign_in(dashboard_server, create_token(dashboard_server, "ov-viewer", "viewer"))
    try:
        yield session
    finally:
        session.http.close()


def overview(server: ServerProcess) -> dict[str, object]:
    with server.http(timeout=30) as http:
        answer = http.get("/api/v1/overview")
    assert answer.status_code == 200, answer.text
    found: dict[str, object] = answer.json()
    return found


def card_value(html: str, key: str) -> str:
    found = re.search(
        rf'id="stat-{key}".*?<div class="value" data-value="([^"]*)">([^<]*)<', html, re.S
    )
    assert found is not None, html[:2000]
    return found.group(2)


def test_registering_models_moves_the_registered_models_card(
    dashboard_server: ServerProcess, admin_session: Session, weights: Path
) -> None:
    before = overview(dashboard_server)
    with Client(dashboard_server.url, token=dashboard_server.token) as client:
        for name in ("ov-first", "ov-second"):
            client.register(RegisterRequest(name=name, type="custom"), weights)
    after = overview(dashboard_server)
    models_before, models_after = before["models"], after["models"]
    assert isinstance(models_before, dict) and isinstance(models_after, dict)
    assert models_after["value"] == models_before["value"] + 2
    assert models_after["days"][-1] == models_before["days"][-1] + 2

    page = admin_session.get("/stats")
    assert page.status_code == 200
    assert page.text.lstrip().startswith('<section id="stats" class="stats"')
    for key in ("models", "training", "deployed", "performance"):
        assert f'id="stat-{key}"' in page.text
    assert card_value(page.text, "models") == human_count(models_after["value"])
    assert page.text.count('class="sparkline"') == 4
    assert "Registered Models" in page.text and "Model Performance" in page.text


def test_every_role_sees_the_cards_and_nobody_else(
    dashboard_server: ServerProcess, viewer: Session
) -> None:
    assert viewer.get("/stats").status_code == 200
    anonymous = httpx.get(f"{dashboard_server.url}/stats", headers={"hx-request": "true"})
    assert anonymous.status_code == 401
    assert httpx.get(f"{dashboard_server.url}/api/v1/overview").status_code == 401
