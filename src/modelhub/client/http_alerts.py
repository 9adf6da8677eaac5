"""The alerts part of `modelhub.Client`: rules, alerts and acknowledgement over /api/v1."""

from __future__ import annotations

from modelhub.client.http_connection import HttpConnection
from modelhub.domain.alerts import Alert, AlertRule, AlertRuleDraft, Delivery, MetricInfo

ALERTS = "/api/v1/alerts"


class AlertCalls(HttpConnection):
    def add_alert_rule(self, draft: AlertRuleDraft) -> AlertRule:
        body = draft.model_dump(mode="json")
        return AlertRule.model_validate(self._request("POST", f"{ALERTS}/rules", json=body))

    def list_alert_rules(self) -> list[AlertRule]:
        return [AlertRule.model_validate(r) for r in self._request("GET", f"{ALERTS}/rules")]

    def remove_alert_rule(self, rule_id: int) -> AlertRule:
        return AlertRule.model_validate(self._request("DELETE", f"{ALERTS}/rules/{int(rule_id)}"))

    def list_alerts(
        self, firing: bool = False, subject: str | None = None, limit: int = 200
    ) -> list[Alert]:
        params: dict[str, str | int | bool] = {"firing": firing, "limit": limit}
        if subject:
            params["subject"] = subject
        return [Alert.model_validate(a) for a in self._request("GET", ALERTS, params=params)]

    def ack_alert(self, alert_id: int) -> Alert:
        return Alert.model_validate(self._request("POST", f"{ALERTS}/{int(alert_id)}/ack"))

    def alert_deliveries(self, alert_id: int) -> list[Delivery]:
        data = self._request("GET", f"{ALERTS}/{int(alert_id)}/deliveries")
        return [Delivery.model_validate(d) for d in data]

    def alert_metrics(self) -> list[MetricInfo]:
        return [MetricInfo.model_validate(m) for m in self._request("GET", f"{ALERTS}/metrics")]
