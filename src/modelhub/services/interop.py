"""Import models from, and export them to, other platforms' layouts (docs/interop.md).

One method per action, shared by every transport: `import_model` reads a foreign
layout (MLflow model directory, Hugging Face folder, ONNX file) that sits on this
machine and registers it through RegistryService.register; `export` writes a version
in a foreign layout into a new or empty folder. The HTTP API cannot reach the
caller's disk, so it uses the same two through `import_upload` (the folder arrives
first through /uploads, exactly as `models register` sends it) and `export_archive`
(the export built in the server's staging folder and streamed back as a tar).
"""

from __future__ import annotations

import re
import shutil
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel, ConfigDict

from modelhub.domain.auth import Action, Caller
from modelhub.domain.enums import parse_enum
from modelhub.domain.records import ModelVersion
from modelhub.errors import InvalidInput
from modelhub.interop import ExportFormat, ImportFormat
from modelhub.interop.destination import check_destination, staged_beside
from modelhub.interop.export import check_exportable, write_export
from modelhub.interop.folders_import import read_huggingface, read_onnx
from modelhub.interop.mlflow_import import MLMODEL, read_mlflow
from modelhub.interop.plan import ImportPlan, lay_out
from modelhub.interop.tar_stream import tar_chunks
from modelhub.services.auth import AuthService
from modelhub.services.registry import RegisterRequest, RegistryService
from modelhub.services.uploads import UploadService

READERS: dict[ImportFormat, Callable[[Path], ImportPlan]] = {
    ImportFormat.MLFLOW: read_mlflow,
    ImportFormat.HUGGINGFACE: read_huggingface,
    ImportFormat.ONNX: read_onnx,
}
DEFAULT_TYPE = "custom"


@dataclass(frozen=True)
class ImportRequest:
    """What a user says about an import besides its files.

    `name` defaults to `source_name` (the imported file's or folder's own name, which
    both clients fill in), made a valid model name. `type` defaults to what the
    layout says (a transformers task, a Hugging Face architecture), else custom;
    `license` to the layout's license.
    """

    from_format: str
    name: str | None = None
    source_name: str | None = None
    type: str | None = None
    description: str = ""
    license: str | None = None
    tags: dict[str, str] | None = None
    label: str | None = None
    trust: bool = False


class ExportResult(BaseModel):
    """What an export wrote: the version it came from, the format, its files."""

    model_config = ConfigDict(frozen=True)

    name: str
    version: int
    format: str
    files: list[str]


@dataclass(frozen=True)
class ExportArchive:
    result: ExportResult
    chunks: Iterator[bytes]


