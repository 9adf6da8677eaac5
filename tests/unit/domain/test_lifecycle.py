"""Stage and approval state machines: every move, allowed or not."""

from __future__ import annotations

import itertools

import pytest

from modelhub.domain.enums import Approval, Stage
from modelhub.domain.lifecycle import check_approval_move, check_stage_move
from modelhub.errors import IllegalTransition

D, S, P, X = Stage.DEVELOPMENT, Stage.STAGING, Stage.PRODUCTION, Stage.DEPRECATED
ALLOWED_STAGE = {(D, S), (D, X), (S, P), (S, D), (S, X), (P, S), (P, X), (X, D)}
ALL_STAGE = set(itertools.product(Stage, Stage))


@pytest.mark.parametrize(("current", "target"), sorted(ALLOWED_STAGE))
def test_allowed_stage_moves_with_approval(current: Stage, target: Stage) -> None:
    check_stage_move(current, target, Approval.APPROVED)


@pytest.mark.parametrize(("current", "target"), sorted(ALL_STAGE - ALLOWED_STAGE))
@pytest.mark.parametrize("approval", list(Approval))
def test_forbidden_stage_moves(current: Stage, target: Stage, approval: Approval) -> None:
    with pytest.raises(IllegalTransition) as info:
        check_stage_move(current, target, approval)
    assert info.value.details["from"] == current.value
    assert info.value.details["to"] == target.value


@pytest.mark.parametrize(
    ("current", "target"), sorted(m for m in ALLOWED_STAGE if m[1] != Stage.PRODUCTION)
)
@pytest.mark.parametrize("approval", [Approval.PENDING, Approval.REJECTED])
def test_unapproved_versions_move_freely_outside_production(
    current: Stage, target: Stage, approval: Approval
) -> None:
    check_stage_move(current, target, approval)


@pytest.mark.parametrize("approval", [Approval.PENDING, Approval.REJECTED])
def test_production_needs_approval(approval: Approval) -> None:
    with pytest.raises(IllegalTransition) as info:
        check_stage_move(Stage.STAGING, Stage.PRODUCTION, approval)
    assert info.value.details["approval"] == approval.value


PE, AP, RE = Approval.PENDING, Approval.APPROVED, Approval.REJECTED
ALLOWED_APPROVAL = {(PE, AP), (PE, RE), (AP, RE), (RE, AP)}


@pytest.mark.parametrize(("current", "target"), sorted(ALLOWED_APPROVAL))
@pytest.mark.parametrize("stage", [D, S, X])
def test_allowed_approval_moves(current: Approval, target: Approval, stage: Stage) -> None:
    check_approval_move(current, target, stage)


@pytest.mark.parametrize(
    ("current", "target"), sorted(set(itertools.product(Approval, Approval)) - ALLOWED_APPROVAL)
)
def test_forbidden_approval_moves(current: Approval, target: Approval) -> None:
    with pytest.raises(IllegalTransition):
        check_approval_move(current, target, Stage.DEVELOPMENT)


def test_rejecting_a_production_version_is_refused() -> None:
    with pytest.raises(IllegalTransition) as info:
        check_approval_move(Approval.APPROVED, Approval.REJECTED, Stage.PRODUCTION)
    assert info.value.details["stage"] == "production"


def test_reapproving_in_production_is_not_a_move() -> None:
    with pytest.raises(IllegalTransition):
        check_approval_move(Approval.APPROVED, Approval.APPROVED, Stage.PRODUCTION)
