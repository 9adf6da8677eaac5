"""What the policy in force needs of one version before one stage, and what is missing.

`GovernanceStatus` is the answer `governance status` prints and the production gate
reads: one `RequirementStatus` per required review kind, each met or missing with the
reason in words, the rules that matched, and the review request with its decisions.
"""

from __future__ import annotations

from pydantic import Field

from modelhub.domain.enums import Stage
from modelhub.domain.governance import Assessment, Decision, ReviewKind, ReviewRequest
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


SUMMARY_CHARS = 300  # of an assessment's summary quoted in a reason


def assessment_requirement(
    kind: ReviewKind, latest: Assessment | None, policy_version: int
) -> RequirementStatus:
    """Whether the evidence of one kind counts, the one rule `status`, the production gate
    and the compliance check all apply: the latest assessment of its kind passed, and ran
    under the policy version in force (`latest` is that latest one, or None)."""
    if latest is None:
        return RequirementStatus(kind=kind, met=False, reason=f"no {kind.value} assessment yet")
    summary = latest.summary[:SUMMARY_CHARS]
    if not latest.passed:
        return RequirementStatus(
            kind=kind, met=False, reason=f"the latest failed: {summary}", assessment_id=latest.id
        )
    if latest.policy_version != policy_version:
        return RequirementStatus(
            kind=kind,
            met=False,
            reason=(
                f"the latest ran under policy version {latest.policy_version}, "
                f"not {policy_version} (in force); run it again"
            ),
            assessment_id=latest.id,
        )
    return RequirementStatus(
        kind=kind, met=True, reason=f"passed: {summary}", assessment_id=latest.id
    )
