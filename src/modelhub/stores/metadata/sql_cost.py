"""Cost in the SQL store: measured run usage, replica spans, budgets and their alerts."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Row, delete, insert, or_, select, update
from sqlalchemy import exc as sa_exc

from modelhub.domain.cost import AttemptUsage, Budget, BudgetScope, ReplicaSpan, RunUsage
from modelhub.errors import Conflict, NotFound
from modelhub.stores.metadata.base import AuditDraft
from modelhub.stores.metadata.sql_base import SqlStoreBase, _aware, _now
from modelhub.stores.metadata.tables import (
    cost_budget_alerts,
    cost_budgets,
    replica_spans,
    run_usage,
    runs,
)


def _span(row: Row[Any]) -> ReplicaSpan:
    return ReplicaSpan(
        deployment=row.deployment,
        pid=row.pid,
        ready=row.ready,
        started_at=_aware(row.started_at),
        ended_at=_aware(row.ended_at) if row.ended_at is not None else None,
        last_seen_at=_aware(row.last_seen_at),
    )


def _budget(row: Row[Any]) -> Budget:
    return Budget(
        id=row.id,
        scope=BudgetScope(row.scope),
        key=row.key,
        value=row.value,
        monthly=row.monthly,
        currency=row.currency,
        created_by=row.created_by,
        created_at=_aware(row.created_at),
    )


class CostQueries(SqlStoreBase):
    # -- runs -----------------------------------------------------------------

    def record_attempt_usage(self, usage: AttemptUsage) -> None:
        values = {
            "cpu_seconds": usage.cpu_seconds,
            "gpu_seconds": usage.gpu_seconds,
            "wall_seconds": usage.wall_seconds,
            "final": usage.final,
            "updated_at": _now(),
        }
        key = (run_usage.c.run_id == usage.run_id, run_usage.c.attempt == usage.attempt)
        with self._write_plain() as conn:
            if conn.execute(select(runs.c.id).where(runs.c.id == usage.run_id)).first() is None:
                raise NotFound(f"run {usage.run_id} does not exist", {"run": usage.run_id})
            stored = conn.execute(select(run_usage.c.final).where(*key).with_for_update()).first()
            if stored is None:
                conn.execute(
                    insert(run_usage).values(run_id=usage.run_id, attempt=usage.attempt, **values)
                )
            elif not stored.final or usage.final:
                conn.execute(update(run_usage).where(*key).values(**values))

    def run_usage(self, run_ids: Collection[int] | None = None) -> dict[int, RunUsage]:
        query = select(run_usage)
        if run_ids is not None:
            query = query.where(run_usage.c.run_id.in_(list(run_ids)))
        found: dict[int, RunUsage] = {}
        with self._read() as conn:
            for row in conn.execute(query):
                before = found.get(row.run_id) or RunUsage(run_id=row.run_id)
                found[row.run_id] = RunUsage(
                    run_id=row.run_id,
                    cpu_seconds=before.cpu_seconds + row.cpu_seconds,
                    gpu_seconds=before.gpu_seconds + row.gpu_seconds,
                    wall_seconds=before.wall_seconds + row.wall_seconds,
                    attempts=before.attempts + 1,
                )
        return found

    # -- replica spans ----------------------------------------------------------

    def record_replicas(
        self, deployment: str, replicas: Sequence[tuple[int, bool]], at: datetime
    ) -> None:
        live = {(pid, ready) for pid, ready in replicas}
        with self._write_plain() as conn:
            open_spans = conn.execute(
                select(replica_spans.c.id, replica_spans.c.pid, replica_spans.c.ready)
                .where(
                    replica_spans.c.deployment == deployment,
                    replica_spans.c.ended_at.is_(None),
                )
                .with_for_update()
            ).all()
            still: list[int] = []
            ended: list[int] = []
            for row in open_spans:
                (still if (row.pid, row.ready) in live else ended).append(row.id)
            if ended:
                conn.execute(
                    update(replica_spans)
                    .where(replica_spans.c.id.in_(ended))
                    .values(ended_at=at, last_seen_at=at)
                )
            if still:
                conn.execute(
                    update(replica_spans)
                    .where(replica_spans.c.id.in_(still))
                    .values(last_seen_at=at)
                )
            known = {(row.pid, row.ready) for row in open_spans if row.id in still}
            new = [
                {
                    "deployment": deployment,
                    "pid": pid,
                    "ready": ready,
                    "started_at": at,
                    "last_seen_at": at,
                }
                for pid, ready in sorted(live - known)
            ]
            if new:
                conn.execute(insert(replica_spans), new)

    def touch_replica_spans(self, deployments: Collection[str], at: datetime) -> None:
        if not deployments:
            return
        with self._write_plain() as conn:
            conn.execute(
                update(replica_spans)
                .where(
                    replica_spans.c.deployment.in_(list(deployments)),
                    replica_spans.c.ended_at.is_(None),
                )
                .values(last_seen_at=at)
            )

    def close_replica_spans(self, deployment: str | None, at: datetime) -> int:
        query = update(replica_spans).where(replica_spans.c.ended_at.is_(None))
        if deployment is not None:
            query = query.where(replica_spans.c.deployment == deployment)
        with self._write_plain() as conn:
            return conn.execute(query.values(ended_at=at, last_seen_at=at)).rowcount

    def close_stale_replica_spans(self) -> int:
        with self._write_plain() as conn:
            return conn.execute(
                update(replica_spans)
                .where(replica_spans.c.ended_at.is_(None))
                .values(ended_at=replica_spans.c.last_seen_at)
            ).rowcount

    def replica_spans(
        self, start: datetime, end: datetime, deployment: str | None = None
    ) -> list[ReplicaSpan]:
        query = (
            select(replica_spans)
            .where(
                replica_spans.c.started_at < end,
                or_(replica_spans.c.ended_at.is_(None), replica_spans.c.ended_at > start),
            )
            .order_by(replica_spans.c.started_at, replica_spans.c.id)
        )
        if deployment is not None:
            query = query.where(replica_spans.c.deployment == deployment)
        with self._read() as conn:
            return [_span(row) for row in conn.execute(query)]

    # -- budgets ------------------------------------------------------------------

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
        try:
            with self._write(audit) as conn:
                budget_id = conn.execute(
                    insert(cost_budgets)
                    .values(
                        scope=scope.value,
                        key=key,
                        value=value,
                        monthly=monthly,
                        currency=currency,
                        created_by=created_by,
                        created_at=_now(),
                    )
                    .returning(cost_budgets.c.id)
                ).scalar_one()
                audit.details["budget"] = budget_id
                row = conn.execute(select(cost_budgets).where(cost_budgets.c.id == budget_id)).one()
                return _budget(row)
        except sa_exc.IntegrityError as exc:
            label = f"tag:{key}={value}" if scope is BudgetScope.TAG else f"{scope.value}:{value}"
            raise Conflict(
                f"a budget for {label} exists already; remove it first",
                {"scope": scope.value, "key": key, "value": value},
            ) from exc

    def list_budgets(self) -> list[Budget]:
        with self._read() as conn:
            rows = conn.execute(select(cost_budgets).order_by(cost_budgets.c.id)).all()
        return [_budget(row) for row in rows]

    def delete_budget(self, budget_id: int, audit: AuditDraft) -> Budget:
        with self._write(audit) as conn:
            row = conn.execute(
                select(cost_budgets).where(cost_budgets.c.id == budget_id).with_for_update()
            ).first()
            if row is None:
                raise NotFound(f"budget {budget_id} does not exist", {"budget": budget_id})
            conn.execute(
                delete(cost_budget_alerts).where(cost_budget_alerts.c.budget_id == budget_id)
            )
            conn.execute(delete(cost_budgets).where(cost_budgets.c.id == budget_id))
            return _budget(row)

    def claim_budget_alert(self, budget_id: int, month: str, threshold: int, at: datetime) -> bool:
        try:
            with self._write_plain() as conn:
                conn.execute(
                    insert(cost_budget_alerts).values(
                        budget_id=budget_id, month=month, threshold=threshold, fired_at=at
                    )
                )
        except sa_exc.IntegrityError:
            return False
        return True

    def budget_alerts(self, month: str) -> dict[int, list[int]]:
        found: dict[int, list[int]] = {}
        with self._read() as conn:
            rows = conn.execute(
                select(cost_budget_alerts.c.budget_id, cost_budget_alerts.c.threshold)
                .where(cost_budget_alerts.c.month == month)
                .order_by(cost_budget_alerts.c.threshold)
            ).all()
        for row in rows:
            found.setdefault(row.budget_id, []).append(row.threshold)
        return found
