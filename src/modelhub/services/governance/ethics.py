"""Ethics reviews: a reviewer's structured record and verdict on one version.

The reviewer needs models.approve, and may not review a version they created unless
the policy's `approvals.creator_may_approve` allows it. The review is recorded as an
Assessment(kind=ethics) that passes when the decision is `approved`; the record itself
is its figures, which `latest_record` reads back for the model card and the report.
"""

from __future__ import annotations

from modelhub.domain.auth import Action, Caller
from modelhub.domain.enums import Stage
from modelhub.domain.governance import Assessment, ReviewKind
from modelhub.domain.records import ModelVersion
from modelhub.errors import PermissionDenied
from modelhub.governance.ethics import EthicsDecision, EthicsRecord, parse_ethics
from modelhub.services.auth import AuthService
from modelhub.services.governance.assessments import AssessmentLog
from modelhub.services.governance.policy import PolicyService
from modelhub.services.registry import RegistryService


class EthicsService:
    def __init__(
        self,
        registry: RegistryService,
        auth: AuthService,
        policy: PolicyService,
        assessments: AssessmentLog,
    ) -> None:
        self.registry = registry
        self.auth = auth
        self.policy = policy
        self.assessments = assessments

    def review(self, caller: Caller, ref: str, text: str) -> Assessment:
        """Record `caller`'s ethics review (YAML `text`) of the version `ref`.

        PermissionDenied without models.approve or on one's own version when the policy
        forbids it; InvalidInput naming every missing or bad field. Nothing is recorded
        unless all of it holds."""
        self.auth.authorize(caller, Action.MODELS_APPROVE)
        version = self.registry.get(ref)
        record = parse_ethics(text)
        model = self.registry.get_model(version.name)
        needs = self.policy.current().requirements(model.type, model.tags, Stage.PRODUCTION)
        where = f"{version.name}@{version.version}"
        if caller.name == version.created_by and not needs.approvals.creator_may_approve:
            raise PermissionDenied(
                f"you may not review the ethics of {where}: you created it, and the policy "
                "does not let creators approve their own versions",
                {"action": Action.MODELS_APPROVE.value, "rule": "no_self_approval"},
            )
        approved = record.decision is EthicsDecision.APPROVED
        summary = f"ethics review by {caller.name}: {record.decision.value}"
        figures = {"record": record.model_dump(mode="json"), "reviewer": caller.name}
        return self.assessments.record(
            caller.name, version, ReviewKind.ETHICS, approved, summary, figures
        )

    def latest_record(self, version: ModelVersion) -> EthicsRecord | None:
        """The newest ethics record of `version` (for the card and the report), or None."""
        latest = self.assessments.latest(version, ReviewKind.ETHICS)
        if latest is None or "record" not in latest.figures:
            return None
        return EthicsRecord.model_validate(latest.figures["record"])
