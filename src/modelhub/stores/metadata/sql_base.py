"""What every SQL store part shares: the engine, transactions and the audit chain."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any, TypeVar

from sqlalchemy import (
    ColumnElement,
    Connection,
    Executable,
    Row,
    Text,
    bindparam,
    cast,
    func,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy import exc as sa_exc

from modelhub.domain import context
from modelhub.domain.queries import ModelQuery, VersionQuery
from modelhub.domain.records import AuditEvent, AuditVerdict
from modelhub.errors import IntegrityError, Unavailable
from modelhub.stores.metadata.audit_chain import (
    StoredEvent,
    StoredHead,
    check_chain,
    event_hash,
    utc_naive,
)
from modelhub.stores.metadata.base import AuditDraft, AuditQuery
from modelhub.stores.metadata.commit_group import CommitGroup
from modelhub.stores.metadata.engine import make_engine
from modelhub.stores.metadata.migrate import upgrade
from modelhub.stores.metadata.tables import audit_events, audit_head, model_tags, models

LOCK_AUDIT_HEAD = (
    select(audit_head.c.last_id, audit_head.c.last_hash)
    .where(audit_head.c.id == 1)
    .with_for_update()
)
INSERT_AUDIT = insert(audit_events)
MOVE_AUDIT_HEAD = (
    update(audit_head)
    .where(audit_head.c.id == 1)
    .values(last_id=bindparam("last_id"), last_hash=bindparam("last_hash"))
)


T = TypeVar("T")


def _now() -> datetime:
    return datetime.now(UTC)


def _aware(at: datetime) -> datetime:
    return at if at.tzinfo else at.replace(tzinfo=UTC)


def _escape_like(text: str) -> str:
    """`text` matched literally by LIKE ... ESCAPE '\\'."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def listing_params(query: VersionQuery | ModelQuery) -> dict[str, Any]:
    """The bound parameters of a listing's statements (see each part's statement cache)."""
    params: dict[str, Any] = {
        "type": query.type,
        "framework": query.framework,
        "stage": query.stage,
        "pattern": f"%{_escape_like(query.text.lower())}%" if query.text else None,
        "limit": query.limit,
        "offset": query.offset,
    }
    for i, (key, value) in enumerate(query.tags.items()):
        params[f"tag_key_{i}"], params[f"tag_value_{i}"] = key, value
    return params


def model_text_and_tags(text: bool, tags: int) -> list[ColumnElement[bool]]:
    """A listing's conditions on the model row: its name or description matches the bound
    `pattern` (when `text`), and it carries each of `tags` bound key=value pairs."""
    conditions: list[ColumnElement[bool]] = []
    if text:
        pattern: Any = bindparam("pattern")
        conditions.append(
            or_(
                func.lower(models.c.name).like(pattern, escape="\\"),
                func.lower(models.c.description).like(pattern, escape="\\"),
            )
        )
    for i in range(tags):
        conditions.append(
            select(model_tags.c.model_id)
            .where(
                model_tags.c.model_id == models.c.id,
                model_tags.c.key == bindparam(f"tag_key_{i}"),
                model_tags.c.value == bindparam(f"tag_value_{i}"),
            )
            .exists()
        )
    return conditions


def read_page(
    conn: Connection,
    rows_statement: Executable,
    count_statement: Executable,
    params: dict[str, Any],
    query: VersionQuery | ModelQuery,
) -> tuple[Sequence[Row[Any]], int]:
    """One page of rows and the total; the count is skipped when the page ran out."""
    rows = conn.execute(rows_statement, params).all()
    if len(rows) < query.limit and (rows or query.offset == 0):
        return rows, query.offset + len(rows)
    return rows, conn.execute(count_statement, params).scalar_one()


