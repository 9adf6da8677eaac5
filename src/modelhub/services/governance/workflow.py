"""The review workflow and the gate: requests, reviewers' decisions, and what is missing.

A request opens a review of one version (pending); reviewers approve or reject it under
the policy in force (their role must be one the policy lists, the creator may not
approve unless the policy says so); one rejection closes it rejected, `approvals.count`
approvals close it approved, and the store sets the version's approval with it. A new
request re-opens a decided version. Reviewers hear of a request through the alert
webhooks: it fires the built-in `review_requested` alert on the subject
`governance:NAME@V`, resolved when the request closes.

`status` answers, for one version and stage, what the policy needs, what is done and
exactly what is missing; `missing` is the same answer as the gate of `models stage`
and `deploy` reads it (services below this one receive it as a plain callable).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from modelhub.domain.auth import Action, Caller, check_not_own_approval, check_user_name
from modelhub.domain.enums import Approval, Stage, parse_enum
from modelhub.domain.governance import (
    ASSESSMENT_KINDS,
    Assessment,
    Decision,
    ReviewKind,
    ReviewPage,
    ReviewRequest,
    ReviewState,
    ReviewSummary,
)
from modelhub.domain.governance_policy import GATED_STAGES, Requirements
from modelhub.domain.governance_status import (
    GovernanceStatus,
    RequirementStatus,
    assessment_requirement,
    summarize,
)
from modelhub.domain.lifecycle import check_approval_move
from modelhub.domain.limits import check_text
from modelhub.domain.records import ModelVersion
from modelhub.errors import IllegalTransition, InvalidInput, PermissionDenied
from modelhub.services.auth import AuthService
from modelhub.services.governance.assessments import AssessmentLog
from modelhub.services.governance.policy import ActivePolicy, PolicyService
from modelhub.services.monitoring.alerts import AlertService
from modelhub.services.registry import RegistryService
from modelhub.stores.metadata.base import AuditDraft, MetadataStore

REVIEW_RULE = "review_requested"  # the built-in alert rule a request fires
MAX_REVIEWERS = 20
MAX_NOTE = 2000
MAX_PAGE = 500  # review requests listed at once


def review_subject(name: str, version: int) -> str:
    return f"governance:{name}@{version}"


class ReviewService:
    def __init__(
        self,
        metadata: MetadataStore,
        registry: RegistryService,
        policy: PolicyService,
        assessments: AssessmentLog,
        auth: AuthService,
        alerts: AlertService,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.metadata = metadata
        self.registry = registry
        self.policy = policy
        self.assessments = assessments
        self.auth = auth
        self.alerts = alerts
        self.clock = clock

    # -- requests ------------------------------------------------------------------

    def request(
        self, caller: Caller, name: str, version: int, reviewers: list[str] | None = None
    ) -> ReviewRequest:
        """Open a review of `name@version` (re-opening a decided one), audited, and
        notify the reviewers through the alert webhooks. Writers may ask; developers
        only for models they own."""
        self.auth.authorize_owned(caller, Action.GOVERNANCE_ASSESS, self.registry.model_owner(name))
        found = self.registry.get(f"{name}@{version}")
        named = _check_reviewers(reviewers or [])
        if found.stage is Stage.PRODUCTION:
            raise IllegalTransition(
                f"{name}@{version} is in production; move it out before re-opening its review",
                {"ref": f"{name}@{version}", "stage": found.stage.value},
            )
        return self._open(caller.name, found, named, implicit=False)

    def _open(
        self, actor: str, version: ModelVersion, reviewers: list[str], implicit: bool
    ) -> ReviewRequest:
        active = self.policy.current()
        ref = f"{version.name}@{version.version}"
        previous = self.metadata.latest_review_request(version.name, version.version)
        details: dict[str, object] = {
            "reviewers": reviewers,
            "policy_version": active.version,
            "implicit": implicit,
        }
        if previous is not None:
            details["reopens"] = previous.id
        opened = self.metadata.open_review_request(
            ReviewRequest(
                model=version.name,
                version=version.version,
                requested_by=actor,
                reviewers=reviewers,
                policy_version=active.version,
                opened_at=self.clock(),
            ),
            AuditDraft(actor, "governance.request", ref, details),
        )
        who = ", ".join(reviewers) or "any reviewer the policy allows"
        self.alerts.resolve(review_subject(version.name, version.version), REVIEW_RULE)
        self.alerts.fire(
            review_subject(version.name, version.version),
            REVIEW_RULE,
            "info",
            f"{actor} asks {who} to review {ref} (request {opened.id})",
            {
                "model": version.name,
                "version": str(version.version),
                "request": str(opened.id),
                "reviewers": ",".join(reviewers),
            },
        )
        return opened

    def requests(self, caller: Caller, name: str, version: int) -> list[ReviewRequest]:
        self.auth.authorize(caller, Action.GOVERNANCE_READ)
        self.registry.get(f"{name}@{version}")
        return self.metadata.list_review_requests(name, version)

    def reviews(self, caller: Caller, offset: int = 0, limit: int = 50) -> ReviewPage:
        """Every version's request in force, pending ones first, then the most recently
        decided, one page of them with their decisions."""
        self.auth.authorize(caller, Action.GOVERNANCE_READ)
        if not 1 <= limit <= MAX_PAGE:
            raise InvalidInput(f"limit must be 1-{MAX_PAGE}", {"field": "limit"})
        if offset < 0:
            raise InvalidInput("offset must be 0 or more", {"field": "offset"})
        requests, total = self.metadata.list_latest_review_requests(offset, limit)
        decisions = self.metadata.list_decisions_of([r.id for r in requests])
        return ReviewPage(
            items=[
                ReviewSummary(request=r, decisions=[d for d in decisions if d.request_id == r.id])
                for r in requests
            ],
            total=total,
        )

    def latest_assessments(
        self, caller: Caller, name: str, version: int
    ) -> dict[ReviewKind, Assessment]:
        """The newest assessment of each kind the version has (the evidence `status`
        judges); NotFound for an unknown version."""
        self.auth.authorize(caller, Action.GOVERNANCE_READ)
        found = self.registry.get(f"{name}@{version}")
        latest = {kind: self.assessments.latest(found, kind) for kind in sorted(ASSESSMENT_KINDS)}
        return {kind: a for kind, a in latest.items() if a is not None}

    # -- decisions -----------------------------------------------------------------

    def decide(
        self, caller: Caller, name: str, version: int, approve: bool, note: str | None
    ) -> ModelVersion:
        """Record `caller`'s decision on the version's request in force (opening one,
        audited, when there is none) and close the request when it is decided.

        PermissionDenied when the caller lacks models.approve or a role the policy's
        approvals list, or approves a version they created where the policy forbids
        it; IllegalTransition when approving a rejected request (open a new one) or
        deciding what is already decided; Conflict on a second decision by one reviewer.
        """
        self.auth.authorize(caller, Action.MODELS_APPROVE)
        current = self.registry.get(f"{name}@{version}")
        ref = f"{name}@{version}"
        note = _check_note(note)
        active = self.policy.current()
        approvals = self._requirements(active, current, Stage.PRODUCTION).approvals
        if caller.role not in approvals.roles:
            roles = ", ".join(role.value for role in approvals.roles)
            raise PermissionDenied(
                f"{caller.name} ({caller.role.value}) may not decide on {ref}: the policy "
                f"(version {active.version}) lets only {roles} approve",
                {
                    "action": Action.MODELS_APPROVE.value,
                    "roles": [r.value for r in approvals.roles],
                },
            )
        if approve and not approvals.creator_may_approve:
            check_not_own_approval(caller.name, current.created_by, ref)
        request = self.metadata.latest_review_request(name, version)
        target = Approval.APPROVED if approve else Approval.REJECTED
        if request is None or (request.state is ReviewState.APPROVED and not approve):
            # The first decision on a version opens its request; a rejection of an
            # approved version re-opens it to be rejected (both audited as such).
            check_approval_move(current.approval, target, current.stage)
            request = self._open(caller.name, current, [], implicit=True)
        elif request.state is ReviewState.REJECTED:
            if approve:
                raise IllegalTransition(
                    f"{ref}'s review request {request.id} was rejected; open a new request "
                    f"(modelhub governance request {ref}) before approving it",
                    {"ref": ref, "request_id": request.id, "state": request.state.value},
                )
            check_approval_move(current.approval, target, current.stage)
        elif request.state is ReviewState.APPROVED:
            check_approval_move(current.approval, target, current.stage)
        decision = self.metadata.add_decision(
            Decision(
                request_id=request.id,
                model=name,
                version=version,
                reviewer=caller.name,
                role=caller.role.value,
                approve=approve,
                note=note,
                created_at=self.clock(),
            ),
            AuditDraft(
                caller.name,
                "governance.decision",
                ref,
                {"request_id": request.id, "approve": approve, "note": note or ""},
            ),
        )
        approvers = [d.reviewer for d in self.metadata.list_decisions(request.id) if d.approve]
        if approve and len(approvers) < approvals.count:
            return self.registry.get(ref)
        state = ReviewState.APPROVED if approve else ReviewState.REJECTED
        self.metadata.close_review_request(
            request.id,
            state,
            target,
            decision.created_at,
            AuditDraft(
                caller.name,
                f"governance.request.{state.value}",
                ref,
                {"request_id": request.id, "approvers": approvers, "needed": approvals.count},
            ),
        )
        self.alerts.resolve(review_subject(name, version), REVIEW_RULE)
        return self.metadata.update_version(
            name,
            version,
            {"approval_note": note},
            AuditDraft(
                caller.name,
                f"models.{'approve' if approve else 'reject'}",
                ref,
                {"note": note or "", "request_id": request.id, "approvers": approvers},
            ),
        )

    # -- status and the gate -------------------------------------------------------

    def status(
        self, caller: Caller, name: str, version: int, stage: str = "production"
    ) -> GovernanceStatus:
        self.auth.authorize(caller, Action.GOVERNANCE_READ)
        target = parse_enum(Stage, stage, "stage")
        if target not in GATED_STAGES:
            gated = ", ".join(s.value for s in GATED_STAGES)
            raise InvalidInput(
                f"stage {target.value} has no gate; ask about {gated}", {"field": "stage"}
            )
        return self.evaluate(self.registry.get(f"{name}@{version}"), target)

    def missing(self, version: ModelVersion, stage: Stage) -> list[str]:
        """What the policy still needs before `version` may enter `stage` (the gate)."""
        if stage not in GATED_STAGES:
            return []
        return self.evaluate(version, stage).missing

    def evaluate(self, version: ModelVersion, stage: Stage) -> GovernanceStatus:
        active = self.policy.current()
        needs = self._requirements(active, version, stage)
        request = self.metadata.latest_review_request(version.name, version.version)
        decisions = self.metadata.list_decisions(request.id) if request is not None else []
        items = [
            self._approval(version, needs, request, decisions)
            if kind is ReviewKind.APPROVAL
            else assessment_requirement(
                kind, self.assessments.latest(version, kind), active.version
            )
            for kind in needs.requires
        ]
        missing, ready = summarize(items)
        return GovernanceStatus(
            model=version.name,
            version=version.version,
            stage=stage,
            policy_version=active.version,
            rules=needs.rules,
            requirements=items,
            request=request,
            decisions=decisions,
            missing=missing,
            ready=ready,
        )

    def _requirements(
        self, active: ActivePolicy, version: ModelVersion, stage: Stage
    ) -> Requirements:
        model = self.registry.get_model(version.name)
        return active.requirements(model.type, model.tags, stage)

    @staticmethod
    def _approval(
        version: ModelVersion,
        needs: Requirements,
        request: ReviewRequest | None,
        decisions: list[Decision],
    ) -> RequirementStatus:
        count = needs.approvals.count
        roles = ", ".join(role.value for role in needs.approvals.roles)
        if request is None:
            if version.approval is Approval.APPROVED:
                return RequirementStatus(
                    kind=ReviewKind.APPROVAL, met=True, reason="approved before reviews"
                )
            return RequirementStatus(
                kind=ReviewKind.APPROVAL,
                met=False,
                reason=f"no review request yet; {count} approval(s) needed from {roles}",
            )
        if request.state is ReviewState.APPROVED:
            who = ", ".join(d.reviewer for d in decisions if d.approve)
            return RequirementStatus(
                kind=ReviewKind.APPROVAL, met=True, reason=f"approved by {who or 'reviewers'}"
            )
        if request.state is ReviewState.REJECTED:
            rejected = [d for d in decisions if not d.approve]
            by = f" by {rejected[-1].reviewer}" if rejected else ""
            why = f": {rejected[-1].note}" if rejected and rejected[-1].note else ""
            return RequirementStatus(
                kind=ReviewKind.APPROVAL,
                met=False,
                reason=f"request {request.id} rejected{by}{why}; open a new request",
            )
        given = sum(1 for d in decisions if d.approve)
        reason = f"approvals {given} of {count} (from {roles})"
        if not needs.approvals.creator_may_approve:
            reason += f"; the creator {version.created_by} cannot approve"
        return RequirementStatus(kind=ReviewKind.APPROVAL, met=False, reason=reason)


def _check_reviewers(reviewers: list[str]) -> list[str]:
    if len(reviewers) > MAX_REVIEWERS:
        raise InvalidInput(
            f"at most {MAX_REVIEWERS} reviewers per request, not {len(reviewers)}",
            {"field": "reviewers"},
        )
    return list(dict.fromkeys(check_user_name(name) for name in reviewers))


def _check_note(note: str | None) -> str | None:
    if not note:
        return None
    if len(note) > MAX_NOTE:
        raise InvalidInput(f"a note is at most {MAX_NOTE} characters", {"field": "note"})
    return check_text(note, "note")
