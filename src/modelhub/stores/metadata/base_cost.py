"""The metadata store's cost half: measured run usage, replica spans and budgets."""

from __future__ import annotations

import abc
from collections.abc import Collection, Sequence
from datetime import datetime
from typing import TYPE_CHECKING

from modelhub.domain.cost import AttemptUsage, Budget, BudgetScope, ReplicaSpan, RunUsage

if TYPE_CHECKING:
    from modelhub.stores.metadata.base import AuditDraft


class CostStore(abc.ABC):
    @abc.abstractmethod
    def record_attempt_usage(self, usage: AttemptUsage) -> None:
        """Store an attempt's measured use, replacing the figure recorded before; a final
        figure (the worker's own at exit) is never replaced by a sampled one."""

    @abc.abstractmethod
    def run_usage(self, run_ids: Collection[int] | None = None) -> dict[int, RunUsage]:
        """Each run's use summed over its attempts (all runs with a figure when None)."""

    @abc.abstractmethod
    def record_replicas(
        self, deployment: str, replicas: Sequence[tuple[int, bool]], at: datetime
    ) -> None:
        """The deployment's live replicas now, as (pid, ready): spans of replicas gone or
        changed are closed at `at`, new ones opened, the others marked seen."""

    @abc.abstractmethod
    def touch_replica_spans(self, deployments: Collection[str], at: datetime) -> None:
        """Mark the open spans of `deployments` seen at `at` (they served meanwhile)."""

    @abc.abstractmethod
    def close_replica_spans(self, deployment: str | None, at: datetime) -> int:
        """End the open spans of `deployment` (of every deployment when None) at `at`."""

    @abc.abstractmethod
    def close_stale_replica_spans(self) -> int:
        """End spans a stopped server left open at the last time they were seen."""

    @abc.abstractmethod
    def replica_spans(
        self, start: datetime, end: datetime, deployment: str | None = None
    ) -> list[ReplicaSpan]:
        """Spans that overlap [start, end), oldest first."""

    @abc.abstractmethod
    def create_budget(
        self,
        scope: BudgetScope,
        key: str,
        value: str,
        monthly: float,
        currency: str,
        created_by: str,
        audit: AuditDraft,
    ) -> Budget:
        """Raises Conflict when a budget for the same scope exists."""

    @abc.abstractmethod
    def list_budgets(self) -> list[Budget]: ...

    @abc.abstractmethod
    def delete_budget(self, budget_id: int, audit: AuditDraft) -> Budget:
        """Raises NotFound naming the budget."""

    @abc.abstractmethod
    def claim_budget_alert(self, budget_id: int, month: str, threshold: int, at: datetime) -> bool:
        """True for the one caller that records `threshold` of `month` first."""

    @abc.abstractmethod
    def budget_alerts(self, month: str) -> dict[int, list[int]]:
        """The thresholds alerted in `month`, per budget id."""
