"""Webhook notifications in the payload format of Prometheus Alertmanager's webhook
receiver (version "4"), so that receivers written for Alertmanager work unchanged,
and the HMAC-SHA256 signature a receiver checks them with.

One notification tells one alert's state (firing or resolved), so every payload
is a group of one: groupKey names the rule and the subject.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import UTC, datetime
from typing import Any

from modelhub.domain.alerts import Alert, Scope, ScopeKind

SIGNATURE_HEADER = "X-Modelhub-Signature"
ZERO_TIME = "0001-01-01T00:00:00Z"  # Alertmanager's endsAt of an alert still firing


def rfc3339(at: datetime) -> str:
    return at.astimezone(UTC).isoformat().replace("+00:00", "Z")


def alert_labels(alert: Alert) -> dict[str, str]:
    """alertname, severity, subject and the scope's own label (model, deployment, run)."""
    labels = {"alertname": alert.rule, "severity": alert.severity, "subject": alert.subject}
    scope = Scope.of_subject(alert.subject)
    if scope.kind is not ScopeKind.PLATFORM:
        labels[scope.kind.value] = scope.target
    return dict(alert.labels) | labels


def alertmanager_payload(
    alert: Alert, *, receiver: str, external_url: str, state: str | None = None
) -> dict[str, Any]:
    """The webhook body for `alert` in `state` (its current state by default)."""
    status = state or alert.state
    labels = alert_labels(alert)
    annotations = {"summary": alert.message}
    if alert.acknowledged_by:
        annotations["acknowledged_by"] = alert.acknowledged_by
    ends = alert.resolved_at if status == "resolved" and alert.resolved_at else None
    group = {"alertname": alert.rule, "subject": alert.subject}
    group_key = "{}:{" + ", ".join(f"{k}={json.dumps(v)}" for k, v in group.items()) + "}"
    base = external_url.rstrip("/")
    return {
        "version": "4",
        "groupKey": group_key,
        "truncatedAlerts": 0,
        "status": status,
        "receiver": receiver,
        "groupLabels": group,
        "commonLabels": labels,
        "commonAnnotations": annotations,
        "externalURL": base,
        "alerts": [
            {
                "status": status,
                "labels": labels,
                "annotations": annotations,
                "startsAt": rfc3339(alert.fired_at),
                "endsAt": rfc3339(ends) if ends else ZERO_TIME,
                "generatorURL": f"{base}/api/v1/alerts/{alert.id}",
                "fingerprint": alert.fingerprint,
            }
        ],
    }


def encode(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload, separators=(",", ":"), sort_keys=True).encode("utf-8")


def signature(body: bytes, secret: str) -> str:
    """`sha256=<hex HMAC-SHA256 of the raw body>`, the value of SIGNATURE_HEADER."""
    return "sha256=" + hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()


def verify(body: bytes, header: str, secret: str) -> bool:
    """What a receiver does: recompute and compare in constant time."""
    return hmac.compare_digest(signature(body, secret), header)
