"""What the metadata store keeps for governance: policy versions, assessments, reviews."""

from __future__ import annotations

import abc
from datetime import datetime
from typing import TYPE_CHECKING

from modelhub.domain.enums import Approval
from modelhub.domain.governance import (
    Assessment,
    Decision,
    PolicyVersion,
    ReviewKind,
    ReviewRequest,
    ReviewState,
)

if TYPE_CHECKING:  # base.py builds MetadataStore on this mixin
    from modelhub.stores.metadata.base import AuditDraft


class GovernanceStore(abc.ABC):
    # -- the policy ------------------------------------------------------------------

    @abc.abstractmethod
    def add_policy_version(
        self, text: str, digest: str, actor: str, at: datetime, audit: AuditDraft
    ) -> PolicyVersion:
        """Store the next policy version (1, 2, ...) with its audit event, atomically;
        Conflict when another writer took the same number first."""

    @abc.abstractmethod
    def current_policy_version(self) -> PolicyVersion | None:
        """The newest policy version, or None before any was stored."""

    @abc.abstractmethod
    def get_policy_version(self, version: int) -> PolicyVersion:
        """One policy version; NotFound when there is none with that number."""

    @abc.abstractmethod
    def list_policy_versions(self, limit: int = 50) -> list[PolicyVersion]:
        """Policy versions, newest first."""

    # -- assessments -----------------------------------------------------------------

    @abc.abstractmethod
    def add_assessment(self, assessment: Assessment, audit: AuditDraft) -> Assessment:
        """Record `assessment` (its id is given by the store) with its audit event."""

    @abc.abstractmethod
    def list_assessments(
        self, model: str, version: int, kind: ReviewKind | None = None, limit: int = 100
    ) -> list[Assessment]:
        """A version's assessments, newest first, of one kind or all."""

    @abc.abstractmethod
    def assessment_digests(self) -> set[str]:
        """Digests of every assessment's attachments (the artifact GC keeps them)."""

    # -- reviews ---------------------------------------------------------------------

    @abc.abstractmethod
    def open_review_request(self, request: ReviewRequest, audit: AuditDraft) -> ReviewRequest:
        """Record a new request (pending) for a version and set the version's approval to
        pending, atomically: a new request re-opens a decided version."""

    @abc.abstractmethod
    def latest_review_request(self, model: str, version: int) -> ReviewRequest | None:
        """The request in force for a version (the newest), or None."""

    @abc.abstractmethod
    def list_review_requests(self, model: str, version: int) -> list[ReviewRequest]:
        """A version's requests, newest first."""

    @abc.abstractmethod
    def list_latest_review_requests(
        self, offset: int, limit: int
    ) -> tuple[list[ReviewRequest], int]:
        """The request in force of every version that has one, pending first and then
        the most recently decided, one page of them, and how many there are in all."""

    @abc.abstractmethod
    def list_decisions_of(self, request_ids: list[int]) -> list[Decision]:
        """The decisions on any of these requests, oldest first (one query for a page)."""

    @abc.abstractmethod
    def add_decision(self, decision: Decision, audit: AuditDraft) -> Decision:
        """Record one reviewer's decision; Conflict when they already decided on it."""

    @abc.abstractmethod
    def list_decisions(self, request_id: int) -> list[Decision]:
        """A request's decisions, oldest first."""

    @abc.abstractmethod
    def close_review_request(
        self,
        request_id: int,
        state: ReviewState,
        approval: Approval,
        at: datetime,
        audit: AuditDraft,
    ) -> ReviewRequest:
        """Close a pending request as approved or rejected and set its version's approval,
        atomically; IllegalTransition when it is no longer pending."""
