"""The use cases every transport calls, wired once from the settings."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import TYPE_CHECKING

from modelhub.domain.auth import Caller, permission_table
from modelhub.services.audit import AuditService
from modelhub.services.auth import AuthService, TokenLifetimes, load_or_create_key
from modelhub.services.datasets import DatasetService
from modelhub.services.deployments import MAX_REPLICAS, DeploymentService
from modelhub.services.guarded import GuardedRegistry
from modelhub.services.hosts import HostService
from modelhub.services.interop import InteropService
from modelhub.services.optimisation import OptimisationService
from modelhub.services.overview import OverviewService
from modelhub.services.pipeline_optimization import PipelineOptimizationService
from modelhub.services.platform import PlatformService
from modelhub.services.plugins import PluginService
from modelhub.services.registry import RegistryService
from modelhub.services.training import TrainingService
from modelhub.services.tuning import TuningService
from modelhub.services.uploads import UploadService
from modelhub.settings import Settings

if TYPE_CHECKING:
    # The monitoring services pull in numpy, scipy and pyarrow: imported where they are
    # built, so that a transport importing this package (the CLI) starts fast.
    from modelhub.monitoring.observations import Objectives
    from modelhub.services.governance.bias import BiasService
    from modelhub.services.governance.cards import CardService
    from modelhub.services.governance.compliance import ComplianceService
    from modelhub.services.governance.ethics import EthicsService
    from modelhub.services.governance.explain import ExplanationService
    from modelhub.services.governance.lineage import LineageService
    from modelhub.services.governance.policy import PolicyService
    from modelhub.services.governance.report import ReportService
    from modelhub.services.governance.scoring import VersionScorer
    from modelhub.services.governance.workflow import ReviewService
    from modelhub.services.monitoring.alerts import AlertService
    from modelhub.services.monitoring.canary import CanaryService
    from modelhub.services.monitoring.cost import CostService
    from modelhub.services.monitoring.drift import DriftService
    from modelhub.services.monitoring.history import HistoryService
    from modelhub.services.monitoring.predictions import PredictionService
    from modelhub.services.monitoring.report import MonitorService
    from modelhub.services.personas import PersonaService
    from modelhub.stores.metadata.base import MetadataStore


@dataclass
class Services:
    """The services, and only the services: the stores and engines stay behind them."""

    settings: Settings
    platform: PlatformService
    registry: RegistryService
    uploads: UploadService
    auth: AuthService
    audit: AuditService
    datasets: DatasetService
    training: TrainingService
    deployments: DeploymentService
    alerts: AlertService
    drift: DriftService
    monitor: MonitorService
    canary: CanaryService
    cost: CostService
    predictions: PredictionService
    history: HistoryService
    # -- governance (issue 12) --
    policy: PolicyService
    lineage: LineageService
    cards: CardService
    reports: ReportService
    ethics: EthicsService
    compliance: ComplianceService
    reviews: ReviewService
    explain: ExplanationService
    bias: BiasService
    # -- the dashboard's overview (issue 13) --
    overview: OverviewService
    # -- import and export with other platforms (issue 15) --
    interop: InteropService
    # -- optimisation (issue 15) --
    optimisation: OptimisationService
    # -- optimising a pipeline (issue 15) --
    pipeline_optimizations: PipelineOptimizationService
    # -- hyperparameter tuning (issue 15) --
    tuning: TuningService
    # -- several servers on one database (issue 16) --
    hosts: HostService
    # -- personas and their learning cycles (issue 17) --
    personas: PersonaService
    # -- plugins (issue 17) --
    plugins: PluginService

    def registry_for(self, caller: Caller) -> GuardedRegistry:
        """The registry with every call checked against what `caller` may do."""
        return GuardedRegistry(self.registry, self.uploads, self.auth, caller)

    def close(self) -> None:
        self.personas.stop()
        self.alerts.close()
        self.cost.stop()
        self.platform.close()
        self.tuning.close()
        self.training.close()


def build_services(settings: Settings) -> Services:
    from modelhub.monitoring.degradation import WindowTests
    from modelhub.services.governance.assessments import AssessmentLog
    from modelhub.services.governance.bias import BiasService
    from modelhub.services.governance.cards import CardService
    from modelhub.services.governance.compliance import ComplianceService
    from modelhub.services.governance.ethics import EthicsService
    from modelhub.services.governance.explain import ExplanationService
    from modelhub.services.governance.lineage import LineageService
    from modelhub.services.governance.policy import PolicyService
    from modelhub.services.governance.report import ReportService
    from modelhub.services.governance.scoring import VersionScorer
    from modelhub.services.governance.workflow import ReviewService
    from modelhub.services.monitoring.alerts import AlertService
    from modelhub.services.monitoring.canary import CanaryService
    from modelhub.services.monitoring.cost import CostService
    from modelhub.services.monitoring.drift import DriftService
    from modelhub.services.monitoring.history import HistoryService
    from modelhub.services.monitoring.predictions import PredictionService
    from modelhub.services.monitoring.report import MonitorService, MonitorSources
    from modelhub.stores.artifacts.factory import open_artifact_store
    from modelhub.stores.metadata.factory import open_metadata_store

    settings.home.mkdir(mode=0o700, parents=True, exist_ok=True)
    # The home holds the admin token, the key and the database: no other local user
    # may even list it. Where it is not ours to change, its owner decides.
    with contextlib.suppress(PermissionError):
        settings.home.chmod(0o700)
    metadata = open_metadata_store(settings.resolved_database_url)
    artifacts = open_artifact_store(
        settings.resolved_artifacts,
        s3_endpoint_url=settings.s3_endpoint_url,
        chunk_size=settings.upload_chunk_bytes,
    )
    registry = RegistryService(
        metadata, artifacts, settings.gc_grace_seconds, import_dirs=settings.import_dirs
    )
    uploads = UploadService(settings.staging_dir, registry)
    auth = AuthService(
        metadata,
        load_or_create_key(settings.key_file),
        settings.token_cache_seconds,
        TokenLifetimes(default=settings.token_default_ttl, longest=settings.token_max_ttl),
        permission_table(frozenset(settings.code_runners)),
    )
    audit = AuditService(metadata, auth)
    datasets = DatasetService(metadata, artifacts, uploads, auth)
    training = TrainingService(settings, metadata, artifacts, registry, auth)
    history = HistoryService(settings, metadata, auth)
    predictions = PredictionService(settings, metadata, artifacts, registry, auth)
    deployments = DeploymentService(settings, metadata, registry, auth, history)
    hosts = HostService(
        settings,
        metadata,
        auth,
        capacity=lambda: (training.capacity().cpus, training.capacity().memory),
    )
    deployments.use_hosts(hosts)
    platform = PlatformService(metadata, artifacts, uploads)
    alerts = AlertService(settings, metadata, auth, performance=history)
    drift = DriftService(settings, metadata, artifacts, uploads, auth, live=predictions)
    training.on_registered(drift.profile_trained)
    canary = CanaryService(
        settings, metadata, deployments, auth, traffic=history, alerts=alerts, feedback=predictions
    )
    cost = CostService(
        settings,
        metadata,
        artifacts,
        auth,
        alerts=alerts,
        traffic=history,
        training_cpus=lambda: training.capacity().cpus,
    )
    monitor = MonitorService(
        registry,
        deployments,
        auth,
        monitor_objectives(settings),
        MonitorSources(
            history=history,
            predictions=predictions,
            drift=drift,
            degradation=WindowTests(),
            alerts=alerts,
            cost=cost,
        ),
    )
    policy = PolicyService(metadata, auth)
    assessments = AssessmentLog(metadata, artifacts, policy)
    ethics = EthicsService(registry, auth, policy, assessments)
    compliance = ComplianceService(metadata, artifacts, registry, auth, policy, assessments, ethics)
    reviews = ReviewService(metadata, registry, policy, assessments, auth, alerts)
    registry.set_gate(reviews.missing)
    registry.on_decision(reviews.decide)
    lineage = LineageService(metadata, auth)
    scorer = VersionScorer(deployments.rollouts.materialize)
    explain = ExplanationService(metadata, auth, uploads, scorer, assessments, policy)
    bias = BiasService(registry, uploads, auth, policy, assessments, scorer)
    cards = CardService(metadata, assessments, policy, cost, auth)
    services_for_personas = PersonaParts(
        registry, datasets, training, deployments, canary, drift, scorer, auth
    )
    interop = InteropService(
        registry, uploads, auth, settings.staging_dir, lambda ref: cards.card(ref).text
    )
    return Services(
        settings=settings,
        platform=platform,
        registry=registry,
        uploads=uploads,
        auth=auth,
        audit=audit,
        datasets=datasets,
        training=training,
        deployments=deployments,
        alerts=alerts,
        drift=drift,
        monitor=monitor,
        canary=canary,
        cost=cost,
        predictions=predictions,
        history=history,
        policy=policy,
        lineage=lineage,
        cards=cards,
        reports=ReportService(metadata, assessments, policy, lineage, auth, reviews.evaluate),
        ethics=ethics,
        compliance=compliance,
        reviews=reviews,
        explain=explain,
        bias=bias,
        overview=OverviewService(metadata, auth),
        interop=interop,
        optimisation=OptimisationService(settings, metadata, artifacts, registry, uploads, auth),
        pipeline_optimizations=PipelineOptimizationService(metadata, auth, training),
        tuning=TuningService(settings, training, auth),
        hosts=hosts,
        personas=build_personas(settings, metadata, services_for_personas),
        plugins=PluginService(auth),
    )


def monitor_objectives(settings: Settings) -> Objectives:
    from modelhub.monitoring.observations import Objectives

    return Objectives(
        p99_ms=settings.monitor_p99_objective_ms,
        slow_p99_ms=settings.monitor_slow_p99_ms,
        quantize_min_bytes=settings.monitor_quantize_min_bytes,
        max_replicas=MAX_REPLICAS,
    )


@dataclass(frozen=True)
class PersonaParts:
    registry: RegistryService
    datasets: DatasetService
    training: TrainingService
    deployments: DeploymentService
    canary: CanaryService
    drift: DriftService
    scorer: VersionScorer
    auth: AuthService


def build_personas(
    settings: Settings, metadata: MetadataStore, parts: PersonaParts
) -> PersonaService:
    from modelhub.services.persona_cycle import LearningCycles
    from modelhub.services.personas import PersonaService

    cycles = LearningCycles(
        metadata,
        parts.registry,
        parts.datasets,
        parts.training,
        parts.deployments,
        parts.canary,
        parts.drift,
        parts.scorer,
        settings.home / "personas",
    )
    return PersonaService(
        metadata, parts.registry, parts.auth, cycles, settings.persona_interval_seconds
    )
