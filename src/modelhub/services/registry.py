"""The registry use cases: register, find, promote, alias, download, retire models."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Any

from modelhub.domain.auth import Caller
from modelhub.domain.deployments import LIVE
from modelhub.domain.enums import (
    Approval,
    Framework,
    ModelStatus,
    ModelType,
    Stage,
    parse_enum,
)
from modelhub.domain.lifecycle import check_stage_move
from modelhub.domain.limits import INT64_MAX, check_text
from modelhub.domain.names import (
    check_alias,
    check_label,
    check_license,
    check_model_name,
    check_relative_path,
    check_tags,
    parse_ref,
)
from modelhub.domain.queries import MODEL_SORTS, ModelQuery, VersionQuery
from modelhub.domain.records import (
    FileEntry,
    Lineage,
    ModelSummaryPage,
    ModelVersion,
    Page,
    RegisteredModel,
    Signature,
    TensorSpec,
)
from modelhub.errors import (
    Conflict,
    IllegalTransition,
    IntegrityError,
    InvalidInput,
    ModelhubError,
    NotFound,
    UnsafeModel,
)
from modelhub.inspect import inspect_model
from modelhub.services.manifest import (
    safe_target,
    source_files,
    version_digest,
    write_verified_stream,
)
from modelhub.stores.artifacts.base import ArtifactStore
from modelhub.stores.metadata.base import (
    AuditDraft,
    MetadataStore,
    ModelDraft,
    VersionDraft,
)

MAX_PAGE = 1000
MAX_GC_GRACE = 100 * 365 * 86400  # seconds; a timedelta much longer overflows the clock

# What the governance workflow (above this service) answers: what a version still needs
# before a stage, and one reviewer's decision.
Gate = Callable[[ModelVersion, Stage], list[str]]
Decide = Callable[[Caller, str, int, bool, str | None], ModelVersion]


@dataclass(frozen=True)
class RegisterRequest:
    """Everything a user says about a new version besides its files."""

    name: str
    type: str | None = None
    framework: str | None = None
    description: str = ""
    license: str | None = None
    tags: dict[str, str] | None = None
    label: str | None = None
    trust: bool = False
    lineage: Lineage | None = None
    metrics: dict[str, float] | None = None
    model_card: str | None = None
    private_inputs: tuple[str, ...] = ()  # inputs the prediction log must never write
    # From an import (services/interop.py): the signature the foreign layout declares,
    # kept when the files declare none, and what it said, kept as inspection["imported"].
    signature: Signature | None = None
    imported: dict[str, Any] | None = None
    quantization: str | None = None  # how an optimised version was made (int8-dynamic ...)


UNKNOWN_DTYPE = "unknown"  # a private input the files do not declare


@dataclass(frozen=True)
class CheckedRequest:
    """A RegisterRequest's fields once checked, with the model they add to (if any)."""

    name: str
    existing: RegisteredModel | None
    type: ModelType
    framework: Framework | None
    label: str | None
    license: str | None
    tags: dict[str, str]


@dataclass(frozen=True)
class GcReport:
    blobs_deleted: int
    bytes_freed: int
    blobs_kept_young: int


