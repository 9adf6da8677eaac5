"""Model cards generated from the registry and the reviews, in the Hugging Face convention."""

from __future__ import annotations

from modelhub.domain.auth import Action, Caller
from modelhub.domain.cost import CostSummary
from modelhub.domain.governance import ReviewKind
from modelhub.domain.lineage import VersionDocument
from modelhub.domain.names import parse_ref
from modelhub.domain.records import ModelVersion
from modelhub.errors import NotFound
from modelhub.governance.model_card import CardInputs, render_card
from modelhub.services.auth import AuthService
from modelhub.services.governance.assessments import AssessmentLog
from modelhub.services.governance.policy import PolicyService
from modelhub.services.monitoring.cost import CostService
from modelhub.stores.metadata.base import MetadataStore


class CardService:
    def __init__(
        self,
        metadata: MetadataStore,
        assessments: AssessmentLog,
        policy: PolicyService,
        cost: CostService,
        auth: AuthService,
    ) -> None:
        self.metadata = metadata
        self.assessments = assessments
        self.policy = policy
        self.cost = cost
        self.auth = auth

    def card_for(self, caller: Caller, ref: str) -> VersionDocument:
        self.auth.authorize(caller, Action.GOVERNANCE_READ)
        return self.card(ref)

    def card(self, ref: str) -> VersionDocument:
        version = self.metadata.resolve(parse_ref(ref))
        inputs = CardInputs(
            model=self.metadata.get_model(version.name),
            version=version,
            ethics=self.assessments.latest(version, ReviewKind.ETHICS),
            bias=self.assessments.latest(version, ReviewKind.BIAS),
            explanation=self.assessments.latest(version, ReviewKind.EXPLAINABILITY),
            run_cost=self._run_cost(version),
            policy_version=self.policy.current().version,
            review=self.metadata.latest_review_request(version.name, version.version),
        )
        return VersionDocument(
            model=version.name, version=version.version, text=render_card(inputs)
        )

    def _run_cost(self, version: ModelVersion) -> CostSummary | None:
        run = version.lineage.source_run
        if run is None or not run.isdigit():
            return None
        try:
            return self.cost.run_cost(int(run))
        except NotFound:  # the run was deleted since
            return None
