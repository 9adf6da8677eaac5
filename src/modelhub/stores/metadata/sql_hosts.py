"""The servers sharing this database, and the compare-and-set that places deployments."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Row, func, insert, or_, select, update

from modelhub.domain.deployments import LIVE
from modelhub.domain.hosts import Host
from modelhub.errors import Conflict
from modelhub.stores.metadata.sql_base import SqlStoreBase, _aware
from modelhub.stores.metadata.tables import deployments, hosts


def _host(row: Row[Any], placed: int = 0) -> Host:
    return Host(
        name=row.name,
        address=row.address,
        port=row.port,
        pid=row.pid,
        cpus=row.cpus,
        memory_bytes=row.memory_bytes,
        started_at=_aware(row.started_at),
        heartbeat_at=_aware(row.heartbeat_at),
        stopped_at=_aware(row.stopped_at) if row.stopped_at is not None else None,
        deployments=placed,
    )


class HostQueries(SqlStoreBase):
    def register_host(self, host: Host, exclusive_after: datetime | None = None) -> Host:
        values = host.model_dump(exclude={"alive", "deployments"})
        with self._write_plain() as conn:
            if exclusive_after is not None:
                other = conn.execute(
                    select(hosts.c.name, hosts.c.pid).where(
                        or_(hosts.c.name != host.name, hosts.c.pid != host.pid),
                        hosts.c.stopped_at.is_(None),
                        hosts.c.heartbeat_at >= exclusive_after,
                    )
                ).first()
                if other is not None:
                    raise Conflict(
                        f"another modelhub server ({other.name}, pid {other.pid}) is running "
                        "on this SQLite database; SQLite serves one server only: stop it, or "
                        "use PostgreSQL (MODELHUB_DATABASE_URL) and S3 (MODELHUB_ARTIFACTS) "
                        "for several servers",
                        {"host": other.name},
                    )
            updated = conn.execute(
                update(hosts).where(hosts.c.name == host.name).values(**values)
            ).rowcount
            if not updated:
                conn.execute(insert(hosts).values(**values))
        return host

    def host_heartbeat(self, name: str, at: datetime) -> bool:
        with self._write_plain() as conn:
            statement = (
                update(hosts)
                .where(hosts.c.name == name, hosts.c.stopped_at.is_(None))
                .values(heartbeat_at=at)
            )
            return bool(conn.execute(statement).rowcount)

    def host_stopped(self, name: str, at: datetime) -> None:
        with self._write_plain() as conn:
            conn.execute(update(hosts).where(hosts.c.name == name).values(stopped_at=at))

    def list_hosts(self) -> list[Host]:
        placed = (
            select(deployments.c.host, func.count().label("n"))
            .where(deployments.c.status.in_([s.value for s in LIVE]))
            .group_by(deployments.c.host)
        )
        with self._read() as conn:
            counts = {row.host: row.n for row in conn.execute(placed)}
            rows = conn.execute(select(hosts).order_by(hosts.c.name)).all()
        return [_host(row, counts.get(row.name, 0)) for row in rows]

    def place_deployment(self, name: str, host: str, expected: str | None) -> bool:
        where = deployments.c.host.is_(None) if expected is None else deployments.c.host == expected
        values: dict[str, Any] = {"host": host, "health": []}
        if expected is not None:  # moved: its endpoint's port was the old host's
            values["endpoint"] = None
        with self._write_plain() as conn:
            statement = update(deployments).where(deployments.c.name == name, where)
            return bool(conn.execute(statement.values(**values)).rowcount)
