"""The metadata store interface. Implementations return domain records, never rows."""

from __future__ import annotations

import abc
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, NamedTuple

from modelhub.domain.auth import Principal, Role, Scope, TokenInfo
from modelhub.domain.deployments import Deployment, DeploymentStatus, Environment, UsageRecord
from modelhub.domain.enums import DatasetFormat, Framework, ModelStatus, ModelType, Precision
from modelhub.domain.names import ModelRef
from modelhub.domain.pipelines import Priority
from modelhub.domain.queries import ModelQuery, VersionQuery
from modelhub.domain.records import (
    AuditEvent,
    AuditVerdict,
    Dataset,
    FileEntry,
    Lineage,
    ModelSummaryPage,
    ModelVersion,
    Page,
    RegisteredModel,
    ResourceEstimate,
    Signature,
)
from modelhub.domain.runs import (
    Checkpoint,
    MetricPoint,
    Pipeline,
    QueuedRun,
    Run,
    RunEvent,
    RunResources,
    RunStatus,
)
from modelhub.stores.metadata.base_alerts import AlertStoreBase
from modelhub.stores.metadata.base_canary import CanaryDecisionStore
from modelhub.stores.metadata.base_cost import CostStore
from modelhub.stores.metadata.base_drift import DriftStore
from modelhub.stores.metadata.base_governance import GovernanceStore
from modelhub.stores.metadata.base_history import HistoryStore
from modelhub.stores.metadata.base_hosts import HostStore
from modelhub.stores.metadata.base_overview import OverviewStore
from modelhub.stores.metadata.base_personas import PersonaStore
from modelhub.stores.metadata.base_predictions import PredictionStore


@dataclass(frozen=True)
class AuditDraft:
    """An audit event to append in the same transaction as the change it records."""

    actor: str
    action: str
    target: str
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ModelDraft:
    name: str
    type: ModelType
    owner: str
    description: str = ""
    license: str | None = None
    tags: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class VersionDraft:
    framework: Framework
    size: int
    digest: str
    files: list[FileEntry]
    created_by: str
    label: str | None = None
    architecture: str | None = None
    parameters: int | None = None
    precision: Precision = Precision.UNKNOWN
    quantization: str | None = None
    context_length: int | None = None
    signature: Signature = field(default_factory=Signature)
    inspection: dict[str, Any] = field(default_factory=dict)
    resources: ResourceEstimate | None = None
    lineage: Lineage = field(default_factory=Lineage)
    metrics: dict[str, float] = field(default_factory=dict)
    trusted: bool = False
    model_card: str | None = None


@dataclass(frozen=True)
class TokenDraft:
    id: str
    principal: str
    secret_hash: str
    scopes: list[Scope]
    description: str = ""
    expires_at: datetime | None = None


@dataclass(frozen=True)
class DatasetDraft:
    name: str
    format: DatasetFormat
    digest: str
    size: int
    rows: int
    columns: dict[str, str]
    created_by: str
    description: str = ""
    # The newest version the author saw (0: none). When set, finding another one is
    # a Conflict: the ownership the author was checked against may have changed.
    replaces: int | None = None


@dataclass(frozen=True)
class PipelineDraft:
    name: str
    type: str
    trainer: str
    priority: Priority
    spec: dict[str, Any]
    created_by: str  # the author of this version; also the owner when the name is new
    script_digest: str | None = None
    # The version the author saw (0: no pipeline by that name). When set, a save
    # that finds another version is a Conflict: the author checked the wrong owner.
    replaces: int | None = None


@dataclass(frozen=True)
class RunDraft:
    pipeline: str
    pipeline_version: int
    priority: Priority
    resources: RunResources
    created_by: str
    max_attempts: int
    result_model: str
    spec: dict[str, Any]
    inputs: dict[str, Any]
    requested_engine: str | None = None


class Progress(NamedTuple):
    """What one scheduler tick learned about one running run."""

    run_id: int
    values: dict[str, Any]
    points: Sequence[MetricPoint] = ()
    events: Sequence[tuple[str, dict[str, Any]]] = ()


