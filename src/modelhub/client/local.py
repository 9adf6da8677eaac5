"""The registry client that works directly on the local home, with no server."""

from __future__ import annotations

from pathlib import Path

from modelhub.client.contract import Progress
from modelhub.client.local_alerts import LocalAlertCalls
from modelhub.client.local_cost import LocalCostCalls
from modelhub.client.local_deployments import LocalDeploymentCalls
from modelhub.client.local_drift import LocalDriftCalls
from modelhub.client.local_governance_bias import LocalGovernanceBiasCalls
from modelhub.client.local_governance_compliance import LocalComplianceCalls
from modelhub.client.local_governance_explain import LocalExplainCalls
from modelhub.client.local_governance_lineage import LocalGovernanceLineageCalls
from modelhub.client.local_governance_workflow import LocalGovernanceWorkflowCalls
from modelhub.client.local_history import LocalHistoryCalls
from modelhub.client.local_interop import LocalInteropCalls
from modelhub.client.local_optimisation import LocalOptimisationCalls
from modelhub.client.local_personas import LocalPersonaCalls
from modelhub.client.local_pipeline_optimization import LocalPipelineOptimizationCalls
from modelhub.client.local_predictions import LocalPredictionCalls
from modelhub.client.local_report import LocalReportCalls
from modelhub.client.local_training import LocalTrainingCalls
from modelhub.client.local_tuning import LocalTuningCalls
from modelhub.domain.auth import Principal, TokenInfo
from modelhub.domain.hosts import Host
from modelhub.domain.plugins import Plugin
from modelhub.domain.queries import VersionQuery
from modelhub.domain.records import (
    AuditEvent,
    AuditVerdict,
    Dataset,
    ModelVersion,
    Page,
    RegisteredModel,
)
from modelhub.errors import InvalidInput
from modelhub.services.registry import RegisterRequest


class LocalClient(
    LocalGovernanceWorkflowCalls,
    LocalTrainingCalls,
    LocalDeploymentCalls,
    LocalAlertCalls,
    LocalDriftCalls,
    LocalReportCalls,
    LocalCostCalls,
    LocalPredictionCalls,
    LocalHistoryCalls,
    LocalGovernanceLineageCalls,
    LocalComplianceCalls,
    LocalExplainCalls,
    LocalGovernanceBiasCalls,
    LocalInteropCalls,
    LocalOptimisationCalls,
    LocalPipelineOptimizationCalls,
    LocalTuningCalls,
    LocalPersonaCalls,
):
    """Same methods and errors as `Client`, served by the services in this process."""

    def register(
        self, request: RegisterRequest, source: Path, progress: Progress | None = None
    ) -> ModelVersion:
        return self.registry.register(request, Path(source), progress=progress)

    def get(self, ref: str) -> ModelVersion:
        return self.registry.get(ref)

    def get_model(self, name: str) -> RegisteredModel:
        return self.registry.get_model(name)

    def versions(self, name: str) -> list[ModelVersion]:
        return self.registry.versions(name)

    def search(self, query: VersionQuery) -> Page:
        return self.registry.search(query)

    def set_stage(self, name: str, version: int, stage: str, force: bool = False) -> ModelVersion:
        return self.registry.set_stage(name, version, stage, force=force)

    def approve(self, name: str, version: int, note: str | None = None) -> ModelVersion:
        return self.registry.approve(name, version, note)

    def reject(self, name: str, version: int, note: str | None = None) -> ModelVersion:
        return self.registry.reject(name, version, note)

    def set_alias(self, name: str, alias: str, version: int) -> ModelVersion:
        return self.registry.set_alias(name, alias, version)

    def remove_alias(self, name: str, alias: str) -> None:
        self.registry.remove_alias(name, alias)

    def set_model_card(self, ref: str, text: str) -> ModelVersion:
        return self.registry.set_model_card(ref, text)

    def update_model(
        self,
        name: str,
        description: str | None = None,
        license: str | None = None,
        tags: dict[str, str] | None = None,
    ) -> RegisteredModel:
        return self.registry.update_model(name, description=description, license=license, tags=tags)

    def archive(self, ref: str, restore: bool = False) -> str:
        return self.registry.archive(ref, restore=restore)

    def delete(self, ref: str) -> str:
        return self.registry.delete(ref)

    def gc(self, grace_seconds: int | None = None) -> dict[str, int]:
        report = self.registry.gc(grace_seconds)
        return {
            "blobs_deleted": report.blobs_deleted,
            "bytes_freed": report.bytes_freed,
            "blobs_kept_young": report.blobs_kept_young,
        }

    def download(
        self, ref: str, dest: Path, progress: Progress | None = None
    ) -> tuple[ModelVersion, list[Path]]:
        return self.registry.download(ref, Path(dest), progress)

    def register_dataset(
        self,
        path: Path,
        name: str,
        format: str | None = None,
        description: str = "",
        progress: Progress | None = None,
    ) -> Dataset:
        dataset = self.services.datasets.register(
            self.caller, Path(path), name, format, description
        )
        if progress:
            progress(dataset.size)
        return dataset

    def get_dataset(self, ref: str) -> Dataset:
        return self.services.datasets.get(self.caller, ref)

    def list_datasets(self, name: str | None = None) -> list[Dataset]:
        return self.services.datasets.list(self.caller, name)

    def whoami(self) -> Principal:
        return self.services.auth.whoami(self.caller)

    def add_user(self, name: str, role: str) -> Principal:
        return self.services.auth.add_user(self.caller, name, role)

    def update_user(
        self, name: str, role: str | None = None, disabled: bool | None = None
    ) -> Principal:
        return self.services.auth.set_user(self.caller, name, role=role, disabled=disabled)

    def list_users(self) -> list[Principal]:
        return self.services.auth.list_users(self.caller)

    def create_token(
        self,
        user: str | None = None,
        expires: str | None = None,
        scope: str = "write",
        description: str = "",
    ) -> tuple[TokenInfo, str]:
        if user is None:
            raise InvalidInput("local mode has no user of its own: name one with --user")
        return self.services.auth.create_token(
            self.caller, user, expires=expires, scope=scope, description=description
        )

    def list_tokens(self, user: str | None = None) -> list[TokenInfo]:
        return self.services.auth.list_tokens(self.caller, user)

    def revoke_token(self, token_id: str) -> TokenInfo:
        return self.services.auth.revoke_token(self.caller, token_id)

    def audit_events(
        self,
        actor: str | None = None,
        action: str | None = None,
        target: str | None = None,
        since: str | None = None,
        limit: int = 100,
    ) -> list[AuditEvent]:
        return self.services.audit.list(self.caller, actor, action, target, since, limit)

    def audit_verify(self, expect_head: str | None = None) -> AuditVerdict:
        return self.services.audit.verify(self.caller, expect_head)

    def hosts(self) -> list[Host]:
        return self.services.hosts.list_hosts(self.caller)

    def plugins(self) -> list[Plugin]:
        return self.services.plugins.list_plugins(self.caller)
