"""State machines for a version's stage and approval. Illegal moves raise."""

from __future__ import annotations

from modelhub.domain.enums import Approval, Stage
from modelhub.errors import IllegalTransition

STAGE_MOVES: dict[Stage, frozenset[Stage]] = {
    Stage.DEVELOPMENT: frozenset({Stage.STAGING, Stage.DEPRECATED}),
    Stage.STAGING: frozenset({Stage.PRODUCTION, Stage.DEVELOPMENT, Stage.DEPRECATED}),
    Stage.PRODUCTION: frozenset({Stage.STAGING, Stage.DEPRECATED}),
    Stage.DEPRECATED: frozenset({Stage.DEVELOPMENT}),
}

APPROVAL_MOVES: dict[Approval, frozenset[Approval]] = {
    Approval.PENDING: frozenset({Approval.APPROVED, Approval.REJECTED}),
    Approval.APPROVED: frozenset({Approval.REJECTED}),
    Approval.REJECTED: frozenset({Approval.APPROVED}),
}


def check_stage_move(current: Stage, target: Stage, approval: Approval) -> None:
    if target == current:
        raise IllegalTransition(
            f"version is already in stage {current.value}",
            {"from": current.value, "to": target.value},
        )
    if target not in STAGE_MOVES[current]:
        allowed = ", ".join(sorted(s.value for s in STAGE_MOVES[current])) or "none"
        raise IllegalTransition(
            f"cannot move from {current.value} to {target.value}; allowed: {allowed}",
            {"from": current.value, "to": target.value},
        )
    if target == Stage.PRODUCTION and approval != Approval.APPROVED:
        raise IllegalTransition(
            f"a version must be approved before production (approval is {approval.value})",
            {"from": current.value, "to": target.value, "approval": approval.value},
        )


def check_approval_move(current: Approval, target: Approval, stage: Stage) -> None:
    if target not in APPROVAL_MOVES[current]:
        raise IllegalTransition(
            f"cannot change approval from {current.value} to {target.value}",
            {"from": current.value, "to": target.value},
        )
    if target == Approval.REJECTED and stage == Stage.PRODUCTION:
        raise IllegalTransition(
            "cannot reject a version while it is in production; move it out first",
            {"stage": stage.value},
        )
