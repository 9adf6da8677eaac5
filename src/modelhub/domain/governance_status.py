"""What the policy in force needs of one version before one stage, and what is missing.

`GovernanceStatus` is the answer `governance status` prints and the production gate
reads: one `RequirementStatus` per required review kind, each met or missing with the
reason in words, the rules that matched, and the review request with its decisions.
"""

from __future__ import annotations

from pydantic import Field

from modelhub.domain.enums import Stage
from modelhub.domain.governance import Decision, ReviewKind, ReviewRequest
from modelhub.domain.records import Record


class RequirementStatus(Record):
    """One review kind the stage requires: met or not, and why in one line."""

    kind: ReviewKind
    met: bool
    reason: str
    assessment_id: int | None = None


class GovernanceStatus(Record):
    model: str
    version: int
    stage: Stage
    policy_version: int
    rules: list[str] = Field(default_factory=list)
    requirements: list[RequirementStatus] = Field(default_factory=list)
    request: ReviewRequest | None = None
    decisions: list[Decision] = Field(default_factory=list)
    # Each unmet requirement as "kind: reason"; empty (ready) when the stage may be entered.
    missing: list[str] = Field(default_factory=list)
    ready: bool = True


def summarize(requirements: list[RequirementStatus]) -> tuple[list[str], bool]:
    """The `missing` lines and `ready` flag of a status with these requirements."""
    missing = [f"{r.kind.value}: {r.reason}" for r in requirements if not r.met]
    return missing, not missing