class RegistryService:
    def __init__(
        self,
        metadata: MetadataStore,
        artifacts: ArtifactStore,
        gc_grace_seconds: int,
        import_dirs: Sequence[Path] = (),
    ):
        self.metadata = metadata
        self.artifacts = artifacts
        self.gc_grace = timedelta(seconds=gc_grace_seconds)
        self.import_dirs = tuple(import_dirs)
        self._gate: Gate | None = None
        self._decide: Decide | None = None

    # -- register -----------------------------------------------------------

    def register(
        self,
        request: RegisterRequest,
        source: Path,
        actor: str,
        move: bool = False,
        progress: Callable[[int], None] | None = None,
        known_digests: dict[Path, str] | None = None,
    ) -> ModelVersion:
        """Inspect `source` (a file or folder), store its files, record a new version.

        Everything is checked before anything is written; a failure after the blobs
        are stored removes the blobs this call added. Raises InvalidInput for bad
        names, types or files, UnsafeModel for an untrusted pickle.
        """
        checked = self.check_request(request)
        files_on_disk = source_files(source)
        inspection = inspect_model(source, checked.framework)
        if inspection.requires_trust and not request.trust:
            raise UnsafeModel(
                f"{source.name} is pickle-based and could run code when loaded; "
                "convert it to safetensors, or register it with --trust",
                {"findings": inspection.pickle_findings},
            )

        declared = inspection.signature
        if request.signature is not None and not (declared.inputs or declared.outputs):
            declared = request.signature
        signature = mark_private(declared, request.private_inputs)
        files, added = self._store_files(files_on_disk, move, progress, known_digests or {})
        draft = VersionDraft(
            framework=inspection.framework,
            size=sum(f.size for f in files),
            digest=version_digest(files),
            files=files,
            created_by=actor,
            label=checked.label,
            architecture=inspection.architecture,
            parameters=inspection.parameters,
            precision=inspection.precision,
            quantization=request.quantization,
            context_length=inspection.context_length,
            signature=signature,
            inspection=inspection.details
            | {"dtypes": inspection.dtypes, "tensor_count": inspection.tensor_count}
            | ({"imported": request.imported} if request.imported else {}),
            resources=inspection.resources,
            lineage=request.lineage or Lineage(),
            metrics=dict(request.metrics or {}),
            trusted=request.trust,
            model_card=request.model_card,
        )
        model = ModelDraft(
            name=checked.name,
            type=checked.type,
            owner=actor,
            description=request.description,
            license=checked.license,
            tags=checked.tags,
        )
        audit = AuditDraft(
            actor,
            "models.register",
            checked.name,
            {"digest": draft.digest, "size": draft.size, "trusted": request.trust},
        )
        try:
            return self.metadata.create_version(model, draft, audit)
        except BaseException:
            self._drop_unreferenced(added)
            raise

    def import_path(self, request: RegisterRequest, path: str, actor: str) -> ModelVersion:
        """Register a file or folder already on the server's disk, copied, never moved.

        Reading the server's disk is powerful: the path, its symbolic links resolved,
        must lie inside one of the import folders (settings.import_dirs), which is
        checked before anything says whether the path exists.
        """
        source = self.importable(path)
        return self.register(request, source, actor)

    def importable(self, path: str) -> Path:
        """`path` resolved, if it lies inside an import folder and exists."""
        allowed = ", ".join(str(d) for d in self.import_dirs) or "none configured"
        text = check_text(path.strip(), "path") if path.strip() else ""
        if not text:
            raise InvalidInput(
                "give the path of a model file or folder on the server", {"field": "path"}
            )
        given = Path(text).expanduser()
        if not given.is_absolute():
            raise InvalidInput(f"{text} is not an absolute path", {"field": "path"})
        resolved = given.resolve()
        if not any(resolved.is_relative_to(d.resolve()) for d in self.import_dirs):
            raise InvalidInput(
                f"{text} is outside the folders this server imports from ({allowed}); "
                "an admin may add folders with MODELHUB_IMPORT_DIRS",
                {"field": "path", "allowed": [str(d) for d in self.import_dirs]},
            )
        try:
            found = resolved.exists()
        except OSError as exc:  # a name too long, a folder we may not enter
            raise InvalidInput(f"cannot read {text}: {exc.strerror}", {"field": "path"}) from exc
        if not found:
            raise InvalidInput(f"no such file or directory: {text}", {"field": "path"})
        return resolved

    def check_request(self, request: RegisterRequest) -> CheckedRequest:
        """Everything about a registration that its files do not decide.

        Called before a file is stored or even received, so that a request that
        must fail (a bad name, an unknown type, an archived model) costs no upload.
        Raises what `register` raises for the same request.
        """
        name = check_model_name(request.name)
        existing = self._find_model(name)
        if existing is None:
            self._check_no_deployment_has(name)
        model_type = self._model_type(request.type, existing)
        framework = (
            parse_enum(Framework, request.framework, "framework") if request.framework else None
        )
        label = check_label(request.label) if request.label else None
        license = check_license(request.license) if request.license else None
        tags = check_tags(dict(request.tags or {}))
        if existing is not None and existing.status == ModelStatus.ARCHIVED:
            raise InvalidInput(f"model {name!r} is archived; restore it before adding versions")
        return CheckedRequest(name, existing, model_type, framework, label, license, tags)

    def _find_model(self, name: str) -> RegisteredModel | None:
        try:
            return self.metadata.get_model(name)
        except NotFound:
            return None

    def _check_no_deployment_has(self, name: str) -> None:
        """A new model may not take the name of a live deployment of another model:
        a model's name is how its callers reach it, and that deployment answers
        to it today."""
        try:
            deployment = self.metadata.get_deployment(name)
        except NotFound:
            return
        if deployment.status in LIVE and deployment.model != name:
            raise Conflict(
                f"{name!r} is the name of a live deployment of {deployment.model}; "
                "choose another model name",
                {"field": "name", "deployment": name, "model": deployment.model},
            )

    @staticmethod
    def _model_type(given: str | None, existing: RegisteredModel | None) -> ModelType:
        if given is None:
            if existing is None:
                raise InvalidInput(
                    "a new model needs a type (--type): " + ", ".join(t.value for t in ModelType),
                    {"field": "type"},
                )
            return existing.type
        model_type = parse_enum(ModelType, given, "type")
        if existing is not None and existing.type != model_type:
            raise InvalidInput(
                f"model {existing.name!r} is of type {existing.type.value}, not {model_type.value}",
                {"field": "type"},
            )
        return model_type

    def _store_files(
        self,
        files_on_disk: list[tuple[str, Path]],
        move: bool,
        progress: Callable[[int], None] | None,
        known_digests: dict[Path, str],
    ) -> tuple[list[FileEntry], list[str]]:
        entries: list[FileEntry] = []
        added: list[str] = []
        try:
            for relative, path in files_on_disk:
                known = known_digests.get(path)
                try:
                    blob = self.artifacts.put_file(path, move=move, known_digest=known)
                except IntegrityError as exc:  # changed since it was hashed: name the file
                    raise IntegrityError(
                        f"{relative!r} changed before it was stored: {exc.message}",
                        exc.details | {"path": relative},
                    ) from exc
                if blob.created:
                    added.append(blob.digest)
                entries.append(FileEntry(path=relative, digest=blob.digest, size=blob.size))
                if progress:
                    progress(blob.size)
        except BaseException:
            self._drop_unreferenced(added)
            raise
        return entries, added

    def _drop_unreferenced(self, digests: list[str]) -> None:
        if not digests:
            return
        referenced = self.metadata.referenced_digests()
        for digest in set(digests) - referenced:
            self.artifacts.delete(digest)

    # -- read ---------------------------------------------------------------

    def model_owner(self, name: str) -> str | None:
        return self.metadata.model_owner(check_model_name(name))

    def get_model(self, name: str) -> RegisteredModel:
        return self.metadata.get_model(check_model_name(name))

    def get(self, ref: str) -> ModelVersion:
        return self.metadata.resolve(parse_ref(ref))

    def versions(self, name: str) -> list[ModelVersion]:
        return self.metadata.list_versions(check_model_name(name))

    def list_models(self, query: ModelQuery) -> ModelSummaryPage:
        """One page of models, one row each; InvalidInput names a bad filter or order."""
        if not 1 <= query.limit <= MAX_PAGE or not 0 <= query.offset <= INT64_MAX:
            raise InvalidInput(
                f"limit must be 1-{MAX_PAGE} and offset 0 to 2**63 - 1", {"field": "limit"}
            )
        if query.sort not in MODEL_SORTS:
            raise InvalidInput(
                f"unknown sort {query.sort!r}: use one of {', '.join(MODEL_SORTS)}",
                {"field": "sort"},
            )
        checked = replace(
            query,
            type=_enum_text(ModelType, query.type, "type"),
            framework=_enum_text(Framework, query.framework, "framework"),
            stage=_enum_text(Stage, query.stage, "stage"),
            tags=check_tags(dict(query.tags)),
            text=check_text(query.text, "search") if query.text else None,
        )
        return self.metadata.list_model_summaries(checked)

    def aliases(self, name: str) -> dict[str, int]:
        """A model's aliases and the version each names."""
        return self.metadata.model_aliases(check_model_name(name))

    def search(self, query: VersionQuery) -> Page:
        """The page of versions the query matches; InvalidInput names a bad filter."""
        if not 1 <= query.limit <= MAX_PAGE or not 0 <= query.offset <= INT64_MAX:
            raise InvalidInput(
                f"limit must be 1-{MAX_PAGE} and offset 0 to 2**63 - 1", {"field": "limit"}
            )
        checked = replace(
            query,
            name=check_model_name(query.name) if query.name else None,
            type=_enum_text(ModelType, query.type, "type"),
            framework=_enum_text(Framework, query.framework, "framework"),
            stage=_enum_text(Stage, query.stage, "stage"),
            tags=check_tags(dict(query.tags)),
            text=check_text(query.text, "search") if query.text else None,
        )
        return self.metadata.search(checked)

    # -- lifecycle ----------------------------------------------------------

    def set_gate(self, gate: Gate) -> None:
        """Ask `gate` (the governance workflow, built above this service) what a version
        still needs before a gated stage; until set, only the approval rule applies."""
        self._gate = gate

    def on_decision(self, decide: Decide) -> None:
        """Hand reviewers' approve/reject to `decide` (the governance workflow)."""
        self._decide = decide

    def gate_missing(self, version: ModelVersion, stage: Stage) -> list[str]:
        """What the policy still needs before `version` may enter `stage`."""
        return self._gate(version, stage) if self._gate is not None else []

    def set_stage(
        self, name: str, version: int, stage: str, actor: str, override_gate: bool = False
    ) -> ModelVersion:
        """Move a version; `override_gate` (an admin's call) skips the approval check and
        the policy's gate, and the audit event records what was missing."""
        current = self.get(f"{name}@{version}")
        target = parse_enum(Stage, stage, "stage")
        approval = Approval.APPROVED if override_gate else current.approval
        check_stage_move(current.stage, target, approval)
        # Stepping down from production to staging passes no gate: it takes a version
        # out of production, it does not promote one.
        demotion = current.stage is Stage.PRODUCTION
        missing = [] if demotion else self.gate_missing(current, target)
        ref = f"{name}@{version}"
        if missing and not override_gate:
            raise IllegalTransition(
                f"{ref} may not enter {target.value}: the governance policy still needs "
                + "; ".join(missing),
                {"ref": ref, "stage": target.value, "missing": missing},
            )
        details: dict[str, Any] = {"from": current.stage.value, "to": target.value}
        if override_gate and current.approval != Approval.APPROVED:
            details["override"] = f"approval was {current.approval.value}"
        if override_gate and missing:
            details["override_missing"] = missing
        audit = AuditDraft(actor, "models.stage", ref, details)
        return self.metadata.update_version(name, version, {"stage": target}, audit)

    def approve(self, name: str, version: int, note: str | None, reviewer: Caller) -> ModelVersion:
        """One reviewer's approval under the governance policy (see ReviewService.decide)."""
        return self._decision(reviewer, name, version, True, note)

    def reject(self, name: str, version: int, note: str | None, reviewer: Caller) -> ModelVersion:
        """One reviewer's rejection; it closes the version's review request as rejected."""
        return self._decision(reviewer, name, version, False, note)

    def _decision(
        self, reviewer: Caller, name: str, version: int, approve: bool, note: str | None
    ) -> ModelVersion:
        if self._decide is None:
            raise ModelhubError("reviews are not wired to this registry")
        return self._decide(reviewer, name, version, approve, note)

    def set_alias(self, name: str, alias: str, version: int, actor: str) -> ModelVersion:
        check_model_name(name)
        check_alias(alias)
        audit = AuditDraft(actor, "models.alias", name, {"alias": alias, "version": version})
        return self.metadata.set_alias(name, alias, version, audit)

    def remove_alias(self, name: str, alias: str, actor: str) -> None:
        check_model_name(name)
        check_alias(alias)
        self.metadata.remove_alias(
            name, alias, AuditDraft(actor, "models.unalias", name, {"alias": alias})
        )

    def set_model_card(self, ref: str, text: str, actor: str) -> ModelVersion:
        version = self.get(ref)
        audit = AuditDraft(
            actor, "models.card", f"{version.name}@{version.version}", {"chars": len(text)}
        )
        return self.metadata.update_version(
            version.name, version.version, {"model_card": text}, audit
        )

    def update_model(
        self,
        name: str,
        actor: str,
        description: str | None = None,
        license: str | None = None,
        tags: dict[str, str] | None = None,
    ) -> RegisteredModel:
        changes: dict[str, Any] = {}
        if description is not None:
            changes["description"] = description
        if license is not None:
            changes["license"] = check_license(license)
        audit = AuditDraft(
            actor, "models.update", name, {"fields": sorted(changes), "tags": tags or {}}
        )
        return self.metadata.update_model(
            check_model_name(name), changes, audit, check_tags(tags) if tags else None
        )

    def archive(self, ref: str, actor: str, restore: bool = False) -> str:
        """Archive (or restore) a whole model, or one version when the ref names one."""
        status = ModelStatus.ACTIVE if restore else ModelStatus.ARCHIVED
        action = "models.restore" if restore else "models.archive"
        name, _, selector = ref.partition("@")
        if not selector:
            if not restore and any(v.stage == Stage.PRODUCTION for v in self.versions(name)):
                raise InvalidInput(f"model {name!r} has a version in production; move it out first")
            self.metadata.update_model(
                check_model_name(name), {"status": status}, AuditDraft(actor, action, name)
            )
            return name
        version = self.get(ref)
        if version.stage == Stage.PRODUCTION and not restore:
            raise InvalidInput(f"{ref} is in production; move it out of production first")
        target = f"{version.name}@{version.version}"
        self.metadata.update_version(
            version.name, version.version, {"status": status}, AuditDraft(actor, action, target)
        )
        return target

    def delete(self, ref: str, actor: str) -> str:
        """Delete a model or one version; blobs nothing else references go with it."""
        name, _, selector = ref.partition("@")
        if not selector:
            existing = self.versions(name)
            doomed = [f.digest for v in existing for f in v.files]
            if any(v.stage == Stage.PRODUCTION for v in existing):
                raise InvalidInput(f"model {name!r} has a version in production; move it out first")
            self._refuse_if_deployed(name, None)
            self.metadata.delete_model(name, AuditDraft(actor, "models.delete", name))
            target = name
        else:
            version = self.get(ref)
            if version.stage == Stage.PRODUCTION:
                raise InvalidInput(f"{ref} is in production; move it out of production first")
            self._refuse_if_deployed(version.name, version.version)
            doomed = [f.digest for f in version.files]
            target = f"{version.name}@{version.version}"
            self.metadata.delete_version(
                version.name, version.version, AuditDraft(actor, "models.delete", target)
            )
        self._drop_unreferenced(doomed)
        return target

    def _refuse_if_deployed(self, name: str, version: int | None) -> None:
        """A version a live deployment serves, rolls out or may roll back to stays."""
        for deployment in self.metadata.list_deployments(model=name):
            if deployment.status not in LIVE:
                continue
            needed = set(deployment.versions) | {deployment.previous_version}
            if deployment.rollout is not None:
                needed |= {deployment.rollout.from_version, deployment.rollout.to_version}
            if version is None or version in needed:
                what = name if version is None else f"{name}@{version}"
                raise Conflict(
                    f"{what} is used by deployment {deployment.name}; stop it first",
                    {"deployment": deployment.name},
                )

    # -- files --------------------------------------------------------------

    def file_entry(self, ref: str, path: str) -> tuple[ModelVersion, FileEntry]:
        version = self.get(ref)
        wanted = check_relative_path(path)
        for entry in version.files:
            if entry.path == wanted:
                return version, entry
        raise NotFound(f"{ref} has no file {path!r}", {"path": path})

    def read_file(self, digest: str) -> Iterator[bytes]:
        return self.artifacts.open_chunks(digest)

    def download(
        self, ref: str, dest: Path, progress: Callable[[int], None] | None = None
    ) -> tuple[ModelVersion, list[Path]]:
        """Write every file of a version under `dest`, verified, never outside it."""
        version = self.get(ref)
        written: list[Path] = []
        for entry in version.files:
            target = safe_target(dest, entry.path)
            write_verified_stream(
                self.artifacts.open_chunks(entry.digest), target, progress=progress
            )
            written.append(target)
        return version, written

    # -- garbage collection ---------------------------------------------------

    def gc(self, grace_seconds: int | None = None) -> GcReport:
        if grace_seconds is not None and not 0 <= grace_seconds <= MAX_GC_GRACE:
            raise InvalidInput(
                f"grace_seconds must be 0 to {MAX_GC_GRACE} (100 years)", {"field": "grace_seconds"}
            )
        grace = self.gc_grace if grace_seconds is None else timedelta(seconds=grace_seconds)
        cutoff = datetime.now(UTC) - grace
        referenced = self.metadata.referenced_digests()
        deleted = freed = young = 0
        for blob in list(self.artifacts.list_blobs()):
            if blob.digest in referenced:
                continue
            if blob.created_at > cutoff:
                young += 1
                continue
            self.artifacts.delete(blob.digest)
            deleted += 1
            freed += blob.size
        return GcReport(deleted, freed, young)


