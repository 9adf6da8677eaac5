"""/api/v1/alerts: rules, alerts, acknowledgement and webhook deliveries."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query

from modelhub.api.deps import ServicesDep
from modelhub.api.security import Reader, requires
from modelhub.domain.alerts import Alert, AlertRule, AlertRuleDraft, Delivery, MetricInfo
from modelhub.domain.auth import Action, Caller
from modelhub.domain.limits import PositiveInt64

router = APIRouter(prefix="/api/v1/alerts", tags=["alerts"])
RuleManager = Annotated[Caller, Depends(requires(Action.ALERTS_MANAGE))]
Acknowledger = Annotated[Caller, Depends(requires(Action.ALERTS_ACK))]


@router.get("", response_model=list[Alert])
def list_alerts(
    services: ServicesDep,
    caller: Reader,
    firing: bool = False,
    subject: str | None = Query(default=None, max_length=200),
    limit: int = Query(default=200, ge=1, le=10_000),
) -> list[Alert]:
    return services.alerts.list_alerts(caller, firing, subject, limit)


@router.get("/rules", response_model=list[AlertRule])
def list_rules(services: ServicesDep, caller: Reader) -> list[AlertRule]:
    return services.alerts.list_rules(caller)


@router.post("/rules", response_model=AlertRule, status_code=201)
def add_rule(body: AlertRuleDraft, services: ServicesDep, caller: RuleManager) -> AlertRule:
    return services.alerts.add_rule(caller, body)


@router.delete("/rules/{rule_id}", response_model=AlertRule)
def remove_rule(rule_id: PositiveInt64, services: ServicesDep, caller: RuleManager) -> AlertRule:
    return services.alerts.remove_rule(caller, rule_id)


@router.get("/metrics", response_model=list[MetricInfo])
def list_metrics(services: ServicesDep, caller: Reader) -> list[MetricInfo]:
    return services.alerts.list_metrics(caller)


@router.get("/{alert_id}", response_model=Alert)
def get_alert(alert_id: PositiveInt64, services: ServicesDep, caller: Reader) -> Alert:
    return services.alerts.get_alert(caller, alert_id)


@router.post("/{alert_id}/ack", response_model=Alert)
def acknowledge(alert_id: PositiveInt64, services: ServicesDep, caller: Acknowledger) -> Alert:
    return services.alerts.acknowledge(caller, alert_id)


@router.get("/{alert_id}/deliveries", response_model=list[Delivery])
def deliveries(alert_id: PositiveInt64, services: ServicesDep, caller: Reader) -> list[Delivery]:
    return services.alerts.deliveries(caller, alert_id)
