"""One contract suite for MetadataStore, run on SQLite and on PostgreSQL."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import create_engine, text

from modelhub.domain.enums import Framework, ModelType, Precision, Stage
from modelhub.domain.names import ModelRef
from modelhub.domain.queries import VersionQuery
from modelhub.domain.records import FileEntry, Lineage, ModelVersion, Signature, TensorSpec
from modelhub.errors import IntegrityError, NotFound
from modelhub.stores.metadata.base import (
    AuditDraft,
    AuditQuery,
    ModelDraft,
    VersionDraft,
)
from modelhub.stores.metadata.sql import SqlMetadataStore


def model(name: str, **kw: Any) -> ModelDraft:
    return ModelDraft(
        name=name,
        type=kw.pop("type", ModelType.CLASSIFICATION),
        owner=kw.pop("owner", "alice"),
        **kw,
    )


def draft(seed: int = 1, **kw: Any) -> VersionDraft:
    digest = f"{seed:064x}"
    files = kw.pop("files", [FileEntry(path="model.safetensors", digest=digest, size=10 + seed)])
    return VersionDraft(
        framework=kw.pop("framework", Framework.SAFETENSORS),
        size=sum(f.size for f in files),
        digest=kw.pop("digest", digest),
        files=files,
        created_by=kw.pop("created_by", "alice"),
        **kw,
    )


def audit(action: str = "test.action", target: str = "t", actor: str = "alice") -> AuditDraft:
    return AuditDraft(actor, action, target, {})


@pytest.fixture
def store(migrated_metadata_url: str) -> Iterator[SqlMetadataStore]:
    s = SqlMetadataStore(migrated_metadata_url)
    yield s
    s.close()


def add(store: SqlMetadataStore, name: str, seed: int = 1, **kw: Any) -> Any:
    model_kw = {k: kw.pop(k) for k in ("type", "description", "tags", "owner") if k in kw}
    return store.create_version(model(name, **model_kw), draft(seed, **kw), audit("add", name))


def raw(store: SqlMetadataStore, sql: str, **params: Any) -> Any:
    with store.engine.begin() as conn:
        return conn.execute(text(sql), params)


# -- versions ---------------------------------------------------------------


def test_versions_are_numbered_from_one(store: SqlMetadataStore) -> None:
    with pytest.raises(NotFound):
        store.get_model("bert")
    numbers = [add(store, "bert", seed).version for seed in (1, 2, 3)]
    assert numbers == [1, 2, 3]
    assert add(store, "other").version == 1
    got = store.get_model("bert")
    assert got.name == "bert" and got.type == ModelType.CLASSIFICATION
    assert got.owner == "alice" and got.latest_version == 3
    assert [v.version for v in store.list_versions("bert")] == [1, 2, 3]


def test_version_fields_round_trip(store: SqlMetadataStore) -> None:
    signature = Signature(inputs=[TensorSpec(name="x", dtype="float32", shape=["batch", 4])])
    files = [
        FileEntry(path="config.json", digest=f"{7:064x}", size=3),
        FileEntry(path="weights/model.safetensors", digest=f"{8:064x}", size=40),
    ]
    created = add(
        store,
        "rt",
        files=files,
        digest=f"{9:064x}",
        label="1.2.0",
        architecture="BertModel",
        parameters=1234,
        precision=Precision.FP16,
        signature=signature,
        lineage=Lineage(source_run="run-1", datasets=["d1"]),
        metrics={"acc": 0.9},
        model_card="# card",
        trusted=True,
    )
    got = store.resolve(ModelRef("rt", "1"))
    assert got == created
    assert got.files == files and got.size == 43 and got.digest == f"{9:064x}"
    assert got.label == "1.2.0" and got.parameters == 1234 and got.precision == Precision.FP16
    assert got.signature == signature and got.lineage.source_run == "run-1"
    assert got.metrics == {"acc": 0.9} and got.model_card == "# card" and got.trusted
    assert got.stage == Stage.DEVELOPMENT and got.approval.value == "pending"
    assert got.aliases == ["latest"]
    # Read records are built without validation: they must be what validation builds.
    assert ModelVersion.model_validate_json(got.model_dump_json()) == got
    assert got.model_fields_set == set(ModelVersion.model_fields)


def test_a_record_read_again_shows_a_change_another_writer_made(store: SqlMetadataStore) -> None:
    add(store, "shared", metrics={"acc": 0.5})
    assert store.resolve(ModelRef("shared", "1")).stage == Stage.DEVELOPMENT
    # Another server on the same database changes the row behind this store's back.
    raw(store, """UPDATE versions SET stage = 'staging', metrics = '{"acc": 0.75}'""")
    got = store.resolve(ModelRef("shared", "1"))
    assert got.stage == Stage.STAGING and got.metrics == {"acc": 0.75}


def test_tags_merge_across_versions(store: SqlMetadataStore) -> None:
    add(store, "m", 1, tags={"team": "nlp", "lang": "en"})
    add(store, "m", 2, tags={"lang": "fr", "task": "qa"})
    assert store.get_model("m").tags == {"team": "nlp", "lang": "fr", "task": "qa"}
    store.update_model("m", {"description": "new"}, audit(), tags={"team": "cv"})
    got = store.get_model("m")
    assert got.tags == {"team": "cv", "lang": "fr", "task": "qa"}
    assert got.description == "new"


def test_resolve_by_number_latest_stage_and_alias(store: SqlMetadataStore) -> None:
    for seed in (1, 2, 3):
        add(store, "m", seed)
    store.update_version("m", 1, {"stage": Stage.STAGING}, audit())
    store.update_version("m", 2, {"stage": Stage.STAGING}, audit())
    store.set_alias("m", "champion", 1, audit())
    assert store.resolve(ModelRef("m", "2")).version == 2
    assert store.resolve(ModelRef("m")).version == 3
    assert store.resolve(ModelRef("m", "latest")).version == 3
    assert store.resolve(ModelRef("m", "staging")).version == 2  # newest in the stage
    assert store.resolve(ModelRef("m", "development")).version == 3
    champion = store.resolve(ModelRef("m", "champion"))
    assert champion.version == 1 and champion.aliases == ["champion"]


@pytest.mark.parametrize(
    "ref",
    [
        ModelRef("ghost"),
        ModelRef("m", "9"),
        ModelRef("m", "production"),
        ModelRef("m", "nobody"),
    ],
    ids=["model", "number", "stage", "alias"],
)
def test_missing_things_are_not_found(store: SqlMetadataStore, ref: ModelRef) -> None:
    add(store, "m")
    with pytest.raises(NotFound):
        store.resolve(ref)


def test_missing_things_raise_not_found_on_every_method(store: SqlMetadataStore) -> None:
    add(store, "m")
    calls = [
        lambda: store.get_model("ghost"),
        lambda: store.list_versions("ghost"),
        lambda: store.update_version("m", 5, {"stage": Stage.STAGING}, audit()),
        lambda: store.update_version("ghost", 1, {"stage": Stage.STAGING}, audit()),
        lambda: store.update_model("ghost", {"description": "x"}, audit()),
        lambda: store.set_alias("m", "champ", 5, audit()),
        lambda: store.remove_alias("m", "champ", audit()),
        lambda: store.remove_alias("ghost", "champ", audit()),
        lambda: store.delete_version("m", 5, audit()),
        lambda: store.delete_model("ghost", audit()),
    ]
    before = len(store.list_audit(AuditQuery(limit=1000)))
    for call in calls:
        with pytest.raises(NotFound):
            call()
    # A failed mutation records nothing.
    assert len(store.list_audit(AuditQuery(limit=1000))) == before
    assert store.verify_audit().intact


# -- search -----------------------------------------------------------------


@pytest.fixture
def catalogue(store: SqlMetadataStore) -> SqlMetadataStore:
    add(
        store,
        "bert-base",
        1,
        type=ModelType.LANGUAGE_MODEL,
        description="An English Encoder",
        tags={"lang": "en", "team": "nlp"},
    )
    add(store, "bert-base", 2, framework=Framework.ONNX)
    add(
        store,
        "resnet",
        3,
        type=ModelType.CLASSIFICATION,
        description="vision 100%_sure",
        tags={"lang": "none", "team": "cv"},
    )
    add(
        store,
        "minilm",
        4,
        type=ModelType.EMBEDDING_MODEL,
        framework=Framework.HUGGINGFACE,
        tags={"lang": "en", "team": "search"},
    )
    add(store, "old", 5, description="retired encoder")
    store.update_model("old", {"status": "archived"}, audit())
    add(store, "x_y", 6, description="underscore name")
    add(store, "xay", 7, description="no underscore")
    return store


def names(page: Any) -> list[tuple[str, int]]:
    return [(v.name, v.version) for v in page.items]


def test_search_latest_only_by_default(catalogue: SqlMetadataStore) -> None:
    page = catalogue.search(VersionQuery())
    assert names(page) == [
        ("bert-base", 2),
        ("minilm", 1),
        ("resnet", 1),
        ("x_y", 1),
        ("xay", 1),
    ]
    assert page.total == 5


def test_search_all_versions(catalogue: SqlMetadataStore) -> None:
    page = catalogue.search(VersionQuery(name="bert-base", all_versions=True))
    assert names(page) == [("bert-base", 2), ("bert-base", 1)]
    assert page.total == 2
    assert catalogue.search(VersionQuery(all_versions=True)).total == 6


def test_search_filters(catalogue: SqlMetadataStore) -> None:
    assert names(catalogue.search(VersionQuery(name="resnet"))) == [("resnet", 1)]
    assert names(catalogue.search(VersionQuery(type=ModelType.EMBEDDING_MODEL.value))) == [
        ("minilm", 1)
    ]
    assert names(catalogue.search(VersionQuery(framework=Framework.ONNX.value))) == [
        ("bert-base", 2)
    ]
    # The latest version of bert-base is ONNX; its older safetensors one shows with all versions.
    st = catalogue.search(VersionQuery(framework=Framework.SAFETENSORS.value, all_versions=True))
    assert ("bert-base", 1) in names(st) and ("bert-base", 2) not in names(st)
    catalogue.update_version("resnet", 1, {"stage": Stage.STAGING}, audit())
    assert names(catalogue.search(VersionQuery(stage=Stage.STAGING.value))) == [("resnet", 1)]


def test_search_by_several_tags(catalogue: SqlMetadataStore) -> None:
    en = catalogue.search(VersionQuery(tags={"lang": "en"}))
    assert names(en) == [("bert-base", 2), ("minilm", 1)]
    both = catalogue.search(VersionQuery(tags={"lang": "en", "team": "nlp"}))
    assert names(both) == [("bert-base", 2)]
    assert catalogue.search(VersionQuery(tags={"lang": "en", "team": "cv"})).total == 0


def test_search_text_is_case_insensitive_over_name_and_description(
    catalogue: SqlMetadataStore,
) -> None:
    assert names(catalogue.search(VersionQuery(text="ENCODER"))) == [("bert-base", 2)]
    assert names(catalogue.search(VersionQuery(text="BeRt"))) == [("bert-base", 2)]
    archived = catalogue.search(VersionQuery(text="encoder", include_archived=True))
    assert names(archived) == [("bert-base", 2), ("old", 1)]


def test_search_text_treats_like_wildcards_literally(catalogue: SqlMetadataStore) -> None:
    assert names(catalogue.search(VersionQuery(text="x_y"))) == [("x_y", 1)]
    assert names(catalogue.search(VersionQuery(text="%"))) == [("resnet", 1)]
    assert names(catalogue.search(VersionQuery(text="100%_"))) == [("resnet", 1)]
    assert catalogue.search(VersionQuery(text="b%t")).total == 0
    assert catalogue.search(VersionQuery(text="\\")).total == 0


def test_search_excludes_archived_models_and_versions(catalogue: SqlMetadataStore) -> None:
    assert "old" not in {v.name for v in catalogue.search(VersionQuery()).items}
    assert [m.name for m in catalogue.list_models()] == [
        "bert-base",
        "minilm",
        "resnet",
        "x_y",
        "xay",
    ]
    assert "old" in [m.name for m in catalogue.list_models(include_archived=True)]
    catalogue.update_version("bert-base", 2, {"status": "archived"}, audit())
    all_bert = catalogue.search(VersionQuery(name="bert-base", all_versions=True))
    assert names(all_bert) == [("bert-base", 1)]
    with_archived = catalogue.search(
        VersionQuery(name="bert-base", all_versions=True, include_archived=True)
    )
    assert names(with_archived) == [("bert-base", 2), ("bert-base", 1)]


def test_search_pages(catalogue: SqlMetadataStore) -> None:
    everything = names(catalogue.search(VersionQuery(all_versions=True)))
    seen: list[tuple[str, int]] = []
    for offset in range(0, 6, 2):
        page = catalogue.search(VersionQuery(all_versions=True, limit=2, offset=offset))
        assert page.total == 6 and len(page.items) == 2
        seen += names(page)
    assert seen == everything
    past = catalogue.search(VersionQuery(limit=2, offset=10))
    assert past.items == [] and past.total == 5


# -- updates, aliases, deletes ------------------------------------------------


def test_update_version(store: SqlMetadataStore) -> None:
    add(store, "m")
    got = store.update_version(
        "m", 1, {"stage": Stage.STAGING, "approval_note": "ok", "model_card": "hi"}, audit()
    )
    assert got.stage == Stage.STAGING and got.approval_note == "ok" and got.model_card == "hi"
    assert store.resolve(ModelRef("m", "1")) == got


def test_aliases_set_move_and_remove(store: SqlMetadataStore) -> None:
    add(store, "m", 1)
    add(store, "m", 2)
    assert store.set_alias("m", "champion", 1, audit()).aliases == ["champion"]
    moved = store.set_alias("m", "champion", 2, audit())
    assert moved.aliases == ["champion", "latest"]
    assert store.resolve(ModelRef("m", "1")).aliases == []
    store.set_alias("m", "backup", 2, audit())
    assert store.resolve(ModelRef("m", "champion")).aliases == ["backup", "champion", "latest"]
    store.remove_alias("m", "champion", audit())
    with pytest.raises(NotFound):
        store.resolve(ModelRef("m", "champion"))
    assert store.resolve(ModelRef("m", "backup")).version == 2


def count(store: SqlMetadataStore, table: str) -> int:
    return int(raw(store, f"SELECT count(*) FROM {table}").scalar_one())


def test_delete_version_takes_its_files_and_aliases(store: SqlMetadataStore) -> None:
    add(store, "m", 1)
    add(store, "m", 2)
    store.set_alias("m", "champion", 2, audit())
    store.delete_version("m", 2, audit())
    assert [v.version for v in store.list_versions("m")] == [1]
    assert store.resolve(ModelRef("m")).aliases == ["latest"]
    assert count(store, "version_files") == 1 and count(store, "aliases") == 0


def test_delete_model_cascades(store: SqlMetadataStore) -> None:
    add(store, "m", 1, tags={"a": "b"})
    add(store, "m", 2)
    store.set_alias("m", "champion", 1, audit())
    add(store, "keep", 3, tags={"a": "c"})
    store.delete_model("m", audit())
    with pytest.raises(NotFound):
        store.get_model("m")
    assert count(store, "versions") == 1
    assert count(store, "version_files") == 1
    assert count(store, "aliases") == 0
    assert count(store, "model_tags") == 1
    assert store.get_model("keep").tags == {"a": "c"}
    assert add(store, "m", 4).version == 1  # a fresh model


def test_referenced_digests(store: SqlMetadataStore) -> None:
    shared = FileEntry(path="a.bin", digest=f"{1:064x}", size=1)
    add(
        store,
        "m",
        1,
        files=[shared, FileEntry(path="b.bin", digest=f"{2:064x}", size=2)],
        digest=f"{10:064x}",
    )
    add(store, "n", 3, files=[shared], digest=shared.digest)
    assert store.referenced_digests() == {f"{1:064x}", f"{2:064x}"}
    store.delete_model("m", audit())
    assert store.referenced_digests() == {f"{1:064x}"}
    store.delete_model("n", audit())
    assert store.referenced_digests() == set()


# -- audit ------------------------------------------------------------------


def test_every_mutation_appends_one_event(store: SqlMetadataStore) -> None:
    steps: list[tuple[str, Any]] = [
        ("create", lambda a: store.create_version(model("m"), draft(1), a)),
        ("create2", lambda a: store.create_version(model("m"), draft(2), a)),
        ("update_version", lambda a: store.update_version("m", 1, {"stage": Stage.STAGING}, a)),
        ("update_model", lambda a: store.update_model("m", {"description": "d"}, a)),
        ("set_alias", lambda a: store.set_alias("m", "champ", 1, a)),
        ("remove_alias", lambda a: store.remove_alias("m", "champ", a)),
        ("delete_version", lambda a: store.delete_version("m", 2, a)),
        ("delete_model", lambda a: store.delete_model("m", a)),
    ]
    for i, (action, step) in enumerate(steps, start=1):
        step(AuditDraft(f"actor{i}", action, "m", {"i": i}))
        events = store.list_audit(AuditQuery(limit=1000))
        assert len(events) == i
        newest = events[0]
        assert (newest.actor, newest.action, newest.target) == (f"actor{i}", action, "m")
        assert newest.details["i"] == i
    first = store.list_audit(AuditQuery(action="create"))[0]
    assert first.details == {"i": 1, "version": 1}
    assert store.verify_audit().intact
    assert [e.action for e in store.list_audit(AuditQuery(actor="actor3"))] == ["update_version"]
    assert len(store.list_audit(AuditQuery(target="m", limit=3))) == 3


def _five_events(store: SqlMetadataStore) -> list[int]:
    for seed in range(1, 6):
        add(store, "m", seed)
    ids = sorted(e.id for e in store.list_audit(AuditQuery(limit=100)))
    assert len(ids) == 5 and store.verify_audit().intact
    return ids


@pytest.mark.parametrize("column", ["details", "actor"])
def test_verify_audit_finds_an_edited_event(store: SqlMetadataStore, column: str) -> None:
    ids = _five_events(store)
    value = '{"version": 99}' if column == "details" else "mallory"
    raw(store, f"UPDATE audit_events SET {column} = :v WHERE id = :id", v=value, id=ids[2])
    assert store.verify_audit().first_broken_id == ids[2]


def test_verify_audit_finds_a_deleted_middle_event(store: SqlMetadataStore) -> None:
    ids = _five_events(store)
    raw(store, "DELETE FROM audit_events WHERE id = :id", id=ids[2])
    assert store.verify_audit().first_broken_id == ids[3]


def test_verify_audit_finds_a_deleted_last_event(store: SqlMetadataStore) -> None:
    ids = _five_events(store)
    raw(store, "DELETE FROM audit_events WHERE id = :id", id=ids[4])
    assert store.verify_audit().first_broken_id == ids[4]


def test_verify_audit_finds_reordered_ids(store: SqlMetadataStore) -> None:
    ids = _five_events(store)
    a, b = ids[1], ids[3]
    raw(store, "UPDATE audit_events SET id = -1 WHERE id = :a", a=a)
    raw(store, "UPDATE audit_events SET id = :a WHERE id = :b", a=a, b=b)
    raw(store, "UPDATE audit_events SET id = :b WHERE id = -1", b=b)
    assert store.verify_audit().first_broken_id == a


def test_verify_audit_reports_a_missing_head_and_refuses_writes(store: SqlMetadataStore) -> None:
    _five_events(store)
    raw(store, "DELETE FROM audit_head")
    verdict = store.verify_audit()
    assert not verdict.intact and verdict.events == 5
    assert verdict.problems == [
        "the audit_head row is missing: the end of the chain cannot be checked"
    ]
    with pytest.raises(IntegrityError, match="head row is missing"):
        add(store, "m", 6)
    assert store.verify_audit().events == 5


def test_verify_audit_reports_a_second_head_row(store: SqlMetadataStore) -> None:
    _five_events(store)
    raw(store, "INSERT INTO audit_head (id, last_id, last_hash) VALUES (2, 9, :h)", h="f" * 64)
    verdict = store.verify_audit()
    assert not verdict.intact
    assert verdict.problems == [
        "audit_head holds 2 row(s) (id 1, 2) where there is exactly one, id 1: "
        "a head was added or replaced"
    ]


@pytest.mark.parametrize(
    ("column", "value", "problem"),
    [
        ("details", "{not json", "its details are not JSON"),
        ("at", "yesterday-ish", "its time 'yesterday-ish' does not parse"),
    ],
)
def test_verify_audit_reports_an_unreadable_event(
    store: SqlMetadataStore, column: str, value: str, problem: str
) -> None:
    if not store.url.startswith("sqlite"):
        pytest.skip("PostgreSQL's json and timestamptz columns refuse such a value")
    ids = _five_events(store)
    raw(store, f"UPDATE audit_events SET {column} = :v WHERE id = :id", v=value, id=ids[2])
    verdict = store.verify_audit()
    assert verdict.first_broken_id == ids[2]
    assert verdict.problems == [f"event {ids[2]}: {problem}"]
    assert verdict.events == 5 and verdict.head_id == ids[4]


def test_an_expected_head_catches_a_truncated_tail_and_a_rewound_head(
    store: SqlMetadataStore,
) -> None:
    ids = _five_events(store)
    kept = store.verify_audit().head_hash
    # A head recorded earlier passes while the chain grows past it.
    add(store, "m", 6)
    grown = store.verify_audit(kept)
    assert grown.intact and grown.head_id == ids[4] + 1 and grown.head_hash != kept
    raw(store, "DELETE FROM audit_events WHERE id > :id", id=ids[2])
    raw(
        store,
        "UPDATE audit_head SET last_id = :id, "
        "last_hash = (SELECT hash FROM audit_events WHERE id = :id)",
        id=ids[2],
    )
    assert store.verify_audit().intact  # consistent on its own ...
    verdict = store.verify_audit(kept)  # ... but not with what was kept elsewhere
    assert not verdict.intact and verdict.head_id == ids[2]
    assert verdict.problems == [
        f"the expected head {kept} is not in the chain: events up to it were deleted or "
        "rewritten since it was recorded"
    ]


# -- concurrency and migrations -----------------------------------------------


def test_concurrent_create_version_numbers_consecutively(store: SqlMetadataStore) -> None:
    errors: list[BaseException] = []
    barrier = threading.Barrier(8)

    def worker(index: int) -> None:
        try:
            barrier.wait()
            for j in range(5):
                store.create_version(model("busy"), draft(index * 10 + j + 1), audit("add", "busy"))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert errors == []
    assert [v.version for v in store.list_versions("busy")] == list(range(1, 41))
    assert store.verify_audit().intact
    assert len(store.list_audit(AuditQuery(limit=100))) == 40


def test_migrations_are_idempotent_and_at_head(metadata_url: str) -> None:
    from alembic.script import ScriptDirectory

    from modelhub.stores.metadata.migrate import MIGRATIONS

    first = SqlMetadataStore(metadata_url)
    add(first, "m")
    second = SqlMetadataStore(metadata_url)
    assert second.resolve(ModelRef("m")).version == 1
    assert add(second, "m", 2).version == 2
    first.close()
    second.close()
    head = ScriptDirectory(str(MIGRATIONS)).get_current_head()
    engine = create_engine(metadata_url)
    try:
        with engine.connect() as conn:
            versions = conn.execute(text("SELECT version_num FROM alembic_version")).scalars()
            assert list(versions) == [head]
    finally:
        engine.dispose()


def test_version_numbers_are_never_reused(store: SqlMetadataStore) -> None:
    add(store, "m", 1)
    add(store, "m", 2)
    store.delete_version("m", 2, audit())
    assert add(store, "m", 3).version == 3
    assert [v.version for v in store.list_versions("m")] == [1, 3]
