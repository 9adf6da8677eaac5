"""What governance records about a version: assessments, review requests, decisions, policies.

Every kind of evidence (a bias assessment, an explanation, an ethics review, the
compliance checks) is one `Assessment`: who ran it under which policy version, whether
it passed, its figures and a one-line summary. The approval workflow is a
`ReviewRequest` (pending -> approved | rejected; a new request re-opens it) and the
`Decision`s of its reviewers. The policy in force is the newest `PolicyVersion`.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import Field

from modelhub.domain.records import Record


class ReviewKind(StrEnum):
    """The evidence a policy may require before a stage (approval is the reviewers' part)."""

    APPROVAL = "approval"
    ETHICS = "ethics"
    BIAS = "bias"
    EXPLAINABILITY = "explainability"
    COMPLIANCE = "compliance"


# The kinds that are assessments (recorded evidence), as opposed to reviewers' decisions.
ASSESSMENT_KINDS = frozenset(
    {ReviewKind.ETHICS, ReviewKind.BIAS, ReviewKind.EXPLAINABILITY, ReviewKind.COMPLIANCE}
)


class Assessment(Record):
    """One piece of evidence about one version, recorded once and never changed."""

    id: int = 0
    model: str
    version: int
    kind: ReviewKind
    passed: bool
    policy_version: int
    summary: str
    # The figures the verdict rests on (JSON: numbers, strings, lists, dicts), shown in
    # `status`, the auditor's report and the model card.
    figures: dict[str, Any] = Field(default_factory=dict)
    # Files kept with it in the artifact store, by name (e.g. "chart.png" -> digest).
    attachments: dict[str, str] = Field(default_factory=dict)
    actor: str
    created_at: datetime


class ReviewState(StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"


class ReviewRequest(Record):
    """A version's request for approval; the newest one for a version is the one in force."""

    id: int = 0
    model: str
    version: int
    state: ReviewState = ReviewState.PENDING
    requested_by: str
    reviewers: list[str] = Field(default_factory=list)
    policy_version: int
    opened_at: datetime
    closed_at: datetime | None = None


class Decision(Record):
    """One reviewer's approve or reject on a request, with their role at the time."""

    id: int = 0
    request_id: int
    model: str
    version: int
    reviewer: str
    role: str
    approve: bool
    note: str | None = None
    created_at: datetime


class PolicyVersion(Record):
    """One version of the governance policy: its YAML text as given, and who set it."""

    version: int
    text: str
    digest: str
    created_by: str
    created_at: datetime


class ReviewSummary(Record):
    """A version's request in force with its decisions, as the review list shows it."""

    request: ReviewRequest
    decisions: list[Decision] = Field(default_factory=list)


class ReviewPage(Record):
    """One page of the versions under review or decided, and how many there are."""

    items: list[ReviewSummary]
    total: int
