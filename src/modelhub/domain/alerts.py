"""Alert rules, alerts and the lifecycle one alert goes through.

    (condition true) ──> pending ──true for `for`──> firing ──false for the hold──> resolved
                            └──false before `for`──> (dropped, never notified)

One alert is open per fingerprint (rule, subject) at a time: while it is pending
or firing, the rule holding true again changes nothing. A firing alert resolves
only after its condition has been false for the *hold*: the rule's `for`, and at
least `alerts_resolve_after_seconds` (one evaluation when that is 0). A condition
that dips for a moment inside one incident therefore keeps the same alert; once
resolved, the next time the condition holds is a new incident and a new alert.
Acknowledging an alert records who and when; it does not resolve it.

`decide` is the whole lifecycle as a pure function of the open alert, the
condition and the clock, so that it is tested with an injected clock.
"""

from __future__ import annotations

import hashlib
import math
from datetime import datetime
from enum import StrEnum
from typing import Any
from urllib.parse import urlsplit

from pydantic import Field, field_validator

from modelhub.domain.records import Record
from modelhub.errors import InvalidInput

MAX_WEBHOOKS = 8
MAX_LABELS = 32
MAX_LABEL_CHARS = 200
MAX_URL_CHARS = 2000
MAX_FOR_SECONDS = 30 * 86400.0
ENGINE_ACTOR = "modelhub:alerts"  # the actor of transitions nobody asked for


class Severity(StrEnum):
    INFO = "info"
    WARNING = "warning"
    CRITICAL = "critical"


class Comparison(StrEnum):
    ABOVE = "above"  # >
    BELOW = "below"  # <
    AT_LEAST = "at_least"  # >=
    AT_MOST = "at_most"  # <=

    @property
    def symbol(self) -> str:
        return {"above": ">", "below": "<", "at_least": ">=", "at_most": "<="}[self.value]

    def holds(self, value: float, threshold: float) -> bool:
        if self is Comparison.ABOVE:
            return value > threshold
        if self is Comparison.BELOW:
            return value < threshold
        if self is Comparison.AT_LEAST:
            return value >= threshold
        return value <= threshold


SYMBOLS = {c.symbol: c for c in Comparison}


class ScopeKind(StrEnum):
    MODEL = "model"
    DEPLOYMENT = "deployment"
    RUN = "run"
    PLATFORM = "platform"


class AlertState(StrEnum):
    PENDING = "pending"
    FIRING = "firing"
    RESOLVED = "resolved"


class Scope(Record):
    """What a rule watches: a model, a deployment, a run (by id) or the platform."""

    kind: ScopeKind
    target: str = Field(default="", max_length=200)  # empty for the platform

    @property
    def subject(self) -> str:
        return "platform" if self.kind is ScopeKind.PLATFORM else f"{self.kind}:{self.target}"

    @classmethod
    def of_subject(cls, subject: str) -> Scope:
        kind, _, target = subject.partition(":")
        try:
            return cls(kind=ScopeKind(kind), target=target)
        except ValueError:
            return cls(kind=ScopeKind.PLATFORM, target=subject)


def parse_comparison(text: str) -> Comparison:
    """`above`/`below`/`at_least`/`at_most` or `>`, `<`, `>=`, `<=`; else InvalidInput."""
    found = SYMBOLS.get(text.strip()) or next((c for c in Comparison if c.value == text), None)
    if found is None:
        choices = ", ".join([c.value for c in Comparison] + list(SYMBOLS))
        raise InvalidInput(
            f"unknown comparison {text!r}: use one of {choices}", {"comparison": text}
        )
    return found


def parse_severity(text: str) -> Severity:
    try:
        return Severity(text)
    except ValueError:
        choices = ", ".join(s.value for s in Severity)
        raise InvalidInput(
            f"unknown severity {text!r}: use one of {choices}", {"severity": text}
        ) from None


def check_webhook_url(url: str) -> str:
    """An http(s) URL with a host and no credentials in it; else InvalidInput."""
    try:
        parts = urlsplit(url)
        usable = parts.scheme in ("http", "https") and bool(parts.hostname) and (parts.port or 1)
    except ValueError:  # a bad port or IPv6 literal
        usable = False
    if not usable or len(url) > MAX_URL_CHARS or "\x00" in url:
        raise InvalidInput(
            f"webhook URL {url[:200]!r} is not an http(s) URL with a host", {"webhook": url[:200]}
        )
    if parts.username or parts.password:
        raise InvalidInput(
            "a webhook URL must not carry credentials; the receiver verifies the "
            "X-Modelhub-Signature header instead",
            {"webhook": f"{parts.scheme}://{parts.hostname}"},
        )
    return url