class InteropService:
    def __init__(
        self,
        registry: RegistryService,
        uploads: UploadService,
        auth: AuthService,
        work_dir: Path,
        card: Callable[[str], str],
    ) -> None:
        self.registry = registry
        self.uploads = uploads
        self.auth = auth
        self.work_dir = work_dir
        self._card = card  # the generated Hugging Face card of a version ref

    # -- import -------------------------------------------------------------------

    def import_model(
        self,
        caller: Caller,
        request: ImportRequest,
        source: Path,
        progress: Callable[[int], None] | None = None,
    ) -> ModelVersion:
        """Read `source` as `request.from_format` and register it as a new version.

        Everything is read and checked before a file is stored: InvalidInput for a
        layout that is not what it claims (naming the file and field), UnsafeModel
        for a pickle without trust, PermissionDenied for a caller who may not register.
        """
        return self._import(caller, request, Path(source), progress, move=False)

    def import_upload(self, caller: Caller, upload_id: str, request: ImportRequest) -> ModelVersion:
        """`import_model` on a folder (or file) sent first through /uploads; the upload
        is gone afterwards, imported or not, and its files are moved, never copied."""
        with self.uploads.consume(upload_id, caller.name) as (source, _):
            if source.is_file() and source.name == MLMODEL:  # a folder of MLmodel alone
                source = source.parent
            return self._import(caller, request, source, None, move=True)

    def import_server_path(self, caller: Caller, request: ImportRequest, path: str) -> ModelVersion:
        """`import_model` on a file or folder already on the server's disk, copied; the
        path must lie inside an import folder (RegistryService.importable)."""
        self.auth.authorize(caller, Action.MODELS_REGISTER)
        return self._import(caller, request, self.registry.importable(path), None, move=False)

    def _import(
        self,
        caller: Caller,
        request: ImportRequest,
        source: Path,
        progress: Callable[[int], None] | None,
        move: bool,
    ) -> ModelVersion:
        fmt = parse_enum(ImportFormat, request.from_format, "from")
        name = self._name(request)
        self.auth.authorize_owned(caller, Action.MODELS_REGISTER, self.registry.model_owner(name))
        if request.trust:
            self.auth.authorize(caller, Action.MODELS_TRUST)
        plan = READERS[fmt](source)
        register = RegisterRequest(
            name=name,
            type=request.type or self._type(name, plan),
            framework=plan.framework.value if plan.framework else None,
            description=request.description,
            license=request.license or plan.license,
            tags=request.tags,
            label=request.label,
            trust=request.trust,
            model_card=plan.card,
            signature=plan.signature,
            imported=plan.details,
        )
        self.registry.check_request(register)
        self.work_dir.mkdir(parents=True, exist_ok=True)
        laid_out = Path(tempfile.mkdtemp(prefix="import-", dir=self.work_dir))
        try:
            lay_out(plan, laid_out / "model", move=move)
            return self.registry.register(
                register, laid_out / "model", caller.name, move=True, progress=progress
            )
        finally:
            shutil.rmtree(laid_out, ignore_errors=True)

    def _name(self, request: ImportRequest) -> str:
        if request.name:
            return request.name
        base = re.sub(r"[^A-Za-z0-9_.-]+", "-", Path(request.source_name or "").stem)
        base = re.sub(r"\.{2,}", ".", base).strip("-._")[:100]
        if not base:
            raise InvalidInput("give the model a name (--name)", {"field": "name"})
        return base

    def _type(self, name: str, plan: ImportPlan) -> str | None:
        if self.registry.model_owner(name) is not None:
            return None  # a new version of an existing model keeps its type
        return plan.model_type or DEFAULT_TYPE

    # -- export -------------------------------------------------------------------

    def export(self, caller: Caller, ref: str, to: str, dest: Path) -> ExportResult:
        """Write version `ref` as `to` into `dest`, a new or empty folder.

        Raises Conflict (nothing written) when `dest` holds anything, NotFound for a
        missing version, InvalidInput for an unknown format or a version that cannot
        go to it (naming its format).
        """
        version, fmt = self._exportable(caller, ref, to, dest)
        with staged_beside(dest) as out:
            return self._build(version, fmt, out)

    def export_archive(self, caller: Caller, ref: str, to: str) -> ExportArchive:
        """`export` built in the server's staging folder, then sent as a tar stream that
        removes the folder once sent (or abandoned)."""
        version, fmt = self._exportable(caller, ref, to, None)
        self.work_dir.mkdir(parents=True, exist_ok=True)
        work = Path(tempfile.mkdtemp(prefix="export-", dir=self.work_dir))
        try:
            (work / "out").mkdir()
            result = self._build(version, fmt, work / "out")
        except BaseException:
            shutil.rmtree(work, ignore_errors=True)
            raise
        return ExportArchive(result, _removing(tar_chunks(work / "out"), work))

    def _exportable(
        self, caller: Caller, ref: str, to: str, dest: Path | None
    ) -> tuple[ModelVersion, ExportFormat]:
        self.auth.authorize(caller, Action.MODELS_READ)
        fmt = parse_enum(ExportFormat, to, "to")
        if dest is not None:
            check_destination(dest)
        version = self.registry.get(ref)
        check_exportable(version, fmt)
        return version, fmt

    def _build(self, version: ModelVersion, fmt: ExportFormat, out: Path) -> ExportResult:
        ref = f"{version.name}@{version.version}"
        self.work_dir.mkdir(parents=True, exist_ok=True)
        card = version.model_card or self._card(ref)
        if fmt is ExportFormat.HUGGINGFACE:  # the stored files as they are: straight to `out`
            self.registry.download(ref, out)
            write_export(version, out, fmt, out, card)
            return self._result(version, fmt, out)
        source = Path(tempfile.mkdtemp(prefix="export-source-", dir=self.work_dir))
        try:
            self.registry.download(ref, source)
            write_export(version, source, fmt, out, card)
        finally:
            shutil.rmtree(source, ignore_errors=True)
        return self._result(version, fmt, out)

    @staticmethod
    def _result(version: ModelVersion, fmt: ExportFormat, out: Path) -> ExportResult:
        files = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
        return ExportResult(
            name=version.name, version=version.version, format=fmt.value, files=files
        )


def _removing(chunks: Iterator[bytes], folder: Path) -> Iterator[bytes]:
    try:
        yield from chunks
    finally:
        shutil.rmtree(folder, ignore_errors=True)
