"""The personas part of the MetadataStore contract, on SQLite and on PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from modelhub.domain.personas import Cycle, CycleStatus, PersonaPolicy
from modelhub.errors import Conflict, NotFound
from modelhub.stores.metadata.base import AuditDraft, AuditQuery
from modelhub.stores.metadata.base_personas import InteractionDraft, PersonaDraft
from modelhub.stores.metadata.sql import SqlMetadataStore


@pytest.fixture
def store(migrated_metadata_url: str) -> Iterator[SqlMetadataStore]:
    s = SqlMetadataStore(migrated_metadata_url)
    yield s
    s.close()


def audit(action: str = "personas.test") -> AuditDraft:
    return AuditDraft("alice", action, "ada", {})


def interaction(
    id: str, label: str | None = "greeting", held_out: bool = False
) -> InteractionDraft:
    return InteractionDraft(
        id=id,
        model="intents",
        version=1,
        request_id=f"r-{id}",
        message=f"hello {id}",
        response="greeting",
        feedback={"label": label} if label else {"thumbs": "down"},
        label=label,
        held_out=held_out,
        scrubbed=1 if id == "a" else 0,
    )


def cycle(watermark: int) -> Cycle:
    return Cycle(
        id=0,
        persona="ada",
        number=0,
        trigger="manual",
        status=CycleStatus.TRAINING,
        watermark=watermark,
        started_at=datetime.now(UTC),
    )


def test_a_persona_is_stored_once_and_changed(store: SqlMetadataStore) -> None:
    draft = PersonaDraft("ada", "intents", "ada", None, PersonaPolicy(), "alice")
    made = store.create_persona(draft, audit("personas.create"))
    assert (made.name, made.model, made.alias, made.owner) == ("ada", "intents", "ada", "alice")
    with pytest.raises(Conflict, match="already exists"):
        store.create_persona(draft, audit())
    changed = store.update_persona("ada", {"policy": PersonaPolicy(margin=0.1)}, audit())
    assert changed.policy.margin == 0.1
    assert [p.name for p in store.list_personas()] == ["ada"]
    with pytest.raises(NotFound, match="persona 'bob'"):
        store.get_persona("bob")
    assert len(store.list_audit(AuditQuery(action="personas.create"))) == 1


def test_interactions_are_idempotent_by_id_and_counted(store: SqlMetadataStore) -> None:
    store.create_persona(
        PersonaDraft("ada", "intents", "ada", None, PersonaPolicy(), "alice"), audit()
    )
    batch = [
        interaction("a"),
        interaction("b", held_out=True),
        interaction("a"),
        interaction("c", None),
    ]
    assert store.add_interactions("ada", batch, audit()) == ([0, 1, 3], 1)
    assert store.add_interactions("ada", [interaction("b"), interaction("d")], audit()) == ([1], 1)
    counts = store.interaction_counts("ada", since=0)
    assert (counts.interactions, counts.labelled, counts.held_out) == (4, 3, 1)
    assert (counts.new_labelled, counts.duplicates, counts.scrubbed) == (2, 2, 1)
    stored = store.list_interactions("ada")
    assert [i.id for i in stored] == ["a", "b", "c", "d"]
    assert [i.id for i in store.list_interactions("ada", labelled_only=True)] == ["a", "b", "d"]
    assert store.interaction_counts("ada", since=stored[0].seq).new_labelled == 1
    with pytest.raises(NotFound):
        store.add_interactions("bob", [interaction("z")], audit())


def test_one_open_cycle_at_a_time_and_numbered(store: SqlMetadataStore) -> None:
    store.create_persona(
        PersonaDraft("ada", "intents", "ada", None, PersonaPolicy(), "alice"), audit()
    )
    first = store.create_cycle(cycle(3), audit())
    assert (first.number, first.status, first.watermark) == (1, CycleStatus.TRAINING, 3)
    with pytest.raises(Conflict, match="still open"):
        store.create_cycle(cycle(4), audit())
    done = first.model_copy(
        update={"status": CycleStatus.REJECTED, "decision": "no", "finished_at": datetime.now(UTC)}
    )
    stored = store.update_cycle(done)
    assert (stored.decision, stored.revision) == ("no", 1)
    with pytest.raises(Conflict, match="changed meanwhile"):
        store.update_cycle(done)  # still at revision 0: someone else moved it on
    second = store.create_cycle(cycle(5), audit())
    assert second.number == 2
    assert [c.number for c in store.list_cycles("ada")] == [1, 2]
    assert [c.number for c in store.list_cycles(statuses=frozenset({CycleStatus.TRAINING}))] == [2]
    figures = store.persona_figures()
    assert figures.cycles == {"rejected": 1, "training": 1}
