"""The review workflow over real services: policy, requests, decisions, status, the gate."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from modelhub.domain.auth import Caller, Role
from modelhub.domain.enums import Approval, Stage
from modelhub.domain.governance import Assessment, ReviewKind, ReviewState
from modelhub.errors import IllegalTransition, InvalidInput, PermissionDenied
from modelhub.services import Services, build_services
from modelhub.services.registry import RegisterRequest
from modelhub.settings import Settings
from modelhub.stores.metadata.base import AuditDraft, AuditQuery
from tests.governance_policies import APPROVAL_ONLY
from tests.stores import Stores
from tests.unit.services.alert_receiver import receiver

ADMIN = Caller(name="admin", role=Role.ADMIN)
CAROL = Caller(name="carol", role=Role.DATA_SCIENTIST)
DAVE = Caller(name="dave", role=Role.DATA_SCIENTIST)
ALICE = Caller(name="alice", role=Role.DATA_SCIENTIST)  # creates the versions
DEV = Caller(name="dev", role=Role.DEVELOPER)


def register(
    services: Services, path: Path, name: str = "m", tags: dict[str, str] | None = None
) -> None:
    request = RegisterRequest(name=name, type="classification", tags=tags)
    services.registry.register(request, path, ALICE.name)
    services.registry.set_stage(name, 1, "staging", ALICE.name)


def actions(stores: Stores) -> list[str]:
    return [e.action for e in reversed(stores.metadata.list_audit(AuditQuery(limit=1000)))]


def record(
    stores: Stores, kind: ReviewKind, passed: bool, policy_version: int, summary: str
) -> None:
    assessment = Assessment(
        model="m",
        version=1,
        kind=kind,
        passed=passed,
        policy_version=policy_version,
        summary=summary,
        actor="carol",
        created_at=datetime.now(UTC),
    )
    stores.metadata.add_assessment(assessment, AuditDraft("carol", f"governance.{kind}", "m@1"))


# -- the policy ---------------------------------------------------------------------

BAD_POLICIES = {
    "format: 1\nstages: {production: {requires: [approval, astrology]}}\n": (
        "unknown review kind 'astrology'"
    ),
    "format: 1\nthresholds: {bias: {demographic_parity_difference: 1.5}}\n": (
        "thresholds.bias.demographic_parity_difference"
    ),
    "format: 1\nreviewers: 3\n": "reviewers: Extra inputs are not permitted",
    "format: 1\nstages: [unclosed\n": "not valid YAML",
    "- just\n- a list\n": "a policy is a mapping",
}


@pytest.mark.parametrize(("text", "problem"), BAD_POLICIES.items())
def test_a_bad_policy_is_refused_naming_the_problem_and_nothing_is_stored(
    services: Services, stores: Stores, text: str, problem: str
) -> None:
    before = actions(stores)
    with pytest.raises(InvalidInput, match=problem):
        services.policy.set(ADMIN, text)
    assert [v.version for v in services.policy.history(ADMIN)] == [0]
    assert actions(stores) == before


def test_only_admins_set_the_policy_and_each_set_is_a_version(
    services: Services, stores: Stores
) -> None:
    with pytest.raises(PermissionDenied):
        services.policy.set(CAROL, APPROVAL_ONLY)
    first = services.policy.set(ADMIN, APPROVAL_ONLY)
    assert first.version == 1 and services.policy.show(ADMIN).text == APPROVAL_ONLY
    assert [v.version for v in services.policy.history(ADMIN)] == [1, 0]
    assert actions(stores)[-1] == "governance.policy.set"


# -- decisions ----------------------------------------------------------------------


def test_the_creator_may_not_approve_unless_the_policy_says_so(
    services: Services, safetensors_file: Path
) -> None:
    register(services, safetensors_file)
    with pytest.raises(PermissionDenied, match="nobody approves a version they created"):
        services.reviews.decide(ALICE, "m", 1, True, "mine")
    assert services.registry.get("m@1").approval is Approval.PENDING
    services.policy.set(ADMIN, APPROVAL_ONLY + "approvals: {creator_may_approve: true}\n")
    assert services.reviews.decide(ALICE, "m", 1, True, "mine").approval is Approval.APPROVED


def test_a_reviewer_needs_a_role_the_policy_lists(
    services: Services, safetensors_file: Path
) -> None:
    register(services, safetensors_file)
    services.policy.set(ADMIN, APPROVAL_ONLY + "approvals: {roles: [admin]}\n")
    with pytest.raises(PermissionDenied, match="lets only admin approve"):
        services.reviews.decide(CAROL, "m", 1, True, None)
    with pytest.raises(PermissionDenied, match=r"may not models\.approve"):
        services.reviews.decide(DEV, "m", 1, True, None)
    assert services.reviews.decide(ADMIN, "m", 1, True, None).approval is Approval.APPROVED


def test_a_rejected_version_needs_a_new_request_before_an_approval(
    services: Services, stores: Stores, safetensors_file: Path
) -> None:
    register(services, safetensors_file)
    rejected = services.reviews.decide(CAROL, "m", 1, False, "labels leak")
    assert rejected.approval is Approval.REJECTED
    # The first decision opened the request itself, and said so in the audit log.
    [implicit] = stores.metadata.list_audit(AuditQuery(action="governance.request"))
    assert implicit.details["implicit"] is True
    with pytest.raises(IllegalTransition, match="was rejected; open a new request"):
        services.reviews.decide(DAVE, "m", 1, True, "fine by me")
    assert services.registry.get("m@1").approval is Approval.REJECTED
    reopened = services.reviews.request(ALICE, "m", 1, ["dave"])
    assert reopened.state is ReviewState.PENDING
    assert services.registry.get("m@1").approval is Approval.PENDING
    assert services.reviews.decide(DAVE, "m", 1, True, "fixed").approval is Approval.APPROVED
    requests = services.reviews.requests(ADMIN, "m", 1)
    assert [r.state for r in requests] == [ReviewState.APPROVED, ReviewState.REJECTED]


def test_two_approvals_under_a_high_risk_rule(
    services: Services, stores: Stores, safetensors_file: Path
) -> None:
    services.policy.set(
        ADMIN,
        APPROVAL_ONLY + "rules:\n  - name: high-risk\n    match: {tags: {risk: high}}\n"
        "    approvals: {count: 2}\n",
    )
    register(services, safetensors_file, tags={"risk": "high"})
    services.reviews.request(ALICE, "m", 1, ["carol", "dave"])
    after_one = services.reviews.decide(CAROL, "m", 1, True, "ok")
    assert after_one.approval is Approval.PENDING
    status = services.reviews.status(ADMIN, "m", 1)
    assert status.rules == ["high-risk"]
    assert status.missing == [
        "approval: approvals 1 of 2 (from admin, data_scientist); the creator alice cannot approve"
    ]
    with pytest.raises(IllegalTransition, match="must be approved before production"):
        services.registry.set_stage("m", 1, "production", ALICE.name)
    with pytest.raises(Exception, match="already decided"):
        services.reviews.decide(CAROL, "m", 1, True, "again")
    done = services.reviews.decide(DAVE, "m", 1, True, "ok too")
    assert done.approval is Approval.APPROVED and done.approval_note == "ok too"
    assert services.reviews.status(ADMIN, "m", 1).ready
    assert services.registry.set_stage("m", 1, "production", ALICE.name).stage is Stage.PRODUCTION
    with pytest.raises(IllegalTransition, match="in production; move it out"):
        services.reviews.request(ALICE, "m", 1)
    assert [a for a in actions(stores) if a.startswith(("governance.", "models.approve"))] == [
        "governance.policy.set",
        "governance.request",
        "governance.decision",
        "governance.decision",
        "governance.request.approved",
        "models.approve",
    ]


# -- status -------------------------------------------------------------------------


def test_status_says_exactly_what_is_missing(
    services: Services, stores: Stores, safetensors_file: Path
) -> None:
    register(services, safetensors_file)
    # The default policy: a classifier needs approval, compliance and an explanation.
    status = services.reviews.status(ADMIN, "m", 1)
    assert (status.policy_version, status.rules, status.ready) == (0, ["classifiers"], False)
    assert status.missing == [
        "approval: no review request yet; 1 approval(s) needed from admin, data_scientist",
        "compliance: no compliance assessment yet",
        "explainability: no explainability assessment yet",
    ]
    record(stores, ReviewKind.COMPLIANCE, True, 0, "all 7 checks passed")
    record(stores, ReviewKind.EXPLAINABILITY, True, 0, "convergence delta 0.01")
    record(stores, ReviewKind.EXPLAINABILITY, False, 0, "convergence delta 0.4 > 0.05")
    services.reviews.decide(CAROL, "m", 1, True, "ok")
    status = services.reviews.status(ADMIN, "m", 1)
    assert status.missing == [
        "explainability: the latest failed: convergence delta 0.4 > 0.05",
    ]
    assert [d.reviewer for d in status.decisions] == ["carol"]
    assert status.request is not None and status.request.state is ReviewState.APPROVED
    # A new policy version: the evidence gathered under version 0 no longer counts.
    text = services.policy.show(ADMIN, 0).text
    services.policy.set(ADMIN, text)
    record(stores, ReviewKind.EXPLAINABILITY, True, 1, "convergence delta 0.01")
    status = services.reviews.status(ADMIN, "m", 1)
    assert status.missing == [
        "compliance: the latest ran under policy version 0, not 1 (in force); run it again",
    ]
    assert services.reviews.status(ADMIN, "m", 1, "staging").ready
    with pytest.raises(InvalidInput, match="stage development has no gate"):
        services.reviews.status(ADMIN, "m", 1, "development")


def test_the_gate_refuses_production_and_the_override_is_audited(
    services: Services, stores: Stores, safetensors_file: Path
) -> None:
    register(services, safetensors_file)
    services.reviews.decide(CAROL, "m", 1, True, "ok")
    with pytest.raises(IllegalTransition) as refused:
        services.registry.set_stage("m", 1, "production", ALICE.name)
    assert refused.value.details["missing"] == [
        "compliance: no compliance assessment yet",
        "explainability: no explainability assessment yet",
    ]
    assert services.registry.get("m@1").stage is Stage.STAGING
    forced = services.registry_for(ADMIN).set_stage("m", 1, "production", force=True)
    assert forced.stage is Stage.PRODUCTION
    [event] = stores.metadata.list_audit(AuditQuery(action="models.stage", limit=1))
    assert event.details["override_missing"] == refused.value.details["missing"]


# -- notification -------------------------------------------------------------------


def test_a_request_notifies_the_reviewers_through_the_webhooks(
    tmp_path: Path, safetensors_file: Path
) -> None:
    with receiver() as hook:
        services = build_services(Settings(home=tmp_path / "home", alerts_webhooks=[hook.url]))
        try:
            register(services, safetensors_file)
            opened = services.reviews.request(ALICE, "m", 1, ["carol", "dave", "carol"])
            assert opened.reviewers == ["carol", "dave"]
            assert services.alerts.dispatch_once() == 1
            [sent] = hook.received
            alert = json.loads(sent.body)["alerts"][0]
            assert alert["labels"]["alertname"] == "review_requested"
            assert alert["labels"]["reviewers"] == "carol,dave"
            assert alert["labels"]["subject"] == "governance:m@1"
            with pytest.raises(InvalidInput):
                services.reviews.request(ALICE, "m", 1, ["not a user name!"])
            with pytest.raises(PermissionDenied, match="only models they own"):
                services.reviews.request(DEV, "m", 1)
        finally:
            services.close()
