"""Budgets over real stores: this month's spend against them, alerts at 80 % and 100 %
once each per month (across a restart too), admin-only, bad input changes nothing."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest

from modelhub.domain.alerts import Alert
from modelhub.domain.auth import Caller, Role
from modelhub.domain.cost import BudgetRequest
from modelhub.domain.deployments import Deployment, DeploymentStatus, Environment, TrafficShare
from modelhub.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from modelhub.services import Services
from modelhub.services.monitoring.alerts import AlertService
from modelhub.services.monitoring.cost import CostService
from modelhub.stores.metadata.base import AuditDraft, AuditQuery
from tests.stores import Stores

MARCH = datetime(2026, 3, 1, tzinfo=UTC)
ADMIN = Caller(name="root", role=Role.ADMIN)
VIEWER = Caller(name="vera", role=Role.VIEWER)


@dataclass
class Clock:
    now: datetime = MARCH

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def sink(services: Services, stores: Stores, clock: Clock) -> Iterator[AlertService]:
    """The real alert engine on the same clock; its threads are never started, so the
    alerts the budgets fire stay in the store for the test to read."""
    alerts = AlertService(services.settings, stores.metadata, services.auth, clock=clock)
    yield alerts
    alerts.close()


def fired(sink: AlertService) -> list[Alert]:
    """Every alert fired so far, oldest first."""
    return sorted(sink.list_alerts(ADMIN), key=lambda alert: alert.id)


def cost_service(
    services: Services, stores: Stores, clock: Clock, sink: AlertService
) -> CostService:
    return CostService(
        services.settings, stores.metadata, stores.artifacts, services.auth, sink, clock=clock
    )


@pytest.fixture
def cost(
    services: Services, stores: Stores, clock: Clock, sink: AlertService
) -> Iterator[CostService]:
    built = cost_service(services, stores, clock, sink)
    yield built
    built.stop()


def serve_one_replica(stores: Stores, since: datetime) -> None:
    """A deployment of alice's with one ready replica from `since` on."""
    stores.metadata.create_deployment(
        Deployment(
            name="web",
            model="m",
            environment=Environment.STAGING,
            traffic=[TrafficShare(version=1, percent=100)],
            replicas=1,
            status=DeploymentStatus.RUNNING,
            created_by="alice",
            created_at=since,
            updated_at=since,
        ),
        AuditDraft("alice", "deployments.create", "web", {}),
    )
    stores.metadata.record_replicas("web", [(4242, True)], since)


def test_alerts_fire_at_80_and_100_percent_once_each_per_month(
    services: Services, stores: Stores, cost: CostService, clock: Clock, sink: AlertService
) -> None:
    price = services.settings.replica_hour_price  # one replica: `price` an hour
    serve_one_replica(stores, MARCH)
    budget = cost.set_budget(ADMIN, BudgetRequest(monthly=20 * price, user="alice"))

    clock.now = MARCH + timedelta(hours=10)  # 50 %
    assert cost.check_budgets() == []
    clock.now = MARCH + timedelta(hours=17)  # 85 %
    assert [t for _, t in cost.check_budgets()] == [80]
    clock.now = MARCH + timedelta(hours=18)
    assert cost.check_budgets() == []  # 80 % again: already alerted this month
    clock.now = MARCH + timedelta(hours=21)  # 105 %
    assert [t for _, t in cost.check_budgets()] == [100]
    clock.now = MARCH + timedelta(days=3)
    assert cost.check_budgets() == []

    alerts = fired(sink)
    assert [(a.rule, a.severity) for a in alerts] == [
        ("budget_80", "warning"),
        ("budget_100", "critical"),
    ]
    assert {a.subject for a in alerts} == {f"budget:{budget.id}"}
    # budget alerts are not resolved within their month
    assert [a.resolved_at for a in alerts] == [None, None]
    assert [a.fired_at for a in alerts] == [
        MARCH + timedelta(hours=17),
        MARCH + timedelta(hours=21),
    ]
    assert alerts[0].labels == {
        "budget": str(budget.id),
        "scope": "user:alice",
        "month": "2026-03",
        "threshold": "80",
    }
    (status,) = cost.list_budgets(VIEWER)
    assert status.fired == [80, 100] and status.month == "2026-03"
    assert status.spent == pytest.approx(72 * price)