class SqlStoreBase:
    """Engine, transactions and the hash-chained audit log; the parts build on it."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = make_engine(url)
        self.commit_group = CommitGroup(self.engine)
        try:
            upgrade(self.engine)
        except sa_exc.OperationalError as exc:
            reason = " ".join(str(exc.orig).split())
            raise Unavailable(f"cannot open the metadata database: {reason}") from exc

    def close(self) -> None:
        self.engine.dispose()

    def ping(self) -> None:
        try:
            with self._read() as conn:
                conn.execute(select(1))
        except sa_exc.OperationalError as exc:
            raise Unavailable(f"database does not answer: {exc.orig}") from exc

    # -- transactions -------------------------------------------------------

    @contextmanager
    def _read(self) -> Iterator[Connection]:
        with self.engine.connect() as conn, conn.begin():
            yield conn

    @contextmanager
    def _write(self, audit: AuditDraft) -> Iterator[Connection]:
        """A write transaction that appends `audit` to the chain if it commits."""
        with (
            self.engine.connect().execution_options(sqlite_write=True) as conn,
            conn.begin(),
        ):
            head = conn.execute(LOCK_AUDIT_HEAD).one_or_none()
            if head is None:
                raise IntegrityError(
                    "the audit log's head row is missing, so no change can be recorded: "
                    "run `modelhub audit verify` and restore the database"
                )
            yield conn
            self._append_audit(conn, head.last_id, head.last_hash, audit)

    def _durable_write(self, audit: AuditDraft, work: Callable[[Connection], T]) -> T:
        """Run `work` and append `audit` in a transaction durable when this returns,
        its commit (and fsync) shared with concurrent callers (commit_group)."""

        def audited(conn: Connection) -> T:
            head = conn.execute(LOCK_AUDIT_HEAD).one_or_none()
            if head is None:
                raise IntegrityError(
                    "the audit log's head row is missing, so no change can be recorded: "
                    "run `modelhub audit verify` and restore the database"
                )
            result = work(conn)
            self._append_audit(conn, head.last_id, head.last_hash, audit)
            return result

        return self.commit_group.run(audited)

    @contextmanager
    def _write_plain(self) -> Iterator[Connection]:
        """A write transaction without an audit event, for telemetry (runs, deployments)."""
        with (
            self.engine.connect().execution_options(sqlite_write=True) as conn,
            conn.begin(),
        ):
            yield conn

    def _append_audit(
        self, conn: Connection, last_id: int, prev_hash: str, audit: AuditDraft
    ) -> None:
        # The head row is locked, so the next id is known and the hash can be
        # written with the row instead of patched in afterwards.
        event_id = last_id + 1
        at = utc_naive(_now())
        details = json.loads(json.dumps(audit.details, default=str))
        request_id = context.request_id.get()
        digest = event_hash(
            prev_hash, event_id, audit.actor, audit.action, audit.target, at, details, request_id
        )
        conn.execute(
            INSERT_AUDIT,
            {
                "id": event_id,
                "actor": audit.actor,
                "action": audit.action,
                "target": audit.target,
                "at": at,
                "details": details,
                "request_id": request_id,
                "prev_hash": prev_hash,
                "hash": digest,
            },
        )
        conn.execute(MOVE_AUDIT_HEAD, {"last_id": event_id, "last_hash": digest})

    def record_event(self, audit: AuditDraft) -> None:
        with self._write(audit):
            pass

    # -- audit --------------------------------------------------------------

    def list_audit(self, query: AuditQuery) -> list[AuditEvent]:
        stmt = (
            select(audit_events)
            .where(*_audit_filters(query))
            .order_by(audit_events.c.id.desc())
            .limit(query.limit)
            .offset(query.offset)
        )
        with self._read() as conn:
            try:
                rows = conn.execute(stmt).all()
            except ValueError:  # a time or details edited into something that does not parse
                raise IntegrityError(
                    "the audit log holds an event that does not parse: "
                    "`modelhub audit verify` names it"
                ) from None
            return [
                AuditEvent(
                    id=row.id,
                    actor=row.actor,
                    action=row.action,
                    target=row.target,
                    at=_aware(row.at),
                    details=row.details,
                    request_id=row.request_id,
                )
                for row in rows
            ]

    def count_audit(self, query: AuditQuery) -> int:
        stmt = select(func.count()).select_from(audit_events).where(*_audit_filters(query))
        with self._read() as conn:
            return int(conn.execute(stmt).scalar_one())

    def verify_audit(self, expect_head: str | None = None) -> AuditVerdict:
        # Time and details are read as text: a value that no longer parses is a
        # finding to report, not an exception halfway through the walk.
        columns = audit_events.c
        stmt = select(
            columns.id,
            columns.actor,
            columns.action,
            columns.target,
            cast(columns.at, Text),
            cast(columns.details, Text),
            columns.request_id,
            columns.prev_hash,
            columns.hash,
        ).order_by(columns.id)
        with self._read() as conn:
            heads = [StoredHead(*row) for row in conn.execute(select(audit_head))]
            events = (StoredEvent(*row) for row in conn.execute(stmt))
            return check_chain(events, heads, expect_head)


def _audit_filters(query: AuditQuery) -> list[ColumnElement[bool]]:
    columns = audit_events.c
    found: list[ColumnElement[bool]] = []
    if query.actor:
        found.append(columns.actor == query.actor)
    if query.action:
        found.append(columns.action == query.action)
    if query.target:
        found.append(columns.target == query.target)
    if query.since:
        found.append(columns.at >= utc_naive(query.since))
    return found