@dataclass(frozen=True)
class UsageDelta:
    """What one version of one deployment served since the supervisor's last flush.

    Counts and sums add to the stored totals; `latency_buckets` adds per bucket
    (empty, or one count per bound of LATENCY_BOUNDS_MS plus one for slower);
    `active_callers` replaces the stored value; `last_used` keeps the later one.
    """

    deployment: str
    version: int
    requests: int = 0
    errors: int = 0
    rows: int = 0
    latency_ms_sum: float = 0.0
    latency_buckets: tuple[int, ...] = ()
    active_callers: int = 0
    last_used: datetime | None = None


@dataclass(frozen=True)
class AuditQuery:
    actor: str | None = None
    action: str | None = None
    target: str | None = None
    since: datetime | None = None
    limit: int = 100
    offset: int = 0


class MetadataStore(
    AlertStoreBase,
    DriftStore,
    CanaryDecisionStore,
    CostStore,
    PredictionStore,
    HistoryStore,
    HostStore,
    GovernanceStore,
    OverviewStore,
    PersonaStore,
    abc.ABC,
):
    """Models, versions, aliases and the audit log.

    Lookups raise NotFound; uniqueness violations raise Conflict. Every mutation
    takes an AuditDraft and appends it to the hash-chained log atomically with
    the change.
    """

    url: str

    @abc.abstractmethod
    def get_model(self, name: str) -> RegisteredModel: ...

    @abc.abstractmethod
    def model_owner(self, name: str) -> str | None:
        """The owner of a model, or None when there is no such model (one cheap query)."""

    @abc.abstractmethod
    def list_models(self, include_archived: bool = False) -> list[RegisteredModel]: ...

    @abc.abstractmethod
    def create_version(
        self, model: ModelDraft, draft: VersionDraft, audit: AuditDraft
    ) -> ModelVersion:
        """Add the next version of `model.name`, creating the model when it is new.

        Concurrent calls for one name get consecutive numbers.
        """

    @abc.abstractmethod
    def resolve(self, ref: ModelRef) -> ModelVersion:
        """Find the version a reference names: a number, latest, a stage, or an alias."""

    @abc.abstractmethod
    def list_versions(self, name: str) -> list[ModelVersion]: ...

    @abc.abstractmethod
    def search(self, query: VersionQuery) -> Page: ...

    @abc.abstractmethod
    def list_model_summaries(self, query: ModelQuery) -> ModelSummaryPage:
        """One page of models with figures over their versions, and how many matched,
        in a fixed number of queries whatever the number of rows."""

    @abc.abstractmethod
    def model_aliases(self, name: str) -> dict[str, int]:
        """Every alias of a model and the version number it names, by alias."""

    @abc.abstractmethod
    def update_version(
        self, name: str, version: int, changes: dict[str, Any], audit: AuditDraft
    ) -> ModelVersion: ...

    @abc.abstractmethod
    def update_model(
        self,
        name: str,
        changes: dict[str, Any],
        audit: AuditDraft,
        tags: dict[str, str] | None = None,
    ) -> RegisteredModel: ...

    @abc.abstractmethod
    def set_alias(self, name: str, alias: str, version: int, audit: AuditDraft) -> ModelVersion: ...

    @abc.abstractmethod
    def remove_alias(self, name: str, alias: str, audit: AuditDraft) -> None: ...

    @abc.abstractmethod
    def delete_version(self, name: str, version: int, audit: AuditDraft) -> None: ...

    @abc.abstractmethod
    def delete_model(self, name: str, audit: AuditDraft) -> None: ...

    @abc.abstractmethod
    def referenced_digests(self) -> set[str]: ...

    # -- datasets -----------------------------------------------------------------

    @abc.abstractmethod
    def create_dataset(self, draft: DatasetDraft, audit: AuditDraft) -> Dataset:
        """Add the next version of a dataset (versions count from 1 per name)."""

    @abc.abstractmethod
    def get_dataset(self, name: str, version: int | None = None) -> Dataset:
        """A version, or the newest when version is None; NotFound if absent."""

    @abc.abstractmethod
    def list_datasets(self, name: str | None = None) -> list[Dataset]: ...

    @abc.abstractmethod
    def dataset_digests(self) -> set[str]: ...

    # -- principals and tokens ---------------------------------------------------

    @abc.abstractmethod
    def count_principals(self) -> int: ...

    @abc.abstractmethod
    def create_principal(self, name: str, role: Role, audit: AuditDraft) -> Principal:
        """Raises Conflict when the name is taken."""

    @abc.abstractmethod
    def get_principal(self, name: str) -> Principal: ...

    @abc.abstractmethod
    def list_principals(self) -> list[Principal]: ...

    @abc.abstractmethod
    def update_principal(
        self, name: str, changes: dict[str, Any], audit: AuditDraft
    ) -> Principal: ...

    @abc.abstractmethod
    def create_token(self, draft: TokenDraft, audit: AuditDraft) -> TokenInfo: ...

    @abc.abstractmethod
    def token_credentials(self, token_id: str) -> tuple[TokenInfo, str, Principal]:
        """The token, its stored secret hash and its principal; NotFound if unknown."""

    @abc.abstractmethod
    def list_tokens(self, principal: str | None = None) -> list[TokenInfo]: ...

    @abc.abstractmethod
    def revoke_token(self, token_id: str, audit: AuditDraft) -> TokenInfo: ...

    @abc.abstractmethod
    def touch_token(self, token_id: str) -> None:
        """Record that the token was just used (not an audited change)."""

    @abc.abstractmethod
    def record_event(self, audit: AuditDraft) -> None:
        """Append an event that goes with no change (a denied request, say)."""

    @abc.abstractmethod
    def list_audit(self, query: AuditQuery) -> list[AuditEvent]: ...

    @abc.abstractmethod
    def count_audit(self, query: AuditQuery) -> int:
        """How many events the query's filters match (its limit and offset aside)."""

    @abc.abstractmethod
    def verify_audit(self, expect_head: str | None = None) -> AuditVerdict:
        """Walk the hash chain and compare its end with the head row (and `expect_head`,
        a hash recorded elsewhere, which the chain must still contain). Never raises on
        what it finds: every problem is named in the verdict."""

    # -- pipelines and runs -------------------------------------------------------

    @abc.abstractmethod
    def save_pipeline(self, draft: PipelineDraft, audit: AuditDraft) -> Pipeline:
        """Create a pipeline, or store its next version under the same name."""

    @abc.abstractmethod
    def get_pipeline(self, name: str) -> Pipeline: ...

    @abc.abstractmethod
    def list_pipelines(self) -> list[Pipeline]: ...

    @abc.abstractmethod
    def create_run(self, draft: RunDraft, audit: AuditDraft) -> Run:
        """A new run, queued."""

    @abc.abstractmethod
    def get_run(self, run_id: int) -> Run: ...

    @abc.abstractmethod
    def list_runs(
        self,
        statuses: Iterable[RunStatus] | None = None,
        pipeline: str | None = None,
        limit: int | None = None,
    ) -> list[Run]:
        """Newest first."""

    @abc.abstractmethod
    def page_runs(
        self,
        statuses: Iterable[RunStatus] | None = None,
        pipeline: str | None = None,
        offset: int = 0,
        limit: int = 50,
    ) -> tuple[list[Run], int]:
        """One page of runs, newest first, and how many match in all."""

    @abc.abstractmethod
    def pipeline_run_summaries(self) -> dict[str, tuple[int, RunStatus]]:
        """For each pipeline with runs: how many, and the status of its newest run."""

    @abc.abstractmethod
    def move_run(
        self,
        run_id: int,
        expected: Sequence[RunStatus],
        audit: AuditDraft | None = None,
        event: dict[str, Any] | None = None,
        held_by: str | None = None,
        **values: Any,
    ) -> Run:
        """Set `values` only if the run's status is in `expected` (and, with `held_by`,
        its owner is `held_by`); else IllegalTransition."""

    @abc.abstractmethod
    def renew_leases(self, owner: str, until: datetime) -> set[int]:
        """Extend the lease of every running or finishing run `owner` holds to `until`;
        their ids."""

    @abc.abstractmethod
    def requeue_expired(self, now: datetime, reason: str) -> list[int]:
        """Queue again the running runs whose lease expired before `now` (a
        compare-and-set each: one of several servers wins); the ids requeued."""

    @abc.abstractmethod
    def claim_expired_finishing(self, owner: str, now: datetime, until: datetime) -> list[int]:
        """Make `owner` the holder, until `until`, of every finishing run whose lease
        expired before `now` (a compare-and-set each: one of several servers wins);
        the ids claimed."""

    @abc.abstractmethod
    def record_progress(
        self,
        run_id: int,
        values: dict[str, Any],
        points: Sequence[MetricPoint] = (),
        events: Sequence[tuple[str, dict[str, Any]]] = (),
    ) -> None:
        """Telemetry of a running run, not audited."""

    @abc.abstractmethod
    def record_progress_batch(self, batch: Sequence[Progress]) -> None:
        """Several runs' telemetry in one transaction."""

    @abc.abstractmethod
    def queued_runs(self) -> list[QueuedRun]:
        """Every queued run, with just what ordering and admission need."""

    @abc.abstractmethod
    def run_events(self, run_id: int, after: int = 0, limit: int = 1000) -> list[RunEvent]: ...

    @abc.abstractmethod
    def last_run_event_id(self, run_id: int) -> int:
        """The id of the run's newest event (0: none yet): where a live feed starts."""

    @abc.abstractmethod
    def metric_points(self, run_id: int, name: str | None = None) -> list[MetricPoint]: ...

    @abc.abstractmethod
    def metric_values(self, run_ids: Sequence[int], name: str) -> dict[int, list[float]]:
        """The values of metric `name` of each of `run_ids`, in the order recorded, read
        in one query; a run with none is absent."""

    @abc.abstractmethod
    def add_checkpoint(self, checkpoint: Checkpoint) -> None: ...

    @abc.abstractmethod
    def list_checkpoints(self, run_id: int) -> list[Checkpoint]: ...

    @abc.abstractmethod
    def drop_checkpoints(self, run_id: int, keep: Iterable[tuple[int, bool]]) -> list[str]: ...

    @abc.abstractmethod
    def pipeline_digests(self) -> set[str]:
        """Blobs pipelines and runs hold: training scripts and checkpoints."""

    # -- deployments --------------------------------------------------------------

    @abc.abstractmethod
    def create_deployment(self, deployment: Deployment, audit: AuditDraft) -> Deployment:
        """Store a new deployment as given.

        A stopped or failed deployment of the same name is replaced, its usage
        forgotten, in the same transaction. Raises Conflict when one of that name
        is still deploying, running or updating.
        """

    @abc.abstractmethod
    def get_deployment(self, name: str) -> Deployment:
        """Raises NotFound naming the deployment."""

    @abc.abstractmethod
    def list_deployments(
        self,
        environment: Environment | None = None,
        model: str | None = None,
        include_stopped: bool = False,
    ) -> list[Deployment]:
        """By name; stopped deployments only when asked for (failed ones always show)."""

    @abc.abstractmethod
    def update_deployment(
        self,
        name: str,
        changes: dict[str, Any],
        expected_status: DeploymentStatus | None = None,
        audit: AuditDraft | None = None,
    ) -> Deployment:
        """Change fields of a deployment (keys are Deployment field names); sets updated_at.

        A "status" change is checked with check_deployment_move, so even setting
        the current status raises IllegalTransition: leave it out to keep it.
        With `expected_status` the change applies only while the deployment is in
        that status (a compare-and-set), else Conflict. Audited when `audit` is
        given; supervisor telemetry (health, status) goes without. Raises
        NotFound, InvalidInput for an unknown or fixed field (name, created_by,
        created_at, updated_at) or a value the record refuses.
        """

    @abc.abstractmethod
    def add_usage(self, deltas: Sequence[UsageDelta]) -> None:
        """Add the deltas to the usage totals, all in one transaction (not audited).

        Raises NotFound when a delta names no deployment, InvalidInput when its
        latency buckets do not match LATENCY_BOUNDS_MS; then nothing is added.
        """

    @abc.abstractmethod
    def deployment_usage(self, name: str) -> list[UsageRecord]:
        """Usage per version of the deployment, by version; NotFound if it does not exist."""

    @abc.abstractmethod
    def ping(self) -> None:
        """Raise Unavailable unless the database answers."""

    @abc.abstractmethod
    def close(self) -> None: ...


__all__ = [
    "AuditDraft",
    "AuditQuery",
    "MetadataStore",
    "ModelDraft",
    "ModelStatus",
    "VersionDraft",
]
