"""The governance workflow half of `LocalClient`: the review service over the local home."""

from __future__ import annotations

from modelhub.client.local_home import LocalHome
from modelhub.domain.governance import PolicyVersion, ReviewRequest
from modelhub.domain.governance_status import GovernanceStatus
from modelhub.domain.records import ModelVersion


class LocalGovernanceWorkflowCalls(LocalHome):
    def show_policy(self, version: int | None = None) -> PolicyVersion:
        return self.services.policy.show(self.caller, version)

    def set_policy(self, text: str) -> PolicyVersion:
        return self.services.policy.set(self.caller, text)

    def policy_history(self) -> list[PolicyVersion]:
        return self.services.policy.history(self.caller)

    def request_review(
        self, name: str, version: int, reviewers: list[str] | None = None
    ) -> ReviewRequest:
        return self.services.reviews.request(self.caller, name, version, reviewers)

    def review(
        self, name: str, version: int, approve: bool, note: str | None = None
    ) -> ModelVersion:
        return self.services.reviews.decide(self.caller, name, version, approve, note)

    def governance_status(
        self, name: str, version: int, stage: str = "production"
    ) -> GovernanceStatus:
        return self.services.reviews.status(self.caller, name, version, stage)
