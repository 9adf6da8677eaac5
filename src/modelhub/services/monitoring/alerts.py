"""One alert engine for serving, training, cost and governance.

Rules name a registered metric, a comparison, a threshold, a `for` duration and a
scope. `evaluate_once(now)` reads each enabled rule's metric and moves its alert
through the lifecycle of `modelhub.domain.alerts` (pending → firing → resolved, one
open alert per (rule, subject)); a background thread calls it every
`alerts_evaluation_seconds`. Engines that decide on their own (the training
scheduler's built-in rules, canary analysis, budgets, webhook failures) call
`fire`/`resolve` or the store's `fire_alert`/`resolve_alerts`: the same rows, the
same de-duplication and audit.

Notifications are an outbox: every alert whose state its webhooks were not yet
told of is sent by a second thread (`dispatch_once`), never by the evaluation
thread, so a slow receiver delays no rule. A webhook that stays unreachable after
its retries fires one `webhook_failed` alert (open until a delivery to it succeeds).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from modelhub.domain.alert_rules import DIVERGENCE_FACTOR, DIVERGING_LOSS, NAN_LOSS
from modelhub.domain.alerts import (
    Alert,
    AlertRule,
    AlertRuleDraft,
    Comparison,
    Delivery,
    MetricInfo,
    Scope,
    ScopeKind,
    Severity,
    Step,
    check_webhook_url,
    decide,
)
from modelhub.domain.auth import Action, Caller
from modelhub.domain.monitoring import Window
from modelhub.errors import Conflict, InvalidInput, ModelhubError
from modelhub.services.auth import AuthService
from modelhub.services.monitoring.alert_metrics import (
    MetricRegistry,
    Reader,
    register_serving,
    register_training,
)
from modelhub.services.monitoring.alert_webhooks import RetryPolicy, WebhookSender, shown_url
from modelhub.services.monitoring.report_sources import HistorySource
from modelhub.settings import Settings
from modelhub.stores.metadata.base import MetadataStore

log = logging.getLogger(__name__)
WEBHOOK_FAILED = "webhook_failed"
RECEIVER = "modelhub"
RESERVED = frozenset({NAN_LOSS.name, DIVERGING_LOSS.name, "stalled", WEBHOOK_FAILED})


@dataclass
class Evaluation:
    """What one evaluation did, by rule name."""

    fired: list[str] = field(default_factory=list)
    resolved: list[str] = field(default_factory=list)
    pending: list[str] = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)


def builtin_rules(stall_seconds: float) -> list[AlertRule]:
    """The training scheduler's three rules, as rules of this engine (evaluated by the
    scheduler at each loss point and look, on every run)."""
    every_run = Scope(kind=ScopeKind.RUN, target="*")
    return [
        AlertRule(
            name=NAN_LOSS.name,
            metric="run_loss_nonfinite",
            comparison=Comparison.AT_LEAST,
            threshold=1.0,
            severity=NAN_LOSS.severity,
            description="the loss became NaN or infinite",
            scope=every_run,
            builtin=True,
        ),
        AlertRule(
            name=DIVERGING_LOSS.name,
            metric="run_loss_over_best",  # the scheduler keeps the best; no reader here
            comparison=Comparison.ABOVE,
            threshold=DIVERGENCE_FACTOR,
            severity=DIVERGING_LOSS.severity,
            description=f"after 5 loss values, one is over {DIVERGENCE_FACTOR:g}x the best so far",
            scope=every_run,
            builtin=True,
        ),
        AlertRule(
            name="stalled",
            metric="run_idle_seconds",
            comparison=Comparison.ABOVE,
            threshold=stall_seconds,
            severity=Severity.WARNING,
            description="no progress for train_stall_seconds",
            scope=every_run,
            builtin=True,
        ),
    ]


class AlertService:
    def __init__(
        self,
        settings: Settings,
        metadata: MetadataStore,
        auth: AuthService,
        performance: HistorySource | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        sleep: Callable[[float], object] | None = None,
    ) -> None:
        """`clock` and `sleep` (the back-off between webhook tries; by default a wait
        that `stop` ends) are injectable for tests."""
        for url in settings.alerts_webhooks:
            check_webhook_url(url)
        self.settings = settings
        self.metadata = metadata
        self.auth = auth
        self.clock = clock
        self.metrics = MetricRegistry()
        register_training(self.metrics, metadata)
        register_serving(self.metrics, metadata, performance)
        external = settings.alerts_external_url or f"http://{settings.host}:{settings.port}"
        policy = RetryPolicy(
            settings.alerts_webhook_attempts,
            settings.alerts_webhook_backoff_seconds,
            settings.alerts_webhook_timeout_seconds,
        )
        self._stop = threading.Event()
        self.sender = WebhookSender(
            metadata,
            policy,
            settings.alerts_webhook_secret,
            external,
            sleep or self._stop.wait,
            self._stop.is_set,
        )
        self._wake = threading.Event()
        self._threads: list[threading.Thread] = []

    # -- the registry of metrics --------------------------------------------------

    def register_metric(self, name: str, scope_kinds: set[str], read: Reader) -> None:
        """Let rules name `name` on scopes of `scope_kinds`; `read` returns the figure
        (None: nothing to measure, the rule is not true)."""
        self.metrics.register(name, scope_kinds, read)

    def list_metrics(self, caller: Caller) -> list[MetricInfo]:
        self.auth.authorize(caller, Action.MODELS_READ)
        return [
            MetricInfo(name=m.name, scopes=sorted(m.scope_kinds), description=m.description)
            for m in self.metrics.all()
        ]

    # -- rules --------------------------------------------------------------------

    def add_rule(self, caller: Caller, draft: AlertRuleDraft) -> AlertRule:
        """Check everything (metric, scope, target, webhooks), then store the rule.

        InvalidInput for an unknown metric or a scope it does not apply to; NotFound
        for an unknown model, deployment or run; Conflict for a taken name."""
        self.auth.authorize(caller, Action.ALERTS_MANAGE)
        draft = draft.checked()
        metric = self.metrics.get(draft.metric)
        if draft.scope.kind not in metric.scope_kinds:
            kinds = ", ".join(sorted(k.value for k in metric.scope_kinds))
            raise InvalidInput(
                f"metric {draft.metric!r} applies to {kinds}, not to a {draft.scope.kind}",
                {"metric": draft.metric, "scope": draft.scope.kind.value},
            )
        self._check_target(draft.scope)
        name = draft.name or draft.default_name()
        if name in RESERVED:
            raise Conflict(f"{name!r} is a built-in rule's name", {"name": name})
        return self.metadata.add_alert_rule(draft, caller.name)

    def _check_target(self, scope: Scope) -> None:
        if scope.kind is ScopeKind.MODEL:
            self.metadata.get_model(scope.target)
        elif scope.kind is ScopeKind.DEPLOYMENT:
            self.metadata.get_deployment(scope.target)
        elif scope.kind is ScopeKind.RUN:
            if not scope.target.isdigit() or len(scope.target) > 18:
                raise InvalidInput(f"run id {scope.target!r} is not a number", {"run": "id"})
            self.metadata.get_run(int(scope.target))

    def list_rules(self, caller: Caller) -> list[AlertRule]:
        """The built-in training rules first, then the stored ones."""
        self.auth.authorize(caller, Action.MODELS_READ)
        stored = self.metadata.list_alert_rules()
        return builtin_rules(self.settings.train_stall_seconds) + stored

    def remove_rule(self, caller: Caller, rule_id: int) -> AlertRule:
        self.auth.authorize(caller, Action.ALERTS_MANAGE)
        removed = self.metadata.remove_alert_rule(rule_id, caller.name)
        self._wake.set()  # its firing alerts resolved: tell the receivers
        return removed

    # -- alerts -------------------------------------------------------------------

    def list_alerts(
        self,
        caller: Caller,
        firing_only: bool = False,
        subject: str | None = None,
        limit: int = 200,
    ) -> list[Alert]:
        self.auth.authorize(caller, Action.MODELS_READ)
        return self.metadata.list_alerts(subject, firing_only, limit=limit)

    def fired(self, model: str, window: Window, limit: int = 1000) -> list[Alert]:
        """The alerts about `model` (its subject, or a `model` label: its deployments,
        its canaries) that were open at some time during `window`, newest first."""
        return [
            alert
            for alert in self.metadata.list_alerts(None, False, limit=limit)
            if (alert.subject == f"model:{model}" or alert.labels.get("model") == model)
            and alert.fired_at < window.end
            and (alert.resolved_at is None or alert.resolved_at >= window.start)
        ]

    def get_alert(self, caller: Caller, alert_id: int) -> Alert:
        self.auth.authorize(caller, Action.MODELS_READ)
        return self.metadata.get_alert(alert_id)

    def acknowledge(self, caller: Caller, alert_id: int) -> Alert:
        """Record who looked at it; it stays firing until its condition clears."""
        self.auth.authorize(caller, Action.ALERTS_ACK)
        return self.metadata.acknowledge_alert(alert_id, caller.name)

    def deliveries(self, caller: Caller, alert_id: int) -> list[Delivery]:
        self.auth.authorize(caller, Action.MODELS_READ)
        self.metadata.get_alert(alert_id)
        return self.metadata.list_deliveries(alert_id)

    def fire(
        self, subject: str, rule: str, severity: str, message: str, labels: dict[str, str]
    ) -> Alert:
        """Fire (or find firing) the alert of (rule, subject), for engines that decide on
        their own; audited, de-duplicated and notified like any other."""
        alert = self.metadata.fire_alert(
            subject, rule, severity, message, labels=labels, at=self.clock()
        )
        self._wake.set()
        return alert

    def resolve(self, subject: str, rule: str) -> None:
        if self.metadata.resolve_alerts(subject, rule, at=self.clock()):
            self._wake.set()

    # -- evaluation ---------------------------------------------------------------

    def evaluate_once(self, now: datetime | None = None) -> Evaluation:
        """Evaluate every enabled stored rule at `now` (the clock's time by default)."""
        now = now or self.clock()
        done = Evaluation()
        window = Window.last(timedelta(seconds=self.settings.alerts_window_seconds), now)
        for rule in self.metadata.list_alert_rules():
            if rule.enabled:
                try:
                    self._evaluate(rule, window, now, done)
                except ModelhubError as exc:  # a target deleted since: not true, keep going
                    done.errors[rule.name] = exc.message
        if done.fired or done.resolved:
            self._wake.set()
        return done

    def _evaluate(self, rule: AlertRule, window: Window, now: datetime, done: Evaluation) -> None:
        subject = rule.scope.subject
        value = self.metrics.get(rule.metric).read(rule.scope, window)
        condition = value is not None and rule.comparison.holds(value, rule.threshold)
        current = self.metadata.open_alert(subject, rule.name)
        hold = self.settings.alerts_resolve_after_seconds
        step = decide(current, condition, now, rule.for_seconds, hold)
        message = (
            f"{rule.metric} {value:.4g} {rule.comparison.symbol} {rule.threshold:g} on {subject}"
            if value is not None
            else f"{rule.metric} on {subject}"
        )
        labels = dict(rule.labels)
        if step is Step.PEND:
            self.metadata.pend_alert(
                subject, rule.name, rule.severity.value, message,
                labels=labels, rule_id=rule.id, webhooks=rule.webhooks, at=now,
            )  # fmt: skip
            done.pending.append(rule.name)
        elif step is Step.FIRE:
            self.metadata.fire_alert(
                subject, rule.name, rule.severity.value, message,
                labels=labels, rule_id=rule.id, webhooks=rule.webhooks, at=now,
            )  # fmt: skip
            done.fired.append(rule.name)
        elif step is Step.CANCEL and current is not None:
            self.metadata.cancel_pending(current.id)
        elif step is Step.CLEARING and current is not None:
            self.metadata.set_clearing(current.id, now)
        elif step is Step.STILL and current is not None:
            self.metadata.set_clearing(current.id, None)
        elif step is Step.RESOLVE:
            self.metadata.resolve_alerts(subject, rule.name, at=now)
            done.resolved.append(rule.name)

    # -- notification -------------------------------------------------------------

    def dispatch_once(self) -> int:
        """Send every owed notification (each webhook retried per its policy); returns
        how many alerts were handled."""
        owed = self.metadata.alerts_owed()
        for alert, own in owed:
            # Claimed before it is sent: with several servers, one sends it (a server
            # killed while sending loses that notification rather than doubling it).
            if not self.metadata.claim_notification(alert.id, alert.state):
                continue
            for url in self._webhooks_of(alert, own):
                delivered, error = self.sender.send(alert, url, RECEIVER)
                if delivered:
                    self.resolve(f"webhook:{shown_url(url)}", WEBHOOK_FAILED)
                elif alert.rule != WEBHOOK_FAILED:  # no alert about the alert about it
                    self.fire(
                        f"webhook:{shown_url(url)}",
                        WEBHOOK_FAILED,
                        Severity.WARNING.value,
                        f"webhook {shown_url(url)} failed after "
                        f"{self.settings.alerts_webhook_attempts} tries: {error}",
                        {},
                    )
        return len(owed)

    def _webhooks_of(self, alert: Alert, own: list[str]) -> list[str]:
        urls = list(self.settings.alerts_webhooks) + own
        if alert.rule == WEBHOOK_FAILED:  # not to the receiver that is failing
            urls = [u for u in urls if f"webhook:{shown_url(u)}" != alert.subject]
        return list(dict.fromkeys(urls))

    # -- background threads -------------------------------------------------------

    def start(self) -> None:
        """Evaluate and dispatch in two daemon threads until `stop`."""
        if self._threads:
            return
        self._stop.clear()
        for name, work, wait in (
            ("alerts-evaluate", self.evaluate_once, self._wait_evaluation),
            ("alerts-dispatch", self.dispatch_once, self._wait_dispatch),
        ):
            thread = threading.Thread(target=self._loop, args=(work, wait), name=name)
            thread.daemon = True
            thread.start()
            self._threads.append(thread)

    def _loop(self, work: Callable[[], object], wait: Callable[[], object]) -> None:
        while not self._stop.is_set():
            try:
                work()
            except Exception:  # one bad pass must not end the engine
                log.exception("alert engine pass failed")
            wait()

    def _wait_evaluation(self) -> None:
        self._stop.wait(self.settings.alerts_evaluation_seconds)

    def _wait_dispatch(self) -> None:
        """Until an alert changed here (fire, evaluation) or the dispatch interval passed
        (the scheduler and other servers write alerts too)."""
        self._wake.wait(self.settings.alerts_dispatch_seconds)
        self._wake.clear()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        for thread in self._threads:
            thread.join()
        self._threads.clear()

    def close(self) -> None:
        self.stop()
        self.sender.close()
