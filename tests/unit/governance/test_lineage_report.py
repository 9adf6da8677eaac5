"""The auditor's report rendered from records: every section, every figure, every decision."""

from __future__ import annotations

from dataclasses import replace

from modelhub.domain.enums import Stage
from modelhub.domain.governance import (
    Decision,
    PolicyVersion,
    ReviewKind,
    ReviewRequest,
    ReviewState,
)
from modelhub.domain.governance_policy import parse_policy
from modelhub.domain.governance_status import GovernanceStatus, RequirementStatus, summarize
from modelhub.domain.records import AuditEvent
from modelhub.governance.audit_report import ReportInputs, render_report
from modelhub.governance.lineage_graph import build_lineage
from modelhub.services.governance.policy import default_policy_text
from tests.unit.governance.lineage_records import (
    AT,
    assessment,
    bias_figures,
    explanation_figures,
    model,
    version,
)


def test_the_report_holds_version_policy_assessments_reviews_lineage_and_audit() -> None:
    text = default_policy_text()
    policy = PolicyVersion(
        version=0, text=text, digest="e" * 64, created_by="system", created_at=AT
    )
    v = version("intents", 2, source_run="17", datasets=["ab" * 32], dataset_versions=["chats@4"])
    request = ReviewRequest(
        id=5,
        model="intents",
        version=2,
        state=ReviewState.REJECTED,
        requested_by="carol",
        reviewers=["erin"],
        policy_version=0,
        opened_at=AT,
        closed_at=AT,
    )
    decision = Decision(
        id=1,
        request_id=5,
        model="intents",
        version=2,
        reviewer="erin",
        role="admin",
        approve=False,
        note="bias | too high",
        created_at=AT,
    )
    events = [
        AuditEvent(id=9, actor="dana", action="governance.bias", target="intents@2", at=AT),
        AuditEvent(id=3, actor="carol", action="models.register", target="intents@2", at=AT),
    ]
    bias = assessment(ReviewKind.BIAS, bias_figures(), passed=False)
    explained = assessment(ReviewKind.EXPLAINABILITY, explanation_figures())
    needs = [
        RequirementStatus(kind=ReviewKind.APPROVAL, met=False, reason="request 5 rejected"),
        RequirementStatus(
            kind=ReviewKind.BIAS, met=False, reason="the latest failed: dpd", assessment_id=7
        ),
    ]
    missing, ready = summarize(needs)
    status = GovernanceStatus(
        model="intents",
        version=2,
        stage=Stage.PRODUCTION,
        policy_version=0,
        rules=["classifiers"],
        requirements=needs,
        missing=missing,
        ready=ready,
    )
    inputs = ReportInputs(
        model=model("intents", license="mit"),
        version=v,
        policy=policy,
        production=parse_policy(text).requirements(v.type, {}, Stage.PRODUCTION),
        assessments=[bias, explained],
        requests=[(request, [decision])],
        lineage=build_lineage(v, lambda ref: None, lambda _: [], lambda _: []),
        audit=events,
        generated_at=AT,
        status=status,
    )
    report = render_report(inputs)
    headings = [line for line in report.splitlines() if line.startswith("## ")]
    assert headings == [
        "## The version",
        "## The policy in force",
        "## What the policy still needs",
        "## Assessments",
        "## Reviews and decisions",
        "## Lineage",
        "## Audit events",
    ]
    assert f"| artifact digest | sha256:{v.digest} |" in report
    assert "| created by | carol |" in report
    assert "Policy version 0 (sha256:" + "e" * 64 in report
    assert "- reviews: " in report and "- licenses allowed: " in report
    assert "| bias | failed | 3 | dana |" in report
    assert "intents@2 is **NOT ready** for production under policy version 0" in report
    assert "| approval | missing | request 5 rejected |  |" in report
    assert "| bias | missing | the latest failed: dpd | 7 |" in report
    assert "#### Grouping: sex" in report and "| demographic parity difference |" in report
    assert "#### Most important features (top 2 of 2)" in report
    assert "| 1 | income | 0.21 | 0.02 |" in report
    assert "### Request #5: rejected" in report
    assert "| erin | admin | reject |" in report and "bias \\| too high" in report
    assert "trained-on: dataset chats@4" in report
    audit_rows = [line for line in report.splitlines() if line.startswith(("| 3 |", "| 9 |"))]
    assert [row.split("|")[4].strip() for row in audit_rows] == [
        "models.register",
        "governance.bias",
    ]


def test_a_version_with_no_governance_records_says_so_in_each_section() -> None:
    text = default_policy_text()
    v = version("plain", 1)
    inputs = ReportInputs(
        model=model("plain"),
        version=v,
        policy=PolicyVersion(version=0, text=text, digest="0", created_by="s", created_at=AT),
        production=parse_policy(text).requirements(v.type, {}, Stage.PRODUCTION),
        assessments=[],
        requests=[],
        lineage=build_lineage(v, lambda ref: None, lambda _: [], lambda _: []),
        audit=[],
        generated_at=AT,
    )
    report = render_report(inputs)
    assert "No assessment is recorded for this version." in report
    assert "No review was requested for this version." in report
    assert "(none recorded)" in report
    assert "No audit event names this version." in report
    assert "Shown only to those who may read the audit log" in render_report(
        replace(inputs, audit=None)
    )
