"""Versioned training datasets, stored content-addressed beside the models."""

from __future__ import annotations

from pathlib import Path

from modelhub.datasets.profile import profile_dataset
from modelhub.domain.auth import Action, Caller, needs_ownership
from modelhub.domain.names import check_model_name, parse_version_number
from modelhub.domain.records import Dataset
from modelhub.errors import InvalidInput
from modelhub.services.auth import AuthService
from modelhub.services.uploads import UploadService
from modelhub.stores.artifacts.base import ArtifactStore
from modelhub.stores.metadata.base import AuditDraft, DatasetDraft, MetadataStore


def parse_dataset_ref(ref: str) -> tuple[str, int | None]:
    """`name`, `name@latest` or `name@3`."""
    name, _, selector = ref.partition("@")
    check_model_name(name)
    if selector in ("", "latest"):
        return name, None
    try:
        return name, parse_version_number(selector)
    except InvalidInput:
        shown = selector if len(selector) <= 30 else selector[:30] + "..."
        raise InvalidInput(
            f"invalid dataset version {shown!r}: use a number (1 to 2**63 - 1) or latest",
            {"field": "version"},
        ) from None


class DatasetService:
    def __init__(
        self,
        metadata: MetadataStore,
        artifacts: ArtifactStore,
        uploads: UploadService,
        auth: AuthService,
    ) -> None:
        self.metadata = metadata
        self.artifacts = artifacts
        self.uploads = uploads
        self.auth = auth

    def register(
        self,
        caller: Caller,
        source: Path,
        name: str,
        format: str | None = None,
        description: str = "",
        move: bool = False,
        known_digest: str | None = None,
    ) -> Dataset:
        """Check every row (a bad one is named by its line), then store and record it."""
        self.auth.authorize(caller, Action.DATASETS_REGISTER)
        latest = self._owned_latest(caller, check_model_name(name))
        if not source.is_file():
            raise InvalidInput(
                f"a dataset is one file; {source} is not a file", {"path": str(source)}
            )
        profile = profile_dataset(source, format)
        blob = self.artifacts.put_file(source, move=move, known_digest=known_digest)
        draft = DatasetDraft(
            name=name,
            format=profile.format,
            digest=blob.digest,
            size=blob.size,
            rows=profile.rows,
            columns=profile.columns,
            created_by=caller.name,
            description=description,
            replaces=latest,
        )
        audit = AuditDraft(
            caller.name, "datasets.register", name, {"digest": blob.digest, "rows": profile.rows}
        )
        try:
            return self.metadata.create_dataset(draft, audit)
        except BaseException:
            if blob.created and blob.digest not in self.metadata.referenced_digests():
                self.artifacts.delete(blob.digest)
            raise

    def _owned_latest(self, caller: Caller, name: str) -> int | None:
        """For a caller bound to what they own: the newest version (0: a new name),
        once checked that they own it; None for callers who may add to any dataset.

        The author of version 1 owns the dataset. Developers add versions only to
        datasets they own, since every pipeline naming one trains on its newest
        version; the store refuses the write if another version came meanwhile.
        """
        if not needs_ownership(caller, Action.DATASETS_REGISTER):
            return None
        versions = self.metadata.list_datasets(name)
        if not versions:
            return 0
        owner = versions[0].created_by
        self.auth.authorize_owned(caller, Action.DATASETS_REGISTER, owner, "datasets")
        return versions[-1].version

    def register_upload(
        self,
        caller: Caller,
        upload_id: str,
        name: str,
        format: str | None = None,
        description: str = "",
    ) -> Dataset:
        with self.uploads.consume(upload_id, caller.name) as (source, known):
            return self.register(
                caller, source, name, format, description, move=True, known_digest=known.get(source)
            )

    def get(self, caller: Caller, ref: str) -> Dataset:
        self.auth.authorize(caller, Action.DATASETS_READ)
        name, version = parse_dataset_ref(ref)
        return self.metadata.get_dataset(name, version)

    def list(self, caller: Caller, name: str | None = None) -> list[Dataset]:
        self.auth.authorize(caller, Action.DATASETS_READ)
        return self.metadata.list_datasets(check_model_name(name) if name else None)
