"""Deployments and the usage they serve, in SQL.

What a person does to a deployment (create, update, roll back, stop) is audited.
What the serving supervisor reports (replica health, a status it observed, usage
counts) is telemetry: it goes through `_write_plain`, as run telemetry does.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from itertools import zip_longest
from typing import Any

from pydantic import ValidationError
from sqlalchemy import Connection, Row, delete, insert, select, update
from sqlalchemy import exc as sa_exc

from modelhub.domain.deployments import (
    LATENCY_BOUNDS_MS,
    Autoscale,
    Deployment,
    DeploymentStatus,
    Environment,
    LoadBalancing,
    ReplicaHealth,
    Rollout,
    TrafficShare,
    UsageRecord,
    check_deployment_move,
)
from modelhub.domain.predictions import PredictionLogPolicy
from modelhub.errors import Conflict, InvalidInput, NotFound
from modelhub.stores.metadata.base import AuditDraft, UsageDelta
from modelhub.stores.metadata.sql_base import SqlStoreBase, _aware, _now
from modelhub.stores.metadata.tables import deployment_usage, deployments

REPLACEABLE = frozenset({DeploymentStatus.STOPPED.value, DeploymentStatus.FAILED.value})
FIXED_FIELDS = frozenset({"name", "created_by", "created_at", "updated_at"})
CHANGEABLE_FIELDS = frozenset(Deployment.model_fields) - FIXED_FIELDS
BUCKETS = len(LATENCY_BOUNDS_MS) + 1


def _deployment(row: Row[Any]) -> Deployment:
    return Deployment(
        name=row.name,
        model=row.model,
        environment=Environment(row.environment),
        traffic=[TrafficShare(**share) for share in row.traffic],
        previous_version=row.previous_version,
        rollout=Rollout(**row.rollout) if row.rollout is not None else None,
        replicas=row.replicas,
        autoscale=Autoscale(**row.autoscale) if row.autoscale is not None else None,
        load_balancing=LoadBalancing(row.load_balancing),
        resources=row.resources,
        status=DeploymentStatus(row.status),
        error=row.error,
        endpoint=row.endpoint,
        health=[ReplicaHealth(**replica) for replica in row.health],
        approval_override=row.approval_override,
        prediction_log=(
            PredictionLogPolicy(**row.prediction_log) if row.prediction_log is not None else None
        ),
        host=row.host,
        pool=row.pool,
        created_by=row.created_by,
        created_at=_aware(row.created_at),
        updated_at=_aware(row.updated_at),
    )


def _columns(deployment: Deployment) -> dict[str, Any]:
    # JSON mode turns enums into their values and nested records into dicts;
    # the two times stay datetimes for the DateTime columns.
    values = deployment.model_dump(mode="json", exclude={"created_at", "updated_at"})
    return {**values, "created_at": deployment.created_at, "updated_at": deployment.updated_at}


def _changed(current: Deployment, changes: dict[str, Any], now: datetime) -> Deployment:
    try:
        return Deployment.model_validate({**dict(current), **changes, "updated_at": now})
    except ValidationError as exc:
        error = exc.errors()[0]
        field = ".".join(str(part) for part in error["loc"])
        raise InvalidInput(
            f"deployment {current.name}: {field}: {error['msg']}",
            {"deployment": current.name, "field": field},
        ) from None


def _usage(row: Row[Any]) -> UsageRecord:
    return UsageRecord(
        deployment=row.deployment,
        version=row.version,
        requests=row.requests,
        errors=row.errors,
        rows=row.rows,
        latency_ms_sum=row.latency_ms_sum,
        latency_buckets=row.latency_buckets,
        active_callers=row.active_callers,
        last_used=_aware(row.last_used) if row.last_used is not None else None,
    )


def _later(stored: datetime | None, new: datetime | None) -> datetime | None:
    if stored is None or new is None:
        return new or stored
    return max(_aware(stored), _aware(new))


def _plus(totals: UsageRecord, delta: UsageDelta) -> UsageRecord:
    buckets = [
        old + new
        for old, new in zip_longest(
            totals.latency_buckets or [0] * BUCKETS, delta.latency_buckets, fillvalue=0
        )
    ]
    return totals.model_copy(
        update={
            "requests": totals.requests + delta.requests,
            "errors": totals.errors + delta.errors,
            "rows": totals.rows + delta.rows,
            "latency_ms_sum": totals.latency_ms_sum + delta.latency_ms_sum,
            "latency_buckets": buckets,
            "active_callers": delta.active_callers,
            "last_used": _later(totals.last_used, delta.last_used),
        }
    )


def _check_buckets(delta: UsageDelta) -> None:
    if delta.latency_buckets and len(delta.latency_buckets) != BUCKETS:
        raise InvalidInput(
            f"usage of deployment {delta.deployment} version {delta.version} has "
            f"{len(delta.latency_buckets)} latency buckets, not {BUCKETS}",
            {"deployment": delta.deployment, "version": delta.version},
        )


class DeploymentQueries(SqlStoreBase):
    def create_deployment(self, deployment: Deployment, audit: AuditDraft) -> Deployment:
        name = deployment.name
        try:
            with self._write(audit) as conn:
                old = conn.execute(
                    select(deployments.c.id, deployments.c.status)
                    .where(deployments.c.name == name)
                    .with_for_update()
                ).first()
                if old is not None:
                    if old.status not in REPLACEABLE:
                        raise Conflict(
                            f"deployment {name!r} is {old.status}: stop it first, "
                            "or choose another name",
                            {"deployment": name, "status": old.status},
                        )
                    conn.execute(
                        delete(deployment_usage).where(deployment_usage.c.deployment == name)
                    )
                    conn.execute(delete(deployments).where(deployments.c.id == old.id))
                    audit.details["replaced"] = old.status
                conn.execute(insert(deployments).values(**_columns(deployment)))
                return self._deployment_row(conn, name)
        except sa_exc.IntegrityError as exc:
            # Two creates of one new name on PostgreSQL: the second finds the row only now.
            raise Conflict(f"deployment {name!r} already exists", {"deployment": name}) from exc

    def get_deployment(self, name: str) -> Deployment:
        with self._read() as conn:
            return self._deployment_row(conn, name)

    def list_deployments(
        self,
        environment: Environment | None = None,
        model: str | None = None,
        include_stopped: bool = False,
    ) -> list[Deployment]:
        query = select(deployments).order_by(deployments.c.name)
        if environment is not None:
            query = query.where(deployments.c.environment == Environment(environment).value)
        if model is not None:
            query = query.where(deployments.c.model == model)
        if not include_stopped:
            query = query.where(deployments.c.status != DeploymentStatus.STOPPED.value)
        with self._read() as conn:
            return [_deployment(row) for row in conn.execute(query).all()]

    def update_deployment(
        self,
        name: str,
        changes: dict[str, Any],
        expected_status: DeploymentStatus | None = None,
        audit: AuditDraft | None = None,
    ) -> Deployment:
        refused = sorted(set(changes) - CHANGEABLE_FIELDS)
        if refused:
            raise InvalidInput(
                f"cannot change {', '.join(refused)} of deployment {name}",
                {"deployment": name, "fields": refused},
            )
        with self._write(audit) if audit else self._write_plain() as conn:
            current = self._deployment_row(conn, name, lock=True)
            if expected_status is not None and current.status != expected_status:
                raise Conflict(
                    f"deployment {name} is {current.status.value}, not {expected_status.value}",
                    {"deployment": name, "status": current.status.value},
                )
            updated = _changed(current, changes, _now())
            if "status" in changes:
                check_deployment_move(name, current.status, updated.status)
            values = {
                column: value
                for column, value in _columns(updated).items()
                if column in changes or column == "updated_at"
            }
            conn.execute(update(deployments).where(deployments.c.name == name).values(**values))
            return self._deployment_row(conn, name)

    def _deployment_row(self, conn: Connection, name: str, lock: bool = False) -> Deployment:
        query = select(deployments).where(deployments.c.name == name)
        row = conn.execute(query.with_for_update() if lock else query).first()
        if row is None:
            raise NotFound(f"deployment {name!r} does not exist", {"deployment": name})
        return _deployment(row)

    # -- usage -----------------------------------------------------------------

    def add_usage(self, deltas: Sequence[UsageDelta]) -> None:
        for delta in deltas:
            _check_buckets(delta)
        if not deltas:
            return
        names = {delta.deployment for delta in deltas}
        with self._write_plain() as conn:
            known = conn.execute(
                select(deployments.c.name).where(deployments.c.name.in_(names))
            ).scalars()
            missing = sorted(names - set(known))
            if missing:
                raise NotFound(
                    f"deployment {missing[0]!r} does not exist", {"deployment": missing[0]}
                )
            stored = {
                (row.deployment, row.version): _usage(row)
                for row in conn.execute(
                    select(deployment_usage)
                    .where(deployment_usage.c.deployment.in_(names))
                    .with_for_update()
                )
            }
            totals: dict[tuple[str, int], UsageRecord] = {}
            for delta in deltas:
                key = (delta.deployment, delta.version)
                before = totals.get(key) or stored.get(key)
                totals[key] = _plus(before or UsageRecord(deployment=key[0], version=key[1]), delta)
            for key, usage in totals.items():
                values = usage.model_dump()
                if key in stored:
                    conn.execute(
                        update(deployment_usage)
                        .where(
                            deployment_usage.c.deployment == key[0],
                            deployment_usage.c.version == key[1],
                        )
                        .values(**values)
                    )
                else:
                    conn.execute(insert(deployment_usage).values(**values))

    def deployment_usage(self, name: str) -> list[UsageRecord]:
        with self._read() as conn:
            self._deployment_row(conn, name)
            rows = conn.execute(
                select(deployment_usage)
                .where(deployment_usage.c.deployment == name)
                .order_by(deployment_usage.c.version)
            ).all()
        return [_usage(row) for row in rows]
