"""Alert rules, alerts and webhook deliveries in SQL (see base_alerts for the contract)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Row, delete, insert, select, update
from sqlalchemy import exc as sa_exc

from modelhub.domain.alerts import (
    ENGINE_ACTOR,
    Alert,
    AlertRule,
    AlertRuleDraft,
    AlertState,
    Comparison,
    Delivery,
    Scope,
    ScopeKind,
    Severity,
    rule_summary,
)
from modelhub.errors import Conflict, IllegalTransition, NotFound
from modelhub.stores.metadata.base import AuditDraft
from modelhub.stores.metadata.sql_base import SqlStoreBase, _aware, _now
from modelhub.stores.metadata.tables import alert_deliveries, alert_rules, alerts

OPEN = (AlertState.PENDING.value, AlertState.FIRING.value)


def _maybe(at: datetime | None) -> datetime | None:
    return _aware(at) if at is not None else None


def _alert(row: Row[Any]) -> Alert:
    return Alert(
        id=row.id,
        subject=row.subject,
        rule=row.rule,
        severity=row.severity,
        message=row.message,
        state=row.state,
        fired_at=_aware(row.fired_at),
        resolved_at=_maybe(row.resolved_at),
        rule_id=row.rule_id,
        labels=row.labels or {},
        pending_since=_maybe(row.pending_since),
        clearing_since=_maybe(row.clearing_since),
        acknowledged_by=row.acknowledged_by,
        acknowledged_at=_maybe(row.acknowledged_at),
    )


def _rule(row: Row[Any]) -> AlertRule:
    return AlertRule(
        id=row.id,
        name=row.name,
        metric=row.metric,
        comparison=Comparison(row.comparison),
        threshold=row.threshold,
        for_seconds=row.for_seconds,
        severity=Severity(row.severity),
        scope=Scope(kind=ScopeKind(row.scope_kind), target=row.target),
        labels=row.labels,
        webhooks=row.webhooks,
        enabled=row.enabled,
        created_by=row.created_by,
        created_at=_aware(row.created_at),
    )


def _delivery(row: Row[Any]) -> Delivery:
    return Delivery(
        id=row.id,
        alert_id=row.alert_id,
        url=row.url,
        status=row.status,
        attempt=row.attempt,
        status_code=row.status_code,
        error=row.error,
        outcome=row.outcome,
        at=_aware(row.at),
    )


def _open_row(conn: Connection, subject: str, rule: str) -> Row[Any] | None:
    query = select(alerts).where(
        alerts.c.subject == subject, alerts.c.rule == rule, alerts.c.state.in_(OPEN)
    )
    return conn.execute(query.order_by(alerts.c.id.desc())).first()


class AlertQueries(SqlStoreBase):
    # -- rules --------------------------------------------------------------------

    def add_alert_rule(self, draft: AlertRuleDraft, created_by: str) -> AlertRule:
        name = draft.name or draft.default_name()
        audit = AuditDraft(created_by, "alerts.rule_add", f"alert_rule:{name}", {})
        try:
            with self._write(audit) as conn:
                rule_id = conn.execute(
                    insert(alert_rules)
                    .values(
                        name=name,
                        metric=draft.metric,
                        comparison=draft.comparison.value,
                        threshold=draft.threshold,
                        for_seconds=draft.for_seconds,
                        severity=draft.severity.value,
                        scope_kind=draft.scope.kind.value,
                        target=draft.scope.target,
                        labels=draft.labels,
                        webhooks=draft.webhooks,
                        enabled=draft.enabled,
                        created_by=created_by,
                        created_at=_now(),
                    )
                    .returning(alert_rules.c.id)
                ).scalar_one()
                row = conn.execute(select(alert_rules).where(alert_rules.c.id == rule_id)).one()
                rule = _rule(row)
                audit.details.update(rule_summary(rule) | {"id": rule_id})
        except sa_exc.IntegrityError as exc:
            raise Conflict(
                f"an alert rule named {name!r} exists; pass another --name", {"name": name}
            ) from exc
        return rule

    def get_alert_rule(self, rule_id: int) -> AlertRule:
        with self._read() as conn:
            row = conn.execute(select(alert_rules).where(alert_rules.c.id == rule_id)).first()
        if row is None:
            raise NotFound(f"alert rule {rule_id} does not exist", {"rule": rule_id})
        return _rule(row)

    def list_alert_rules(self) -> list[AlertRule]:
        with self._read() as conn:
            rows = conn.execute(select(alert_rules).order_by(alert_rules.c.id)).all()
        return [_rule(row) for row in rows]

    def remove_alert_rule(self, rule_id: int, actor: str) -> AlertRule:
        audit = AuditDraft(actor, "alerts.rule_remove", f"alert_rule:{rule_id}", {})
        with self._write(audit) as conn:
            row = conn.execute(select(alert_rules).where(alert_rules.c.id == rule_id)).first()
            if row is None:
                raise NotFound(f"alert rule {rule_id} does not exist", {"rule": rule_id})
            rule = _rule(row)
            conn.execute(
                delete(alerts).where(
                    alerts.c.rule_id == rule_id, alerts.c.state == AlertState.PENDING.value
                )
            )
            resolved = conn.execute(
                update(alerts)
                .where(alerts.c.rule_id == rule_id, alerts.c.state == AlertState.FIRING.value)
                .values(state=AlertState.RESOLVED.value, resolved_at=_now(), clearing_since=None)
                .returning(alerts.c.id)
            ).all()
            conn.execute(delete(alert_rules).where(alert_rules.c.id == rule_id))
            audit.details.update(rule_summary(rule) | {"resolved": [r.id for r in resolved]})
        return rule

    # -- alerts -------------------------------------------------------------------

    def fire_alert(
        self,
        subject: str,
        rule: str,
        severity: str,
        message: str,
        *,
        labels: dict[str, str] | None = None,
        rule_id: int | None = None,
        webhooks: list[str] | None = None,
        at: datetime | None = None,
        actor: str = ENGINE_ACTOR,
    ) -> Alert:
        at = at or _now()
        with self._read() as conn:
            row = _open_row(conn, subject, rule)
        if row is not None and row.state == AlertState.FIRING.value:
            return _alert(row)  # one open alert per (rule, subject): nothing to write
        details: dict[str, Any] = {"rule": rule, "severity": severity, "message": message}
        audit = AuditDraft(actor, "alerts.fire", subject, details)
        with self._write(audit) as conn:
            row = _open_row(conn, subject, rule)
            if row is not None and row.state == AlertState.FIRING.value:
                audit.details["duplicate"] = True  # another writer fired it meanwhile
                return _alert(row)
            values = {"state": AlertState.FIRING.value, "fired_at": at, "message": message}
            if row is not None:  # the pending alert fires
                conn.execute(update(alerts).where(alerts.c.id == row.id).values(**values))
                alert_id = row.id
            else:
                alert_id = conn.execute(
                    insert(alerts)
                    .values(
                        subject=subject,
                        rule=rule,
                        severity=severity,
                        rule_id=rule_id,
                        labels=labels or {},
                        webhooks=webhooks or [],
                        **values,
                    )
                    .returning(alerts.c.id)
                ).scalar_one()
            details["alert"] = alert_id
            return _alert(conn.execute(select(alerts).where(alerts.c.id == alert_id)).one())

    def pend_alert(
        self,
        subject: str,
        rule: str,
        severity: str,
        message: str,
        *,
        labels: dict[str, str] | None = None,
        rule_id: int | None = None,
        webhooks: list[str] | None = None,
        at: datetime | None = None,
    ) -> Alert:
        at = at or _now()
        with self._write_plain() as conn:
            row = _open_row(conn, subject, rule)
            if row is None:
                alert_id = conn.execute(
                    insert(alerts)
                    .values(
                        subject=subject,
                        rule=rule,
                        severity=severity,
                        message=message,
                        state=AlertState.PENDING.value,
                        fired_at=at,
                        pending_since=at,
                        rule_id=rule_id,
                        labels=labels or {},
                        webhooks=webhooks or [],
                    )
                    .returning(alerts.c.id)
                ).scalar_one()
                row = conn.execute(select(alerts).where(alerts.c.id == alert_id)).one()
            return _alert(row)

    def cancel_pending(self, alert_id: int) -> None:
        with self._write_plain() as conn:
            conn.execute(
                delete(alerts).where(
                    alerts.c.id == alert_id, alerts.c.state == AlertState.PENDING.value
                )
            )

    def set_clearing(self, alert_id: int, since: datetime | None) -> None:
        with self._write_plain() as conn:
            conn.execute(
                update(alerts)
                .where(alerts.c.id == alert_id, alerts.c.state == AlertState.FIRING.value)
                .values(clearing_since=since)
            )

    def resolve_alerts(
        self,
        subject: str,
        rule: str | None = None,
        *,
        at: datetime | None = None,
        actor: str = ENGINE_ACTOR,
    ) -> int:
        where = [alerts.c.subject == subject]
        if rule is not None:
            where.append(alerts.c.rule == rule)
        firing = select(alerts.c.id).where(*where, alerts.c.state == AlertState.FIRING.value)
        with self._read() as conn:
            ids = list(conn.execute(firing).scalars())
            pending = conn.execute(
                select(alerts.c.id).where(*where, alerts.c.state == AlertState.PENDING.value)
            ).first()
        if pending is not None:
            with self._write_plain() as conn:
                conn.execute(delete(alerts).where(*where, alerts.c.state == "pending"))
        if not ids:  # most calls (a run ending) find nothing: no audit event then
            return 0
        audit = AuditDraft(actor, "alerts.resolve", subject, {"rule": rule})
        with self._write(audit) as conn:
            resolved = conn.execute(
                update(alerts)
                .where(*where, alerts.c.state == AlertState.FIRING.value)
                .values(
                    state=AlertState.RESOLVED.value, resolved_at=at or _now(), clearing_since=None
                )
                .returning(alerts.c.id)
            ).all()
            audit.details["alerts"] = sorted(r.id for r in resolved)
        return len(resolved)

    def acknowledge_alert(self, alert_id: int, actor: str) -> Alert:
        audit = AuditDraft(actor, "alerts.ack", f"alert:{alert_id}", {})
        with self._write(audit) as conn:
            row = conn.execute(select(alerts).where(alerts.c.id == alert_id)).first()
            if row is None:
                raise NotFound(f"alert {alert_id} does not exist", {"alert": alert_id})
            if row.state != AlertState.FIRING.value:
                raise IllegalTransition(
                    f"alert {alert_id} is {row.state}: only a firing alert can be acknowledged",
                    {"alert": alert_id, "state": row.state},
                )
            audit.details.update({"subject": row.subject, "rule": row.rule})
            if row.acknowledged_by is None:
                conn.execute(
                    update(alerts)
                    .where(alerts.c.id == alert_id)
                    .values(acknowledged_by=actor, acknowledged_at=_now())
                )
            return _alert(conn.execute(select(alerts).where(alerts.c.id == alert_id)).one())

    def get_alert(self, alert_id: int) -> Alert:
        with self._read() as conn:
            row = conn.execute(select(alerts).where(alerts.c.id == alert_id)).first()
        if row is None:
            raise NotFound(f"alert {alert_id} does not exist", {"alert": alert_id})
        return _alert(row)

    def open_alert(self, subject: str, rule: str) -> Alert | None:
        with self._read() as conn:
            row = _open_row(conn, subject, rule)
        return None if row is None else _alert(row)

    def list_alerts(
        self,
        subject: str | None = None,
        firing_only: bool = False,
        *,
        limit: int | None = None,
    ) -> list[Alert]:
        query = select(alerts).order_by(alerts.c.id.desc())
        if subject is not None:
            query = query.where(alerts.c.subject == subject)
        if firing_only:
            query = query.where(alerts.c.state == AlertState.FIRING.value)
        if limit is not None:
            query = query.limit(limit)
        with self._read() as conn:
            rows = conn.execute(query).all()
        return [_alert(row) for row in reversed(rows)]

    # -- notifications ------------------------------------------------------------

    def alerts_owed(self, limit: int = 100) -> list[tuple[Alert, list[str]]]:
        told = (alerts.c.notified.is_(None)) | (alerts.c.notified != alerts.c.state)
        query = (
            select(alerts)
            .where(alerts.c.state.in_(("firing", "resolved")), told)
            .order_by(alerts.c.id)
            .limit(limit)
        )
        with self._read() as conn:
            return [(_alert(row), list(row.webhooks or [])) for row in conn.execute(query).all()]

    def claim_notification(self, alert_id: int, state: str) -> bool:
        untold = alerts.c.notified.is_(None) | (alerts.c.notified != state)
        query = update(alerts).where(alerts.c.id == alert_id, untold).values(notified=state)
        with self._write_plain() as conn:
            return bool(conn.execute(query).rowcount)

    def record_delivery(
        self,
        alert_id: int,
        url: str,
        status: str,
        attempt: int,
        outcome: str,
        status_code: int | None = None,
        error: str | None = None,
        at: datetime | None = None,
    ) -> Delivery:
        values: dict[str, Any] = {
            "alert_id": alert_id,
            "url": url,
            "status": status,
            "attempt": attempt,
            "outcome": outcome,
            "status_code": status_code,
            "error": error,
            "at": at or _now(),
        }
        with self._write_plain() as conn:
            delivery_id = conn.execute(
                insert(alert_deliveries).values(**values).returning(alert_deliveries.c.id)
            ).scalar_one()
        return Delivery(id=delivery_id, **values)

    def list_deliveries(self, alert_id: int | None = None, limit: int = 100) -> list[Delivery]:
        query = select(alert_deliveries).order_by(alert_deliveries.c.id.desc()).limit(limit)
        if alert_id is not None:
            query = query.where(alert_deliveries.c.alert_id == alert_id)
        with self._read() as conn:
            rows = conn.execute(query).all()
        return [_delivery(row) for row in reversed(rows)]
