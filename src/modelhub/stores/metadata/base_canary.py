"""What the metadata store keeps for automated canary analysis: its decisions."""

from __future__ import annotations

import abc
from typing import TYPE_CHECKING

from modelhub.domain.canary import CanaryDecision

if TYPE_CHECKING:  # base.py builds MetadataStore on this mixin
    from modelhub.stores.metadata.base import AuditDraft


class CanaryDecisionStore(abc.ABC):
    @abc.abstractmethod
    def add_canary_decision(self, decision: CanaryDecision, audit: AuditDraft) -> CanaryDecision:
        """Record `decision` with its audit event, atomically; Conflict when the same
        canary (deployment and start) already has one, so two servers never both act."""

    @abc.abstractmethod
    def list_canary_decisions(self, deployment: str, limit: int = 20) -> list[CanaryDecision]:
        """A deployment's decisions, newest first (none: an empty list)."""
