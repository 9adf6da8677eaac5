"""The governance workflow half of `modelhub.Client`: policy, requests, decisions, status."""

from __future__ import annotations

from urllib.parse import quote

from modelhub.client.http_connection import HttpConnection
from modelhub.domain.governance import PolicyVersion, ReviewRequest
from modelhub.domain.governance_status import GovernanceStatus
from modelhub.domain.records import ModelVersion

POLICY = "/api/v1/governance/policy"


def _version_path(name: str, version: int) -> str:
    return f"/api/v1/governance/models/{quote(name, safe='')}/versions/{version}"


class GovernanceWorkflowCalls(HttpConnection):
    def show_policy(self, version: int | None = None) -> PolicyVersion:
        path = POLICY if version is None else f"{POLICY}/{version}"
        return PolicyVersion.model_validate(self._request("GET", path))

    def set_policy(self, text: str) -> PolicyVersion:
        return PolicyVersion.model_validate(self._request("PUT", POLICY, json={"text": text}))

    def policy_history(self) -> list[PolicyVersion]:
        return [PolicyVersion.model_validate(v) for v in self._request("GET", f"{POLICY}/history")]

    def request_review(
        self, name: str, version: int, reviewers: list[str] | None = None
    ) -> ReviewRequest:
        path = f"{_version_path(name, version)}/request"
        data = self._request("POST", path, json={"reviewers": reviewers or []})
        return ReviewRequest.model_validate(data)

    def review(
        self, name: str, version: int, approve: bool, note: str | None = None
    ) -> ModelVersion:
        path = f"{_version_path(name, version)}/{'approve' if approve else 'reject'}"
        return ModelVersion.model_validate(self._request("POST", path, json={"note": note}))

    def governance_status(
        self, name: str, version: int, stage: str = "production"
    ) -> GovernanceStatus:
        path = f"{_version_path(name, version)}/status"
        return GovernanceStatus.model_validate(self._request("GET", path, params={"stage": stage}))
