"""The alerts part of `LocalClient`: the alert service in this process (no engine
threads run here; `modelhub server` evaluates and notifies)."""

from __future__ import annotations

from modelhub.client.local_home import LocalHome
from modelhub.domain.alerts import Alert, AlertRule, AlertRuleDraft, Delivery, MetricInfo


class LocalAlertCalls(LocalHome):
    def add_alert_rule(self, draft: AlertRuleDraft) -> AlertRule:
        return self.services.alerts.add_rule(self.caller, draft)

    def list_alert_rules(self) -> list[AlertRule]:
        return self.services.alerts.list_rules(self.caller)

    def remove_alert_rule(self, rule_id: int) -> AlertRule:
        return self.services.alerts.remove_rule(self.caller, rule_id)

    def list_alerts(
        self, firing: bool = False, subject: str | None = None, limit: int = 200
    ) -> list[Alert]:
        return self.services.alerts.list_alerts(self.caller, firing, subject, limit)

    def ack_alert(self, alert_id: int) -> Alert:
        return self.services.alerts.acknowledge(self.caller, alert_id)

    def alert_deliveries(self, alert_id: int) -> list[Delivery]:
        return self.services.alerts.deliveries(self.caller, alert_id)

    def alert_metrics(self) -> list[MetricInfo]:
        return self.services.alerts.list_metrics(self.caller)
