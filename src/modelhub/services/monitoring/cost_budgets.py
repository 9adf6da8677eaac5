"""Monthly budgets and their alerts: the half of the cost service that watches spend.

A budget counts its calendar month (UTC) so far. The check (`check`, every
`cost_check_seconds` in a server) fires an alert at 80 % and at 100 % of a budget,
once per threshold per budget and month: the store's claim makes it once across
restarts and across servers sharing a database.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from datetime import datetime

from modelhub.domain.auth import Action, Caller
from modelhub.domain.cost import Budget, BudgetRequest, BudgetScope, BudgetStatus
from modelhub.domain.monitoring import Window
from modelhub.monitoring.budgets import THRESHOLDS, crossed, month_label, month_of
from modelhub.services.auth import AuthService
from modelhub.services.monitoring.alerts import AlertService
from modelhub.stores.metadata.base import AuditDraft, MetadataStore

log = logging.getLogger("modelhub.cost")

Clock = Callable[[], datetime]
SpendOf = Callable[[Sequence[Budget], Window], list[float]]


class BudgetWatch:
    def __init__(
        self,
        metadata: MetadataStore,
        auth: AuthService,
        currency: str,
        spend_of: SpendOf,
        alerts: AlertService,
        clock: Clock,
        check_seconds: float,
    ) -> None:
        self.metadata = metadata
        self.auth = auth
        self.currency = currency
        self.spend_of = spend_of
        self.alerts = alerts
        self.clock = clock
        self.check_seconds = check_seconds
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def set(self, caller: Caller, request: BudgetRequest) -> Budget:
        self.auth.authorize(caller, Action.COST_MANAGE)
        scope, key, value = request.target()
        if scope is BudgetScope.MODEL:
            self.metadata.get_model(value)  # NotFound names it
        target = f"tag:{key}={value}" if key else f"{scope.value}:{value}"
        audit = AuditDraft(
            caller.name,
            "cost.budget.set",
            target,
            {"monthly": request.monthly, "currency": self.currency},
        )
        return self.metadata.create_budget(
            scope, key, value, request.monthly, self.currency, caller.name, audit
        )

    def remove(self, caller: Caller, budget_id: int) -> Budget:
        self.auth.authorize(caller, Action.COST_MANAGE)
        audit = AuditDraft(caller.name, "cost.budget.remove", f"budget:{budget_id}", {})
        return self.metadata.delete_budget(budget_id, audit)

    def statuses(self, now: datetime) -> list[BudgetStatus]:
        """Every budget with its month's spend until `now` and the thresholds alerted."""
        budgets = self.metadata.list_budgets()
        if not budgets:
            return []
        label = month_label(now)
        fired = self.metadata.budget_alerts(label)
        spent = self.spend_of(budgets, Window(month_of(now).start, now))
        return [
            BudgetStatus(
                budget=budget,
                month=label,
                spent=amount,
                ratio=amount / budget.monthly,
                fired=fired.get(budget.id, []),
            )
            for budget, amount in zip(budgets, spent, strict=True)
        ]

    def check(self) -> list[tuple[Budget, int]]:
        """Alert each threshold this month's spend has reached, once per month; returns
        the (budget, threshold) pairs this call alerted."""
        now = self.clock()
        label = month_label(now)
        alerted: list[tuple[Budget, int]] = []
        for status in self.statuses(now):
            budget = status.budget
            subject = f"budget:{budget.id}"
            reached = crossed(status.spent, budget.monthly)
            for threshold in THRESHOLDS:
                if threshold not in reached:
                    # Spend only grows within a month: an open alert of a threshold not
                    # reached is an earlier month's, and that month is over.
                    self.alerts.resolve(subject, f"budget_{threshold}")
            for threshold in reached:
                if not self.metadata.claim_budget_alert(budget.id, label, threshold, now):
                    continue
                # The alert engine keeps one open alert per (rule, subject): an earlier
                # month's, still open, would swallow this month's alert and its notice.
                self.alerts.resolve(subject, f"budget_{threshold}")
                self.alerts.fire(
                    subject,
                    f"budget_{threshold}",
                    "critical" if threshold >= 100 else "warning",
                    f"{budget.label} has spent {status.spent:.2f} {budget.currency} of its "
                    f"{budget.monthly:.2f} monthly budget in {label} ({status.ratio:.0%})",
                    {
                        "budget": str(budget.id),
                        "scope": budget.label,
                        "month": label,
                        "threshold": str(threshold),
                    },
                )
                alerted.append((budget, threshold))
        return alerted

    def start(self) -> None:
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="cost-budgets", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None

    def _loop(self) -> None:
        while not self._stop.wait(self.check_seconds):
            try:
                self.check()
            except Exception:
                log.exception("budget check failed")
