"""The drift part of the metadata store interface: one reference per model version."""

from __future__ import annotations

import abc
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from modelhub.domain.drift import DriftReference, ReferenceStatus

if TYPE_CHECKING:
    from modelhub.stores.metadata.base import AuditDraft


@dataclass(frozen=True)
class ReferenceDraft:
    model: str
    version: int
    status: ReferenceStatus
    source: str
    created_by: str
    digest: str | None = None
    rows: int = 0
    columns: list[str] = field(default_factory=list)
    error: str | None = None


class DriftStore(abc.ABC):
    @abc.abstractmethod
    def put_drift_reference(self, draft: ReferenceDraft, audit: AuditDraft) -> DriftReference:
        """Set (or replace) the version's reference; NotFound if the version is not there."""

    @abc.abstractmethod
    def get_drift_reference(self, model: str, version: int) -> DriftReference:
        """NotFound when the version has no reference (or does not exist)."""

    @abc.abstractmethod
    def drift_reference_digests(self) -> set[str]:
        """The profile artifacts references point at, so that GC keeps them."""
