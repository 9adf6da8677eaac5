"""The cost report over real stores: grouping by model, user and tag (runs and
deployments inherit their model's tags), storage and what deduplication saved."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from modelhub.domain.auth import Caller, Role
from modelhub.domain.deployments import Deployment, DeploymentStatus, Environment, TrafficShare
from modelhub.domain.monitoring import Window
from modelhub.errors import InvalidInput
from modelhub.services import Services
from modelhub.services.monitoring.cost import CostService
from modelhub.services.registry import RegisterRequest
from modelhub.stores.metadata.base import AuditDraft
from tests.stores import Stores

VIEWER = Caller(name="vera", role=Role.VIEWER)
HOUR = timedelta(hours=1)


def deploy(stores: Stores, name: str, model: str, by: str, since: datetime) -> None:
    stores.metadata.create_deployment(
        Deployment(
            name=name,
            model=model,
            environment=Environment.STAGING,
            traffic=[TrafficShare(version=1, percent=100)],
            replicas=1,
            status=DeploymentStatus.RUNNING,
            created_by=by,
            created_at=since,
            updated_at=since,
        ),
        AuditDraft(by, "deployments.create", name, {}),
    )


@pytest.fixture
def priced(services: Services, stores: Stores, safetensors_file: Path) -> Services:
    """Two models of team personas (one owned by bob), one of team search; each served
    by one replica for two hours, up to now."""
    registry = services.registry
    for name, team, owner in (("intents", "personas", "alice"), ("tone", "personas", "bob")):
        registry.register(
            RegisterRequest(name=name, type="classification", tags={"team": team}),
            safetensors_file,
            owner,
        )
    registry.register(
        RegisterRequest(name="ranker", type="classification", tags={"team": "search"}),
        safetensors_file,
        "alice",
    )
    # The same file again: stored once, so deduplication saves its size.
    registry.register(RegisterRequest(name="intents"), safetensors_file, "alice")
    start = datetime.now(UTC) - 2 * HOUR
    for deployment, model, by in (
        ("a", "intents", "alice"),
        ("b", "tone", "bob"),
        ("c", "ranker", "carol"),
    ):
        deploy(stores, deployment, model, by, start)
        stores.metadata.record_replicas(deployment, [(100 + ord(deployment), True)], start)
    return services


def test_by_tag_sums_the_models_carrying_it(priced: Services) -> None:
    report = priced.cost.report(VIEWER, "1d", "tag:team")
    rows = {row.key: row.cost for row in report.rows}
    assert set(rows) == {"personas", "search"}
    price = priced.settings.replica_hour_price
    assert rows["personas"].parts.replicas == pytest.approx(4 * price, rel=0.01)
    assert rows["search"].parts.replicas == pytest.approx(2 * price, rel=0.01)
    assert report.total == pytest.approx(sum(r.total for r in rows.values()))
    assert [row.key for row in report.rows] == ["personas", "search"]  # most expensive first


def test_by_user_counts_what_each_ran_served_and_owns(priced: Services) -> None:
    rows = {row.key: row.cost for row in priced.cost.report(VIEWER, "1d", "user").rows}
    assert set(rows) == {"alice", "bob", "carol"}
    assert rows["carol"].storage_bytes == 0 and rows["carol"].parts.replicas > 0
    assert rows["alice"].storage_bytes > 0 and rows["bob"].storage_bytes > 0


def test_storage_and_deduplication(priced: Services, safetensors_file: Path) -> None:
    size = safetensors_file.stat().st_size
    report = priced.cost.report(VIEWER, "30d", "model")
    assert report.dedup_saved_bytes == 3 * size  # four versions of one file, stored once
    assert report.storage_bytes >= size
    stored_at = min(v.created_at for v in priced.registry.versions("intents"))
    month = Window(stored_at, stored_at + timedelta(days=30))
    intents = priced.cost.model_cost("intents", month)
    assert intents.storage_bytes == size and intents.dedup_saved_bytes == size
    assert intents.parts.storage == pytest.approx(
        size / 1e9 * priced.settings.storage_gb_month_price, rel=1e-6
    )


def test_storage_is_priced_only_from_when_it_was_stored(
    priced: Services, safetensors_file: Path
) -> None:
    """The previous window of a report must not charge for versions registered since."""
    size = safetensors_file.stat().st_size
    stored_at = min(v.created_at for v in priced.registry.versions("intents"))
    before = priced.cost.model_cost("intents", Window(stored_at - 2 * HOUR, stored_at))
    assert before.parts.storage == 0 and before.storage_bytes == 0
    straddling = priced.cost.model_cost("intents", Window(stored_at - HOUR, stored_at + HOUR))
    whole = priced.cost.model_cost("intents", Window(stored_at, stored_at + 2 * HOUR))
    assert straddling.storage_bytes == whole.storage_bytes == size
    assert straddling.parts.storage == pytest.approx(whole.parts.storage / 2, rel=1e-6)


def test_a_window_counts_only_the_time_inside_it(priced: Services, stores: Stores) -> None:
    cost: CostService = priced.cost
    now = datetime.now(UTC)
    early = cost.deployment_cost("a", Window(now - 3 * HOUR, now - HOUR))
    assert early.replica_seconds == pytest.approx(3600, rel=0.01)
    assert cost.deployment_cost("a", Window(now - 9 * HOUR, now - 3 * HOUR)).total == 0


def test_unknown_groupings_are_refused(priced: Services) -> None:
    with pytest.raises(InvalidInput, match="cannot group cost by 'colour'"):
        priced.cost.report(VIEWER, "1d", "colour")
    with pytest.raises(InvalidInput, match="since"):
        priced.cost.report(VIEWER, "yesterday", "model")
