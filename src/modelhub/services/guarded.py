"""The registry as one caller may use it: every call checked against the permission table.

Transports hand requests to this facade; the plain RegistryService below it trusts
its caller (local mode, other services).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

from modelhub.domain.auth import Action, Caller
from modelhub.domain.names import parse_ref
from modelhub.domain.queries import ModelQuery, VersionQuery
from modelhub.domain.records import (
    FileEntry,
    ModelSummaryPage,
    ModelVersion,
    Page,
    RegisteredModel,
)
from modelhub.errors import ModelhubError
from modelhub.services.auth import AuthService
from modelhub.services.manifest import write_card_beside
from modelhub.services.registry import GcReport, RegisterRequest, RegistryService
from modelhub.services.uploads import DirectRegistration, StagedFile, UploadService


class GuardedRegistry:
    def __init__(
        self, registry: RegistryService, uploads: UploadService, auth: AuthService, caller: Caller
    ) -> None:
        self.registry = registry
        self.uploads = uploads
        self.auth = auth
        self.caller = caller

    def _owner(self, name: str) -> str | None:
        return self.registry.model_owner(name)

    def _check(self, action: Action, model: str | None = None) -> None:
        owner = self._owner(model) if model is not None else None
        self.auth.authorize_owned(self.caller, action, owner)

    def _check_ref(self, action: Action, ref: str) -> None:
        self._check(action, parse_ref(ref).name)

    # -- writes -----------------------------------------------------------------

    def start_upload(self) -> str:
        self._check(Action.MODELS_REGISTER)
        return self.uploads.start(self.caller.name)

    def open_upload_file(self, upload_id: str, path: str) -> StagedFile:
        self._check(Action.MODELS_REGISTER)
        return self.uploads.open_file(upload_id, path, self.caller.name)

    def discard_upload(self, upload_id: str) -> None:
        self._check(Action.MODELS_REGISTER)
        self.uploads.discard(upload_id, self.caller.name)

    def register_upload(self, upload_id: str, request: RegisterRequest) -> ModelVersion:
        """Register a staged upload; refused or not, the upload is gone afterwards."""
        try:
            self._check_register(request)
        except ModelhubError:
            self.uploads.discard_refused(upload_id, self.caller.name)
            raise
        return self.uploads.register(upload_id, request, self.caller.name)

    def check_registration(self, request: RegisterRequest) -> None:
        """Everything about a registration but its files, before any file is sent."""
        self._check_register(request)
        self.registry.check_request(request)

    def open_registration(self, request: RegisterRequest, filename: str) -> DirectRegistration:
        """Check a one-request registration before its file arrives, then stage the file."""
        self._check_register(request)
        self.registry.check_request(request)
        return self.uploads.open_registration(request, filename, self.caller.name)

    def register(
        self,
        request: RegisterRequest,
        source: Path,
        progress: Callable[[int], None] | None = None,
    ) -> ModelVersion:
        self._check_register(request)
        return self.registry.register(request, source, self.caller.name, progress=progress)

    def import_path(self, request: RegisterRequest, path: str) -> ModelVersion:
        """Register a file or folder on the server's disk, inside an import folder."""
        self._check_register(request)
        return self.registry.import_path(request, path, self.caller.name)

    def _check_register(self, request: RegisterRequest) -> None:
        self._check(Action.MODELS_REGISTER, request.name)
        if request.trust:
            self._check(Action.MODELS_TRUST)

    def set_stage(self, name: str, version: int, stage: str, force: bool = False) -> ModelVersion:
        self._check(Action.MODELS_STAGE, name)
        if force:
            self._check(Action.MODELS_OVERRIDE_GATE)
        return self.registry.set_stage(name, version, stage, self.caller.name, override_gate=force)

    def approve(self, name: str, version: int, note: str | None) -> ModelVersion:
        """One reviewer's decision under the governance policy, which checks who may."""
        return self.registry.approve(name, version, note, self.caller)

    def reject(self, name: str, version: int, note: str | None) -> ModelVersion:
        return self.registry.reject(name, version, note, self.caller)

    def set_alias(self, name: str, alias: str, version: int) -> ModelVersion:
        self._check(Action.MODELS_UPDATE, name)
        return self.registry.set_alias(name, alias, version, self.caller.name)

    def remove_alias(self, name: str, alias: str) -> None:
        self._check(Action.MODELS_UPDATE, name)
        self.registry.remove_alias(name, alias, self.caller.name)

    def set_model_card(self, ref: str, text: str) -> ModelVersion:
        self._check_ref(Action.MODELS_UPDATE, ref)
        return self.registry.set_model_card(ref, text, self.caller.name)

    def update_model(
        self,
        name: str,
        description: str | None = None,
        license: str | None = None,
        tags: dict[str, str] | None = None,
    ) -> RegisteredModel:
        self._check(Action.MODELS_UPDATE, name)
        return self.registry.update_model(
            name, self.caller.name, description=description, license=license, tags=tags
        )

    def archive(self, ref: str, restore: bool = False) -> str:
        self._check_ref(Action.MODELS_UPDATE, ref)
        return self.registry.archive(ref, self.caller.name, restore=restore)

    def delete(self, ref: str) -> str:
        self._check_ref(Action.MODELS_DELETE, ref)
        return self.registry.delete(ref, self.caller.name)

    def gc(self, grace_seconds: int | None = None) -> GcReport:
        self._check(Action.ARTIFACTS_GC)
        return self.registry.gc(grace_seconds)

    # -- reads ------------------------------------------------------------------

    def get(self, ref: str) -> ModelVersion:
        self._check(Action.MODELS_READ)
        return self.registry.get(ref)

    def get_model(self, name: str) -> RegisteredModel:
        self._check(Action.MODELS_READ)
        return self.registry.get_model(name)

    def versions(self, name: str) -> list[ModelVersion]:
        self._check(Action.MODELS_READ)
        return self.registry.versions(name)

    def search(self, query: VersionQuery) -> Page:
        self._check(Action.MODELS_READ)
        return self.registry.search(query)

    def list_models(self, query: ModelQuery) -> ModelSummaryPage:
        self._check(Action.MODELS_READ)
        return self.registry.list_models(query)

    def aliases(self, name: str) -> dict[str, int]:
        self._check(Action.MODELS_READ)
        return self.registry.aliases(name)

    def file_entry(self, ref: str, path: str) -> tuple[ModelVersion, FileEntry]:
        self._check(Action.MODELS_READ)
        return self.registry.file_entry(ref, path)

    def download(
        self, ref: str, dest: Path, progress: Callable[[int], None] | None = None
    ) -> tuple[ModelVersion, list[Path]]:
        """The version's files, then its model card as README.md (see write_card_beside);
        training's own download of a base version stays files only."""
        self._check(Action.MODELS_READ)
        version, written = self.registry.download(ref, dest, progress)
        card = write_card_beside(version, dest)
        return version, [*written, card] if card is not None else written

    def read_file(self, digest: str) -> Iterator[bytes]:
        self._check(Action.MODELS_READ)
        return self.registry.read_file(digest)