def test_a_restarted_service_does_not_alert_again_but_a_new_month_does(
    services: Services, stores: Stores, cost: CostService, clock: Clock, sink: AlertService
) -> None:
    price = services.settings.replica_hour_price
    serve_one_replica(stores, MARCH)
    cost.set_budget(ADMIN, BudgetRequest(monthly=20 * price, user="alice"))
    clock.now = MARCH + timedelta(hours=17)
    assert len(cost.check_budgets()) == 1

    restarted = cost_service(services, stores, clock, sink)
    assert restarted.check_budgets() == []

    april = datetime(2026, 4, 1, tzinfo=UTC)
    clock.now = april + timedelta(hours=1)  # the replica still runs; April's spend is small
    assert restarted.check_budgets() == []
    clock.now = april + timedelta(hours=17)
    assert [t for _, t in restarted.check_budgets()] == [80]
    # One open alert per (rule, subject): March's alert ended with March (at the first
    # check in April), so April's is a new alert, with its own notice.
    march, april_alert = fired(sink)
    assert [a.labels["month"] for a in (march, april_alert)] == ["2026-03", "2026-04"]
    assert march.resolved_at == april + timedelta(hours=1)
    assert april_alert.resolved_at is None
    assert april_alert.fired_at == april + timedelta(hours=17)


def test_setting_a_budget_is_for_admins_and_audited(
    services: Services, stores: Stores, cost: CostService
) -> None:
    with pytest.raises(PermissionDenied):
        cost.set_budget(
            Caller(name="ds", role=Role.DATA_SCIENTIST), BudgetRequest(monthly=5, user="a")
        )
    assert stores.metadata.list_budgets() == []
    budget = cost.set_budget(ADMIN, BudgetRequest(monthly=5, tag="team=personas"))
    assert budget.label == "tag:team=personas"
    with pytest.raises(Conflict):
        cost.set_budget(ADMIN, BudgetRequest(monthly=9, tag="team=personas"))
    with pytest.raises(PermissionDenied):
        cost.remove_budget(VIEWER, budget.id)
    cost.remove_budget(ADMIN, budget.id)
    with pytest.raises(NotFound):
        cost.remove_budget(ADMIN, budget.id)
    actions = [e.action for e in stores.metadata.list_audit(AuditQuery(target="tag:team=personas"))]
    assert actions == ["cost.budget.set"]
    removed = stores.metadata.list_audit(AuditQuery(target=f"budget:{budget.id}"))
    assert [e.action for e in removed] == ["cost.budget.remove"]


def test_bad_budgets_are_refused_and_write_nothing(stores: Stores, cost: CostService) -> None:
    with pytest.raises(NotFound, match="nobody-knows"):
        cost.set_budget(ADMIN, BudgetRequest(monthly=5, model="nobody-knows"))
    for bad in (
        BudgetRequest(monthly=5, tag="no-equals-sign"),
        BudgetRequest(monthly=-1, user="alice"),
        BudgetRequest(monthly=5, user="alice", model="m"),
    ):
        with pytest.raises(InvalidInput):
            cost.set_budget(ADMIN, bad)
    assert stores.metadata.list_budgets() == []


def test_a_month_whose_first_check_crosses_a_threshold_still_alerts_anew(
    services: Services, stores: Stores, cost: CostService, clock: Clock, sink: AlertService
) -> None:
    price = services.settings.replica_hour_price
    serve_one_replica(stores, MARCH)
    cost.set_budget(ADMIN, BudgetRequest(monthly=20 * price, user="alice"))
    clock.now = MARCH + timedelta(hours=17)
    assert [t for _, t in cost.check_budgets()] == [80]
    april = datetime(2026, 4, 1, tzinfo=UTC)
    clock.now = april + timedelta(hours=17)  # no check ran in April before this one
    assert [t for _, t in cost.check_budgets()] == [80]
    march, april_alert = fired(sink)
    assert march.resolved_at == clock.now and april_alert.resolved_at is None
    assert (march.labels["month"], april_alert.labels["month"]) == ("2026-03", "2026-04")
