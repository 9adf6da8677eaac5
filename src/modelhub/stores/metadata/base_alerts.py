"""The alert engine's part of the metadata store interface: rules, alerts, deliveries.

One row per incident in `alerts`, at most one open (pending or firing) per
(rule, subject). Transitions that make an alert (fired, resolved, acknowledged)
and rule changes append an audit event in the same transaction; a pending alert
is not yet an alert, so opening or dropping one is not audited.
"""

from __future__ import annotations

import abc
from datetime import datetime

from modelhub.domain.alerts import ENGINE_ACTOR, Alert, AlertRule, AlertRuleDraft, Delivery


class AlertStoreBase(abc.ABC):
    # -- rules --------------------------------------------------------------------

    @abc.abstractmethod
    def add_alert_rule(self, draft: AlertRuleDraft, created_by: str) -> AlertRule:
        """Store a checked rule (audited); Conflict when its name is taken."""

    @abc.abstractmethod
    def get_alert_rule(self, rule_id: int) -> AlertRule:
        """NotFound when no rule has this id."""

    @abc.abstractmethod
    def list_alert_rules(self) -> list[AlertRule]: ...

    @abc.abstractmethod
    def remove_alert_rule(self, rule_id: int, actor: str) -> AlertRule:
        """Delete the rule (audited): its pending alerts go, its firing ones resolve."""

    # -- alerts -------------------------------------------------------------------

    @abc.abstractmethod
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
        """Fire: promote the pending alert of (rule, subject), open a new firing one, or
        return the one already firing (de-duplication; nothing written then)."""

    @abc.abstractmethod
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
        """Open a pending alert, or return the open one of (rule, subject)."""

    @abc.abstractmethod
    def cancel_pending(self, alert_id: int) -> None:
        """Drop a pending alert whose condition went away before it fired."""

    @abc.abstractmethod
    def set_clearing(self, alert_id: int, since: datetime | None) -> None:
        """Remember since when a firing alert's condition is false (None: true again)."""

    @abc.abstractmethod
    def resolve_alerts(
        self,
        subject: str,
        rule: str | None = None,
        *,
        at: datetime | None = None,
        actor: str = ENGINE_ACTOR,
    ) -> int:
        """Resolve the firing alerts of `subject` (of `rule` only, when given) and drop its
        pending ones; returns how many resolved."""

    @abc.abstractmethod
    def acknowledge_alert(self, alert_id: int, actor: str) -> Alert:
        """Record who acknowledged (audited; the first acknowledgement stays). NotFound;
        IllegalTransition for a resolved or pending alert."""

    @abc.abstractmethod
    def get_alert(self, alert_id: int) -> Alert: ...

    @abc.abstractmethod
    def open_alert(self, subject: str, rule: str) -> Alert | None:
        """The pending or firing alert of (rule, subject), if any."""

    @abc.abstractmethod
    def list_alerts(
        self,
        subject: str | None = None,
        firing_only: bool = False,
        *,
        limit: int | None = None,
    ) -> list[Alert]:
        """Oldest first; with `limit`, the newest `limit` of them."""

    # -- notifications ------------------------------------------------------------

    @abc.abstractmethod
    def alerts_owed(self, limit: int = 100) -> list[tuple[Alert, list[str]]]:
        """Fired or resolved alerts whose webhooks were not yet told of that state, each
        with its own webhooks (its rule's when it opened)."""

    @abc.abstractmethod
    def claim_notification(self, alert_id: int, state: str) -> bool:
        """Mark `state` as told, if no one did yet: True for the one caller (of several
        servers) that now sends it."""

    @abc.abstractmethod
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
    ) -> Delivery: ...

    @abc.abstractmethod
    def list_deliveries(self, alert_id: int | None = None, limit: int = 100) -> list[Delivery]:
        """Newest last; with `alert_id`, that alert's only."""
