"""Pipelines, runs and their telemetry (metrics, events, checkpoints) in SQL.

User actions (create a pipeline, start, cancel, resume) are audited like every
other change. Telemetry the scheduler records many times a second (progress,
metrics, events) is not: it goes through `_write_plain`, and the run's own
event feed is its history.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Connection, Row, delete, func, insert, or_, select, update
from sqlalchemy import exc as sa_exc

from modelhub.domain.pipelines import Priority
from modelhub.domain.runs import (
    Checkpoint,
    MetricPoint,
    Pipeline,
    QueuedRun,
    Run,
    RunEvent,
    RunResources,
    RunStatus,
)
from modelhub.errors import Conflict, IllegalTransition, NotFound
from modelhub.stores.metadata.base import AuditDraft, PipelineDraft, Progress, RunDraft
from modelhub.stores.metadata.sql_base import SqlStoreBase, _aware, _now
from modelhub.stores.metadata.tables import (
    pipelines,
    run_checkpoints,
    run_events,
    run_metrics,
    runs,
)

HELD_STATUSES = (RunStatus.RUNNING.value, RunStatus.FINISHING.value)
RUN_TIMES = ("created_at", "queued_at", "started_at", "finished_at", "next_attempt_at")


def _maybe(at: datetime | None) -> datetime | None:
    return _aware(at) if at is not None else None


def _pipeline(row: Row[Any]) -> Pipeline:
    return Pipeline(
        name=row.name,
        version=row.version,
        type=row.type,
        trainer=row.trainer,
        priority=Priority(row.priority),
        spec=row.spec,
        script_digest=row.script_digest,
        created_by=row.created_by,
        updated_by=row.updated_by,
        created_at=_aware(row.created_at),
        updated_at=_aware(row.updated_at),
    )


def _run(row: Row[Any]) -> Run:
    return Run(
        id=row.id,
        pipeline=row.pipeline,
        pipeline_version=row.pipeline_version,
        status=RunStatus(row.status),
        priority=Priority(row.priority),
        resources=RunResources(**row.resources),
        created_by=row.created_by,
        created_at=_aware(row.created_at),
        queued_at=_maybe(row.queued_at),
        started_at=_maybe(row.started_at),
        finished_at=_maybe(row.finished_at),
        attempts=row.attempts,
        max_attempts=row.max_attempts,
        next_attempt_at=_maybe(row.next_attempt_at),
        progress=row.progress,
        epoch=row.epoch,
        step=row.step,
        total_steps=row.total_steps,
        eta_seconds=row.eta_seconds,
        last_progress_at=_maybe(row.last_progress_at),
        metrics=row.metrics,
        result_model=row.result_model,
        result_version=row.result_version,
        error=row.error,
        error_code=row.error_code,
        cancel_requested=row.cancel_requested,
        owner=row.owner,
        lease_expires_at=_maybe(row.lease_expires_at),
        worker_pid=row.worker_pid,
        engine=row.engine,
        requested_engine=row.requested_engine,
        spec=row.spec,
        inputs=row.inputs,
    )


def _event(row: Row[Any]) -> RunEvent:
    return RunEvent(id=row.id, run_id=row.run_id, kind=row.kind, at=_aware(row.at), data=row.data)


class RunQueries(SqlStoreBase):
    # -- pipelines -----------------------------------------------------------

    def save_pipeline(self, draft: PipelineDraft, audit: AuditDraft) -> Pipeline:
        """Create the pipeline, or store its next version when the name exists."""
        now = _now()
        values = {
            "type": draft.type,
            "trainer": draft.trainer,
            "priority": draft.priority.value,
            "spec": draft.spec,
            "script_digest": draft.script_digest,
            "updated_by": draft.created_by,
            "updated_at": now,
        }
        with self._write(audit) as conn:
            found = conn.execute(
                select(pipelines.c.version).where(pipelines.c.name == draft.name)
            ).scalar()
            if draft.replaces is not None and (found or 0) != draft.replaces:
                raise Conflict(
                    f"pipeline {draft.name!r} changed while it was being saved; try again",
                    {"pipeline": draft.name, "version": found or 0},
                )
            if found is None:
                conn.execute(
                    insert(pipelines).values(
                        name=draft.name,
                        version=1,
                        created_by=draft.created_by,
                        created_at=now,
                        **values,
                    )
                )
            else:
                conn.execute(
                    update(pipelines)
                    .where(pipelines.c.name == draft.name)
                    .values(version=found + 1, **values)
                )
            audit.details["version"] = (found or 0) + 1
            row = conn.execute(select(pipelines).where(pipelines.c.name == draft.name)).one()
            return _pipeline(row)

    def get_pipeline(self, name: str) -> Pipeline:
        with self._read() as conn:
            row = conn.execute(select(pipelines).where(pipelines.c.name == name)).first()
        if row is None:
            raise NotFound(f"pipeline {name!r} does not exist", {"pipeline": name})
        return _pipeline(row)

    def list_pipelines(self) -> list[Pipeline]:
        with self._read() as conn:
            rows = conn.execute(select(pipelines).order_by(pipelines.c.name)).all()
        return [_pipeline(row) for row in rows]

    def pipeline_digests(self) -> set[str]:
        with self._read() as conn:
            found = conn.execute(
                select(pipelines.c.script_digest).where(pipelines.c.script_digest.is_not(None))
            ).scalars()
            return set(found) | set(
                conn.execute(select(run_checkpoints.c.digest).distinct()).scalars()
            )

    # -- runs ----------------------------------------------------------------

    def create_run(self, draft: RunDraft, audit: AuditDraft) -> Run:
        now = _now()
        with self._write(audit) as conn:
            run_id = conn.execute(
                insert(runs)
                .values(
                    pipeline=draft.pipeline,
                    pipeline_version=draft.pipeline_version,
                    status=RunStatus.QUEUED.value,
                    priority=draft.priority.value,
                    resources=draft.resources.model_dump(),
                    created_by=draft.created_by,
                    created_at=now,
                    queued_at=now,
                    attempts=0,
                    max_attempts=draft.max_attempts,
                    progress=0.0,
                    step=0,
                    metrics={},
                    result_model=draft.result_model,
                    cancel_requested=False,
                    spec=draft.spec,
                    inputs=draft.inputs,
                    requested_engine=draft.requested_engine,
                )
                .returning(runs.c.id)
            ).scalar_one()
            audit.details["run"] = run_id
            self._event(conn, run_id, "status", {"status": RunStatus.QUEUED.value}, now)
            return _run(conn.execute(select(runs).where(runs.c.id == run_id)).one())

    def get_run(self, run_id: int) -> Run:
        with self._read() as conn:
            row = conn.execute(select(runs).where(runs.c.id == run_id)).first()
        if row is None:
            raise NotFound(f"run {run_id} does not exist", {"run": run_id})
        return _run(row)

    def list_runs(
        self,
        statuses: Iterable[RunStatus] | None = None,
        pipeline: str | None = None,
        limit: int | None = None,
    ) -> list[Run]:
        query = select(runs).order_by(runs.c.id.desc())
        if statuses is not None:
            query = query.where(runs.c.status.in_([s.value for s in statuses]))
        if pipeline is not None:
            query = query.where(runs.c.pipeline == pipeline)
        if limit is not None:
            query = query.limit(limit)
        with self._read() as conn:
            return [_run(row) for row in conn.execute(query).all()]

    def page_runs(
        self,
        statuses: Iterable[RunStatus] | None = None,
        pipeline: str | None = None,
        offset: int = 0,
        limit: int = 50,
    ) -> tuple[list[Run], int]:
        where: list[ColumnElement[bool]] = []
        if statuses is not None:
            where.append(runs.c.status.in_([s.value for s in statuses]))
        if pipeline is not None:
            where.append(runs.c.pipeline == pipeline)
        query = select(runs).where(*where).order_by(runs.c.id.desc()).offset(offset).limit(limit)
        with self._read() as conn:
            total = conn.execute(select(func.count()).select_from(runs).where(*where)).scalar_one()
            return [_run(row) for row in conn.execute(query).all()], total

    def pipeline_run_summaries(self) -> dict[str, tuple[int, RunStatus]]:
        counted = select(
            runs.c.pipeline, func.count().label("runs"), func.max(runs.c.id).label("newest")
        ).group_by(runs.c.pipeline)
        with self._read() as conn:
            found = {row.pipeline: (row.runs, row.newest) for row in conn.execute(counted).all()}
            newest = [n for _, n in found.values()]
            status = dict(
                conn.execute(select(runs.c.id, runs.c.status).where(runs.c.id.in_(newest))).all()
            )
        return {name: (count, RunStatus(status[n])) for name, (count, n) in found.items()}

    def queued_runs(self) -> list[QueuedRun]:
        columns = [
            runs.c.id,
            runs.c.priority,
            runs.c.resources,
            runs.c.attempts,
            runs.c.created_at,
            runs.c.queued_at,
            runs.c.started_at,
            runs.c.requested_engine,
        ]
        query = select(*columns).where(runs.c.status == RunStatus.QUEUED.value)
        with self._read() as conn:
            rows = conn.execute(query).all()
        return [
            QueuedRun.model_construct(
                id=row.id,
                priority=Priority(row.priority),
                resources=RunResources.model_construct(**row.resources),
                attempts=row.attempts,
                created_at=_aware(row.created_at),
                queued_at=_maybe(row.queued_at),
                started_at=_maybe(row.started_at),
                requested_engine=row.requested_engine,
            )
            for row in rows
        ]

    def move_run(
        self,
        run_id: int,
        expected: Sequence[RunStatus],
        audit: AuditDraft | None = None,
        event: dict[str, Any] | None = None,
        held_by: str | None = None,
        **values: Any,
    ) -> Run:
        """Update a run only while its status is one of `expected` (a compare-and-set).

        The scheduler claims a queued run this way, so two schedulers over one
        database never start the same run. With `held_by`, the run must also still
        be held by that owner: a scheduler whose lease was taken over cannot end or
        requeue the run its successor now runs. Raises IllegalTransition when the
        run has moved on meanwhile.
        """
        if "status" in values and isinstance(values["status"], RunStatus):
            values["status"] = values["status"].value
        statement = (
            update(runs)
            .where(runs.c.id == run_id, runs.c.status.in_([s.value for s in expected]))
            .values(**values)
        )
        if held_by is not None:
            statement = statement.where(runs.c.owner == held_by)
        with self._write(audit) if audit else self._write_plain() as conn:
            if conn.execute(statement).rowcount != 1:
                row = conn.execute(
                    select(runs.c.status, runs.c.owner).where(runs.c.id == run_id)
                ).first()
                if row is None:
                    raise NotFound(f"run {run_id} does not exist", {"run": run_id})
                if held_by is not None and row.owner != held_by:
                    raise IllegalTransition(
                        f"run {run_id} is no longer held by {held_by}",
                        {"run": run_id, "status": row.status, "owner": row.owner},
                    )
                raise IllegalTransition(
                    f"run {run_id} is {row.status}, not {' or '.join(expected)}",
                    {"run": run_id, "status": row.status},
                )
            if event is not None:
                self._event(conn, run_id, "status", event, _now())
            return _run(conn.execute(select(runs).where(runs.c.id == run_id)).one())

    def renew_leases(self, owner: str, until: datetime) -> set[int]:
        """Extend `owner`'s lease on every running or finishing run it holds; the ids it
        still holds."""
        held = (runs.c.owner == owner, runs.c.status.in_(HELD_STATUSES))
        with self._write_plain() as conn:
            conn.execute(update(runs).where(*held).values(lease_expires_at=until))
            return set(conn.execute(select(runs.c.id).where(*held)).scalars())

    def requeue_expired(self, now: datetime, reason: str) -> list[int]:
        """Queue again every running run whose lease ran out before `now`; their ids."""
        requeued = {
            "status": RunStatus.QUEUED.value,
            "queued_at": now,
            "owner": None,
            "lease_expires_at": None,
            "worker_pid": None,
        }
        with self._write_plain() as conn:
            taken = self._take_expired(conn, RunStatus.RUNNING, now, requeued)
            for run_id in taken:
                event = {"status": RunStatus.QUEUED.value, "reason": reason}
                self._event(conn, run_id, "status", event, now)
        return taken

    def claim_expired_finishing(self, owner: str, now: datetime, until: datetime) -> list[int]:
        """Take over every finishing run whose lease ran out before `now`; their ids."""
        with self._write_plain() as conn:
            claimed = {"owner": owner, "lease_expires_at": until}
            return self._take_expired(conn, RunStatus.FINISHING, now, claimed)

    @staticmethod
    def _take_expired(
        conn: Connection, status: RunStatus, now: datetime, values: dict[str, Any]
    ) -> list[int]:
        """Set `values` on each `status` run whose lease ran out before `now`; their ids.

        Each run is taken with a compare-and-set on its status, owner and expired
        lease, so of several servers sweeping at once exactly one takes it, and a
        lease renewed meanwhile keeps its run.
        """
        expired = (
            runs.c.status == status.value,
            or_(runs.c.lease_expires_at.is_(None), runs.c.lease_expires_at < now),
        )
        taken = []
        for row in conn.execute(select(runs.c.id, runs.c.owner).where(*expired)).all():
            same_owner = runs.c.owner.is_(None) if row.owner is None else runs.c.owner == row.owner
            statement = update(runs).where(runs.c.id == row.id, same_owner, *expired)
            if conn.execute(statement.values(**values)).rowcount == 1:
                taken.append(row.id)
        return taken

    def record_progress(
        self,
        run_id: int,
        values: dict[str, Any],
        points: Sequence[MetricPoint] = (),
        events: Sequence[tuple[str, dict[str, Any]]] = (),
    ) -> None:
        """One transaction for what a scheduler tick learned about a running run."""
        self.record_progress_batch([Progress(run_id, values, points, events)])

    def record_progress_batch(self, batch: Sequence[Progress]) -> None:
        """Several runs' progress in one transaction: a tick writes once, not once per run."""
        now = _now()
        with self._write_plain() as conn:
            for item in batch:
                self._progress(conn, now, *item)

    def _progress(
        self,
        conn: Connection,
        now: datetime,
        run_id: int,
        values: dict[str, Any],
        points: Sequence[MetricPoint],
        events: Sequence[tuple[str, dict[str, Any]]],
    ) -> None:
        if values:
            conn.execute(update(runs).where(runs.c.id == run_id).values(**values))
        if points:
            conn.execute(
                insert(run_metrics),
                [
                    {"run_id": run_id, "name": p.name, "step": p.step, "value": p.value, "at": p.at}
                    for p in points
                ],
            )
        for kind, data in events:
            self._event(conn, run_id, kind, data, now)

    def _event(
        self, conn: Connection, run_id: int, kind: str, data: dict[str, Any], at: datetime
    ) -> None:
        conn.execute(insert(run_events).values(run_id=run_id, kind=kind, at=at, data=data))

    def run_events(self, run_id: int, after: int = 0, limit: int = 1000) -> list[RunEvent]:
        query = (
            select(run_events)
            .where(run_events.c.run_id == run_id, run_events.c.id > after)
            .order_by(run_events.c.id)
            .limit(limit)
        )
        with self._read() as conn:
            return [_event(row) for row in conn.execute(query).all()]

    def last_run_event_id(self, run_id: int) -> int:
        query = select(func.max(run_events.c.id)).where(run_events.c.run_id == run_id)
        with self._read() as conn:
            return conn.execute(query).scalar_one() or 0

    def metric_points(self, run_id: int, name: str | None = None) -> list[MetricPoint]:
        query = select(run_metrics).where(run_metrics.c.run_id == run_id)
        if name is not None:
            query = query.where(run_metrics.c.name == name)
        query = query.order_by(run_metrics.c.id)
        with self._read() as conn:
            return [
                MetricPoint(
                    name=row.name,
                    step=row.step,
                    value=row.value if row.value is not None else float("nan"),
                    at=_aware(row.at),
                )
                for row in conn.execute(query).all()
            ]

    def metric_values(self, run_ids: Sequence[int], name: str) -> dict[int, list[float]]:
        found: dict[int, list[float]] = {}
        if not run_ids:
            return found
        query = (
            select(run_metrics.c.run_id, run_metrics.c.value)
            .where(run_metrics.c.run_id.in_(list(run_ids)), run_metrics.c.name == name)
            .order_by(run_metrics.c.id)
        )
        with self._read() as conn:
            for run_id, value in conn.execute(query).all():
                found.setdefault(run_id, []).append(value if value is not None else float("nan"))
        return found

    # -- checkpoints -----------------------------------------------------------

    def add_checkpoint(self, checkpoint: Checkpoint) -> None:
        try:
            with self._write_plain() as conn:
                conn.execute(
                    delete(run_checkpoints).where(
                        run_checkpoints.c.run_id == checkpoint.run_id,
                        run_checkpoints.c.step == checkpoint.step,
                        run_checkpoints.c.best == checkpoint.best,
                    )
                )
                conn.execute(insert(run_checkpoints).values(**checkpoint.model_dump()))
                self._event(
                    conn,
                    checkpoint.run_id,
                    "checkpoint",
                    {"step": checkpoint.step, "best": checkpoint.best, "digest": checkpoint.digest},
                    checkpoint.created_at,
                )
        except sa_exc.IntegrityError as exc:
            raise Conflict(f"cannot record checkpoint of run {checkpoint.run_id}") from exc

    def list_checkpoints(self, run_id: int) -> list[Checkpoint]:
        query = (
            select(run_checkpoints)
            .where(run_checkpoints.c.run_id == run_id)
            .order_by(run_checkpoints.c.step)
        )
        with self._read() as conn:
            return [
                Checkpoint(
                    run_id=row.run_id,
                    step=row.step,
                    digest=row.digest,
                    size=row.size,
                    best=row.best,
                    metric=row.metric,
                    created_at=_aware(row.created_at),
                )
                for row in conn.execute(query).all()
            ]

    def drop_checkpoints(self, run_id: int, keep: Iterable[tuple[int, bool]]) -> list[str]:
        """Forget every checkpoint of the run but `keep` ((step, best) pairs); their digests."""
        kept = set(keep)
        with self._write_plain() as conn:
            rows = conn.execute(
                select(run_checkpoints).where(run_checkpoints.c.run_id == run_id)
            ).all()
            gone = [row for row in rows if (row.step, row.best) not in kept]
            for row in gone:
                conn.execute(
                    delete(run_checkpoints).where(
                        run_checkpoints.c.run_id == run_id,
                        run_checkpoints.c.step == row.step,
                        run_checkpoints.c.best == row.best,
                    )
                )
        return [row.digest for row in gone]
