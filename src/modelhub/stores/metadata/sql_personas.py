"""Personas, their interactions and learning cycles in the SQL store."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, Row, delete, func, insert, select, update

from modelhub.domain.personas import (
    OPEN_CYCLES,
    Cycle,
    CycleStatus,
    Feedback,
    Interaction,
    Persona,
    PersonaCounts,
    PersonaFigures,
    PersonaPolicy,
)
from modelhub.errors import Conflict, NotFound
from modelhub.stores.metadata.base import AuditDraft
from modelhub.stores.metadata.base_personas import InteractionDraft, PersonaDraft
from modelhub.stores.metadata.sql_base import SqlStoreBase, _aware, _now
from modelhub.stores.metadata.tables import persona_cycles, persona_interactions, personas

_CHANGEABLE = frozenset({"policy", "chat_model", "alias", "owner"})


def _persona(row: Row[Any]) -> Persona:
    return Persona(
        name=row.name,
        model=row.model,
        alias=row.alias,
        chat_model=row.chat_model,
        policy=PersonaPolicy.model_validate(row.policy),
        owner=row.owner,
        created_at=_aware(row.created_at),
        updated_at=_aware(row.updated_at),
    )


def _cycle(row: Row[Any]) -> Cycle:
    data = dict(row.record)
    data.update(
        id=row.id,
        number=row.number,
        status=row.status,
        watermark=row.watermark,
        revision=row.revision,
        started_at=_aware(row.started_at),
        finished_at=_aware(row.finished_at) if row.finished_at else None,
    )
    return Cycle.model_validate(data)


def _record(cycle: Cycle) -> dict[str, Any]:
    skip = {"id", "number", "status", "watermark", "revision", "started_at", "finished_at"}
    return cycle.model_dump(mode="json", exclude=skip)


class PersonaQueries(SqlStoreBase):
    def _persona_id(self, conn: Connection, name: str) -> int:
        found = conn.execute(select(personas.c.id).where(personas.c.name == name)).scalar()
        if found is None:
            raise NotFound(f"persona {name!r} does not exist", {"persona": name})
        return int(found)

    def create_persona(self, draft: PersonaDraft, audit: AuditDraft) -> Persona:
        with self._write(audit) as conn:
            taken = conn.execute(select(personas.c.id).where(personas.c.name == draft.name))
            if taken.first() is not None:
                raise Conflict(f"persona {draft.name!r} already exists", {"persona": draft.name})
            now = _now()
            conn.execute(
                insert(personas).values(
                    name=draft.name,
                    model=draft.model,
                    alias=draft.alias,
                    chat_model=draft.chat_model,
                    policy=draft.policy.model_dump(mode="json"),
                    owner=draft.owner,
                    duplicates=0,
                    created_at=now,
                    updated_at=now,
                )
            )
            return _persona(
                conn.execute(select(personas).where(personas.c.name == draft.name)).one()
            )

    def get_persona(self, name: str) -> Persona:
        with self._read() as conn:
            row = conn.execute(select(personas).where(personas.c.name == name)).first()
        if row is None:
            raise NotFound(f"persona {name!r} does not exist", {"persona": name})
        return _persona(row)

    def list_personas(self) -> list[Persona]:
        with self._read() as conn:
            rows = conn.execute(select(personas).order_by(personas.c.name)).all()
        return [_persona(row) for row in rows]

    def update_persona(self, name: str, changes: dict[str, Any], audit: AuditDraft) -> Persona:
        unknown = set(changes) - _CHANGEABLE
        if unknown:
            raise ValueError(f"not changeable: {sorted(unknown)}")
        values = dict(changes)
        if isinstance(values.get("policy"), PersonaPolicy):
            values["policy"] = values["policy"].model_dump(mode="json")
        with self._write(audit) as conn:
            persona_id = self._persona_id(conn, name)
            conn.execute(
                update(personas)
                .where(personas.c.id == persona_id)
                .values(**values, updated_at=_now())
            )
            return _persona(conn.execute(select(personas).where(personas.c.id == persona_id)).one())

    def delete_persona(self, name: str, audit: AuditDraft) -> None:
        with self._write(audit) as conn:
            persona_id = self._persona_id(conn, name)
            conn.execute(delete(persona_cycles).where(persona_cycles.c.persona_id == persona_id))
            conn.execute(
                delete(persona_interactions).where(persona_interactions.c.persona_id == persona_id)
            )
            conn.execute(delete(personas).where(personas.c.id == persona_id))

    def add_interactions(
        self, persona: str, drafts: list[InteractionDraft], audit: AuditDraft
    ) -> tuple[list[int], int]:
        with self._write(audit) as conn:
            persona_id = self._persona_id(conn, persona)
            ids = list({d.id for d in drafts})
            seen: set[str] = set()
            for start in range(0, len(ids), 500):
                seen.update(
                    conn.execute(
                        select(persona_interactions.c.interaction_id).where(
                            persona_interactions.c.persona_id == persona_id,
                            persona_interactions.c.interaction_id.in_(ids[start : start + 500]),
                        )
                    ).scalars()
                )
            now = _now()
            rows = []
            added = []
            for index, draft in enumerate(drafts):
                if draft.id in seen:
                    continue
                seen.add(draft.id)
                added.append(index)
                rows.append(
                    {
                        "persona_id": persona_id,
                        "interaction_id": draft.id,
                        "model": draft.model,
                        "version": draft.version,
                        "request_id": draft.request_id,
                        "message": draft.message,
                        "response": draft.response,
                        "feedback": draft.feedback,
                        "label": draft.label,
                        "held_out": draft.held_out,
                        "scrubbed": draft.scrubbed,
                        "created_at": now,
                    }
                )
            if rows:
                conn.execute(insert(persona_interactions), rows)
            duplicates = len(drafts) - len(rows)
            if duplicates:
                conn.execute(
                    update(personas)
                    .where(personas.c.id == persona_id)
                    .values(duplicates=personas.c.duplicates + duplicates)
                )
            return added, duplicates

    def list_interactions(
        self, persona: str, upto: int | None = None, labelled_only: bool = False
    ) -> list[Interaction]:
        t = persona_interactions
        with self._read() as conn:
            persona_id = self._persona_id(conn, persona)
            query = select(t).where(t.c.persona_id == persona_id)
            if upto is not None:
                query = query.where(t.c.id <= upto)
            if labelled_only:
                query = query.where(t.c.label.is_not(None))
            rows = conn.execute(query.order_by(t.c.id)).all()
        return [
            Interaction(
                seq=row.id,
                id=row.interaction_id,
                persona=persona,
                model=row.model,
                version=row.version,
                request_id=row.request_id,
                message=row.message,
                response=row.response,
                feedback=Feedback.model_validate(row.feedback),
                label=row.label,
                held_out=row.held_out,
                scrubbed=row.scrubbed,
                created_at=_aware(row.created_at),
            )
            for row in rows
        ]

    def interaction_counts(self, persona: str, since: int) -> PersonaCounts:
        t = persona_interactions
        labelled = t.c.label.is_not(None)
        with self._read() as conn:
            persona_id = self._persona_id(conn, persona)
            mine = t.c.persona_id == persona_id

            def count(*where: Any) -> int:
                return int(conn.execute(select(func.count()).where(mine, *where)).scalar() or 0)

            scrubbed = conn.execute(select(func.sum(t.c.scrubbed)).where(mine)).scalar()
            duplicates = conn.execute(
                select(personas.c.duplicates).where(personas.c.id == persona_id)
            ).scalar()
            return PersonaCounts(
                interactions=count(),
                labelled=count(labelled),
                held_out=count(labelled, t.c.held_out.is_(True)),
                new_labelled=count(labelled, t.c.held_out.is_(False), t.c.id > since),
                duplicates=int(duplicates or 0),
                scrubbed=int(scrubbed or 0),
            )

    def create_cycle(self, cycle: Cycle, audit: AuditDraft) -> Cycle:
        c = persona_cycles
        with self._write(audit) as conn:
            persona_id = self._persona_id(conn, cycle.persona)
            open_now = conn.execute(
                select(c.c.number).where(
                    c.c.persona_id == persona_id, c.c.status.in_([s.value for s in OPEN_CYCLES])
                )
            ).first()
            if open_now is not None:
                raise Conflict(
                    f"persona {cycle.persona!r} has cycle {open_now.number} still open",
                    {"persona": cycle.persona, "cycle": open_now.number},
                )
            number = (
                int(
                    conn.execute(
                        select(func.max(c.c.number)).where(c.c.persona_id == persona_id)
                    ).scalar()
                    or 0
                )
                + 1
            )
            result = conn.execute(
                insert(c).values(
                    persona_id=persona_id,
                    number=number,
                    status=cycle.status.value,
                    watermark=cycle.watermark,
                    revision=0,
                    record=_record(cycle),
                    started_at=cycle.started_at,
                    finished_at=cycle.finished_at,
                )
            )
            key = result.inserted_primary_key
            assert key is not None
            cycle_id = int(key[0])
            return _cycle(conn.execute(select(c).where(c.c.id == cycle_id)).one())

    def update_cycle(self, cycle: Cycle, audit: AuditDraft | None = None) -> Cycle:
        c = persona_cycles
        change = (
            update(c)
            .where(c.c.id == cycle.id, c.c.revision == cycle.revision)
            .values(
                status=cycle.status.value,
                record=_record(cycle),
                finished_at=cycle.finished_at,
                revision=cycle.revision + 1,
            )
        )
        with self._write(audit) if audit is not None else self._write_plain() as conn:
            if conn.execute(change).rowcount != 1:
                raise Conflict(
                    f"cycle {cycle.number} of persona {cycle.persona!r} changed meanwhile",
                    {"persona": cycle.persona, "cycle": cycle.number},
                )
            return _cycle(conn.execute(select(c).where(c.c.id == cycle.id)).one())

    def list_cycles(
        self, persona: str | None = None, statuses: frozenset[CycleStatus] | None = None
    ) -> list[Cycle]:
        c = persona_cycles
        with self._read() as conn:
            query = select(c)
            if persona is not None:
                query = query.where(c.c.persona_id == self._persona_id(conn, persona))
            if statuses is not None:
                query = query.where(c.c.status.in_([s.value for s in statuses]))
            rows = conn.execute(query.order_by(c.c.id)).all()
        return [_cycle(row) for row in rows]

    def persona_figures(self) -> PersonaFigures:
        t, c = persona_interactions, persona_cycles
        with self._read() as conn:
            interactions = conn.execute(select(func.count()).select_from(t)).scalar()
            scrubbed = conn.execute(select(func.sum(t.c.scrubbed))).scalar()
            duplicates = conn.execute(select(func.sum(personas.c.duplicates))).scalar()
            cycles = conn.execute(select(c.c.status, func.count()).group_by(c.c.status)).all()
        return PersonaFigures(
            interactions=int(interactions or 0),
            duplicates=int(duplicates or 0),
            scrubbed=int(scrubbed or 0),
            cycles={str(status): int(n) for status, n in cycles},
        )