class AlertRuleDraft(Record):
    """A rule as a user asks for it; the service checks metric and target."""

    metric: str = Field(max_length=64)
    comparison: Comparison
    threshold: float
    for_seconds: float = Field(default=0.0, ge=0, le=MAX_FOR_SECONDS)
    severity: Severity = Severity.WARNING
    scope: Scope
    name: str | None = Field(default=None, max_length=64)
    labels: dict[str, str] = Field(default_factory=dict)
    webhooks: list[str] = Field(default_factory=list)
    enabled: bool = True

    @field_validator("comparison", mode="before")
    @classmethod
    def _symbols(cls, value: object) -> object:
        """`>`, `<`, `>=`, `<=` name the comparisons too."""
        return SYMBOLS.get(value, value) if isinstance(value, str) else value

    def checked(self) -> AlertRuleDraft:
        """The draft with its plain-value checks done (InvalidInput names the field)."""
        if not math.isfinite(self.threshold):
            raise InvalidInput("threshold must be a finite number", {"threshold": self.threshold})
        if len(self.webhooks) > MAX_WEBHOOKS or len(self.labels) > MAX_LABELS:
            raise InvalidInput(
                f"at most {MAX_WEBHOOKS} webhooks and {MAX_LABELS} labels per rule", {}
            )
        for url in self.webhooks:
            check_webhook_url(url)
        for key, value in self.labels.items():
            if not key.isidentifier() or not key.isascii() or len(key) > 64:
                raise InvalidInput(f"label name {key[:64]!r} must be an identifier", {})
            if len(value) > MAX_LABEL_CHARS or "\x00" in value:
                raise InvalidInput(f"label {key!r}: at most {MAX_LABEL_CHARS} characters", {})
        if self.scope.kind is not ScopeKind.PLATFORM and not self.scope.target:
            raise InvalidInput(f"a {self.scope.kind} rule needs a target", {"scope": "target"})
        if self.name is not None and not (0 < len(self.name) <= 64):
            raise InvalidInput("a rule name has 1 to 64 characters", {"name": self.name})
        return self

    def default_name(self) -> str:
        return f"{self.metric}_{self.comparison.value}_{self.threshold:g}"


class AlertRule(Record):
    id: int | None = None  # None for the built-in training rules
    name: str
    metric: str
    comparison: Comparison
    threshold: float
    for_seconds: float = 0.0
    severity: Severity
    scope: Scope
    labels: dict[str, str] = Field(default_factory=dict)
    webhooks: list[str] = Field(default_factory=list)
    enabled: bool = True
    builtin: bool = False
    description: str = ""
    created_by: str = ENGINE_ACTOR
    created_at: datetime | None = None


class Alert(Record):
    """One incident of one rule on one subject."""

    id: int
    subject: str
    rule: str
    severity: str
    message: str
    state: str
    fired_at: datetime
    resolved_at: datetime | None = None
    rule_id: int | None = None
    labels: dict[str, str] = Field(default_factory=dict)
    pending_since: datetime | None = None
    clearing_since: datetime | None = None  # the condition is false since (still firing)
    acknowledged_by: str | None = None
    acknowledged_at: datetime | None = None

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.rule, self.subject)


def fingerprint(rule: str, subject: str) -> str:
    """Alertmanager-style 16 hex digits naming (rule, subject): the de-duplication key."""
    return hashlib.sha256(f"{rule}\x00{subject}".encode()).hexdigest()[:16]


class Step(StrEnum):
    NOTHING = "nothing"
    PEND = "pend"  # open a pending alert
    FIRE = "fire"  # open (or promote a pending one to) firing
    CANCEL = "cancel"  # drop a pending alert whose condition went away
    CLEARING = "clearing"  # a firing alert's condition went false: start the hold
    STILL = "still"  # the condition came back inside the hold: same incident
    RESOLVE = "resolve"


def decide(
    open_alert: Alert | None,
    condition: bool,
    now: datetime,
    for_seconds: float,
    hold_seconds: float,
) -> Step:
    """The next step of the lifecycle for one (rule, subject) at time `now`."""
    if open_alert is None:
        if not condition:
            return Step.NOTHING
        return Step.FIRE if for_seconds <= 0 else Step.PEND
    if open_alert.state == AlertState.PENDING:
        if not condition:
            return Step.CANCEL
        since = open_alert.pending_since or open_alert.fired_at
        return Step.FIRE if (now - since).total_seconds() >= for_seconds else Step.NOTHING
    if condition:
        return Step.STILL if open_alert.clearing_since is not None else Step.NOTHING
    hold = max(hold_seconds, for_seconds)
    if open_alert.clearing_since is None:
        return Step.RESOLVE if hold <= 0 else Step.CLEARING
    elapsed = (now - open_alert.clearing_since).total_seconds()
    return Step.RESOLVE if elapsed >= hold else Step.NOTHING


class MetricInfo(Record):
    """A metric rules may name, and the scopes it applies to."""

    name: str
    scopes: list[ScopeKind]
    description: str = ""


class Delivery(Record):
    """One attempt to send one notification to one webhook."""

    id: int
    alert_id: int
    url: str
    status: str  # the alert state the notification told: firing or resolved
    attempt: int
    status_code: int | None = None
    error: str | None = None
    outcome: str  # ok, retry, failed
    at: datetime


def rule_summary(rule: AlertRule) -> dict[str, Any]:
    return {
        "name": rule.name,
        "metric": rule.metric,
        "comparison": rule.comparison.value,
        "threshold": rule.threshold,
        "for_seconds": rule.for_seconds,
        "severity": rule.severity.value,
        "subject": rule.scope.subject,
        "webhooks": len(rule.webhooks),
    }
