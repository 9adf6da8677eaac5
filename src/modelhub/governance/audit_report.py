"""The auditor's report for one version: one Markdown document of everything governance knows.

Pure rendering over records the report service gathers: the version, the policy in
force and what it requires for production, every assessment with its figures, every
review request and decision, the lineage, and the audit events naming the version.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from modelhub.domain.governance import Assessment, Decision, PolicyVersion, ReviewRequest
from modelhub.domain.governance_policy import Requirements
from modelhub.domain.governance_status import GovernanceStatus
from modelhub.domain.lineage import LineageGraph
from modelhub.domain.records import AuditEvent, ModelVersion, RegisteredModel
from modelhub.governance.evidence_markdown import assessment_markdown
from modelhub.governance.lineage_graph import render_text
from modelhub.governance.markdown import cell, table


@dataclass(frozen=True)
class ReportInputs:
    model: RegisteredModel
    version: ModelVersion
    policy: PolicyVersion
    production: Requirements
    assessments: list[Assessment]
    requests: list[tuple[ReviewRequest, list[Decision]]]
    lineage: LineageGraph
    audit: list[AuditEvent] | None  # None: the reader may not see the audit log
    generated_at: datetime
    status: GovernanceStatus | None = None  # what production still needs, when known
    notes: list[str] = field(default_factory=list)


def _when(at: datetime | None) -> str:
    return at.isoformat(timespec="seconds") if at else "-"


def render_report(inputs: ReportInputs) -> str:
    v = inputs.version
    ref = f"{v.name}@{v.version}"
    lines = [
        f"# Auditor's report: {cell(ref)}",
        "",
        f"Generated {_when(inputs.generated_at)} by modelhub.",
        "",
        *_version(inputs),
        *_policy(inputs),
        *_status(inputs.status),
        *_assessments(inputs.assessments),
        *_reviews(inputs.requests),
        "## Lineage",
        "",
        "```",
        render_text(inputs.lineage).rstrip("\n").replace("```", "'''"),
        "```",
        "",
        *_audit(inputs.audit),
    ]
    lines += [f"> {cell(note)}" for note in inputs.notes]
    return "\n".join(lines).rstrip() + "\n"


def _version(inputs: ReportInputs) -> list[str]:
    v = inputs.version
    rows: list[list[Any]] = [
        ["model", v.name],
        ["version", v.version],
        ["type", v.type.value],
        ["framework", v.framework.value],
        ["artifact digest", f"sha256:{v.digest}"],
        ["files", len(v.files)],
        ["created by", v.created_by],
        ["created at", _when(v.created_at)],
        ["owner", inputs.model.owner],
        ["license", inputs.model.license or "none recorded"],
        ["stage", v.stage.value],
        ["approval", v.approval.value],
        ["trusted (pickle allowed)", "yes" if v.trusted else "no"],
    ]
    return ["## The version", "", *table(["field", "value"], rows), ""]


def _bars(values: dict[str, object]) -> str:
    return ", ".join(f"{name.replace('_', ' ')} {value}" for name, value in values.items())


def _policy(inputs: ReportInputs) -> list[str]:
    need = inputs.production
    approvals = need.approvals
    explain = need.thresholds.explainability
    lines = [
        "## The policy in force",
        "",
        f"Policy version {inputs.policy.version} (sha256:{inputs.policy.digest}), set by "
        f"{cell(inputs.policy.created_by)} on {_when(inputs.policy.created_at)}.",
        "",
        "What it requires before production:",
        "",
        f"- reviews: {', '.join(k.value for k in need.requires) or 'none'}",
        f"- approvals: {approvals.count} from {', '.join(r.value for r in approvals.roles)}; "
        + ("the creator may approve" if approvals.creator_may_approve else "never the creator"),
        f"- bias thresholds: {_bars(need.thresholds.bias.model_dump(mode='json'))}",
        f"- explainability thresholds: {_bars(explain.model_dump(mode='json'))}",
        f"- licenses allowed: {cell(', '.join(need.licenses))}",
    ]
    if need.rules:
        lines.append(f"- rules that matched: {cell(', '.join(need.rules))}")
    return [*lines, ""]


def _status(status: GovernanceStatus | None) -> list[str]:
    if status is None:
        return []
    verdict = "ready" if status.ready else "NOT ready"
    rules = f" (rules: {cell(', '.join(status.rules))})" if status.rules else ""
    lines = [
        "## What the policy still needs",
        "",
        f"{cell(status.model)}@{status.version} is **{verdict}** for {status.stage.value} under "
        f"policy version {status.policy_version}{rules}.",
        "",
    ]
    rows: list[list[Any]] = [
        [r.kind.value, "met" if r.met else "missing", r.reason, r.assessment_id or ""]
        for r in status.requirements
    ]
    if rows:
        lines += [*table(["requirement", "state", "why", "assessment"], rows), ""]
    else:
        lines += ["The policy requires no review before this stage.", ""]
    return lines


def _assessments(assessments: list[Assessment]) -> list[str]:
    lines = ["## Assessments", ""]
    if not assessments:
        return [*lines, "No assessment is recorded for this version.", ""]
    rows: list[list[Any]] = [
        [
            a.kind.value,
            "passed" if a.passed else "failed",
            a.policy_version,
            a.actor,
            _when(a.created_at),
            a.summary,
        ]
        for a in assessments
    ]
    lines += [*table(["kind", "verdict", "policy version", "by", "when", "summary"], rows), ""]
    for a in assessments:
        lines += [
            f"### {a.kind.value} #{a.id}: {'passed' if a.passed else 'failed'}",
            "",
            f"Run by {cell(a.actor)} on {_when(a.created_at)} under policy version "
            f"{a.policy_version}. {cell(a.summary)}",
            "",
            *assessment_markdown(a, level=4),
        ]
        if a.attachments:
            lines.append("")
            lines += [
                f"- attachment {cell(name)}: sha256:{digest}"
                for name, digest in sorted(a.attachments.items())
            ]
        lines.append("")
    return lines


def _reviews(requests: list[tuple[ReviewRequest, list[Decision]]]) -> list[str]:
    lines = ["## Reviews and decisions", ""]
    if not requests:
        return [*lines, "No review was requested for this version.", ""]
    for request, decisions in requests:
        reviewers = ", ".join(request.reviewers) or "any reviewer"
        lines += [
            f"### Request #{request.id}: {request.state.value}",
            "",
            f"Requested by {cell(request.requested_by)} on {_when(request.opened_at)} under policy "
            f"version {request.policy_version}; reviewers: {cell(reviewers)}; "
            f"closed {_when(request.closed_at)}.",
            "",
        ]
        if decisions:
            rows = [
                [
                    d.reviewer,
                    d.role,
                    "approve" if d.approve else "reject",
                    _when(d.created_at),
                    d.note or "",
                ]
                for d in decisions
            ]
            lines += table(["reviewer", "role", "decision", "when", "note"], rows)
        else:
            lines.append("No decision yet.")
        lines.append("")
    return lines


def _audit(events: list[AuditEvent] | None) -> list[str]:
    lines = ["## Audit events", ""]
    if events is None:
        return [*lines, "Shown only to those who may read the audit log (admins).", ""]
    if not events:
        return [*lines, "No audit event names this version.", ""]
    rows: list[list[Any]] = [
        [e.id, _when(e.at), e.actor, e.action, e.details]
        for e in sorted(events, key=lambda e: e.id)
    ]
    return [*lines, *table(["id", "when", "actor", "action", "details"], rows), ""]