def _enum_text(enum: type[StrEnum], value: str | None, field: str) -> str | None:
    return parse_enum(enum, value, field).value if value else None


__all__ = ["CheckedRequest", "GcReport", "ModelhubError", "RegisterRequest", "RegistryService"]


def mark_private(signature: Signature, names: tuple[str, ...] | list[str]) -> Signature:
    """The signature with `names` marked private.

    When the files declare their inputs, a name that is not one of them is
    InvalidInput. When they declare none (a trainer's folder: its runtime tells its
    inputs only when it loads), each name is recorded as a private input of unknown
    type, so that the prediction log still leaves it out."""
    if not names:
        return signature
    known = {spec.name for spec in signature.inputs}
    if not known:
        added = [
            TensorSpec(name=n, dtype=UNKNOWN_DTYPE, private=True) for n in dict.fromkeys(names)
        ]
        return signature.model_copy(update={"inputs": added})
    unknown = sorted(set(names) - known)
    if unknown:
        raise InvalidInput(
            f"private input {unknown[0]!r} is not an input of this model "
            f"(inputs: {', '.join(sorted(known))})",
            {"field": "private_inputs", "unknown": unknown},
        )
    inputs = [
        spec.model_copy(update={"private": True}) if spec.name in names else spec
        for spec in signature.inputs
    ]
    return signature.model_copy(update={"inputs": inputs})
