"""The one client contract: what `Client` (HTTP) and `LocalClient` (in-process) both offer.

A call with options takes the request model its service takes (`RegisterRequest`,
`VersionQuery`, `DeployRequest`, `RolloutRequest`), so a new option is one field
there plus the API schema; both clients pass the model on whole. mypy holds both
clients to this Protocol (the check at the bottom of this module).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from modelhub.domain.alerts import AlertRule, AlertRuleDraft, Delivery, MetricInfo
from modelhub.domain.auth import Principal, TokenInfo
from modelhub.domain.bias import BiasOptions
from modelhub.domain.canary import CanaryStatus
from modelhub.domain.cost import (
    Budget,
    BudgetRequest,
    BudgetStatus,
    CostReport,
    CostSummary,
    PlatformFigures,
)
from modelhub.domain.deployments import Deployment, UsageRecord
from modelhub.domain.drift import DriftReference, DriftReport
from modelhub.domain.engines import EngineRecord
from modelhub.domain.estimates import Estimate
from modelhub.domain.explanation import ExplainOptions, Explanation
from modelhub.domain.governance import Assessment, PolicyVersion, ReviewRequest
from modelhub.domain.governance_status import GovernanceStatus
from modelhub.domain.hosts import Host
from modelhub.domain.lineage import LineageGraph, VersionDocument
from modelhub.domain.monitor_report import MonitorReport
from modelhub.domain.monitoring import PerformanceSummary
from modelhub.domain.optimisation import DeploymentReply, OptimisationReport
from modelhub.domain.personas import (
    Cycle,
    IngestReport,
    InteractionIn,
    LearnPlan,
    Persona,
    PersonaView,
)
from modelhub.domain.pipeline_optimization import (
    DEFAULT_BUDGET_STEPS,
    DEFAULT_TOLERANCE,
    PipelineOptimization,
)
from modelhub.domain.plugins import Plugin
from modelhub.domain.pools import Pool
from modelhub.domain.predictions import (
    AccuracySummary,
    FeedbackOutcome,
    LoggedPrediction,
    PredictionLogPolicy,
)
from modelhub.domain.queries import VersionQuery
from modelhub.domain.records import (
    AuditEvent,
    AuditVerdict,
    Dataset,
    ModelVersion,
    Page,
    RegisteredModel,
)
from modelhub.domain.runs import Alert, Checkpoint, MetricPoint, Pipeline, Run, RunEvent
from modelhub.domain.tuning import Study, TuneRequest
from modelhub.services.deployments import DeployRequest, RolloutRequest
from modelhub.services.interop import ExportResult, ImportRequest
from modelhub.services.optimisation import OptimiseRequest
from modelhub.services.personas import PersonaRequest
from modelhub.services.registry import RegisterRequest

if TYPE_CHECKING:
    from modelhub.client.http import Client
    from modelhub.client.local import LocalClient

Progress = Callable[[int], None]
"""Called with the number of bytes just transferred."""


class ModelhubClient(Protocol):
    def register(
        self, request: RegisterRequest, source: Path, progress: Progress | None = None
    ) -> ModelVersion:
        """Register `source` (a file or folder) as the next version of `request.name`."""
        ...

    def get(self, ref: str) -> ModelVersion: ...

    def get_model(self, name: str) -> RegisteredModel: ...

    def versions(self, name: str) -> list[ModelVersion]: ...

    def search(self, query: VersionQuery) -> Page: ...

    def set_stage(
        self, name: str, version: int, stage: str, force: bool = False
    ) -> ModelVersion: ...

    def approve(self, name: str, version: int, note: str | None = None) -> ModelVersion: ...

    def reject(self, name: str, version: int, note: str | None = None) -> ModelVersion: ...

    def set_alias(self, name: str, alias: str, version: int) -> ModelVersion: ...

    def remove_alias(self, name: str, alias: str) -> None: ...

    def set_model_card(self, ref: str, text: str) -> ModelVersion: ...

    def update_model(
        self,
        name: str,
        description: str | None = None,
        license: str | None = None,
        tags: dict[str, str] | None = None,
    ) -> RegisteredModel: ...

    def archive(self, ref: str, restore: bool = False) -> str: ...

    def delete(self, ref: str) -> str: ...

    def download(
        self, ref: str, dest: Path, progress: Progress | None = None
    ) -> tuple[ModelVersion, list[Path]]: ...

    def gc(self, grace_seconds: int | None = None) -> dict[str, int]: ...

    def register_dataset(
        self,
        path: Path,
        name: str,
        format: str | None = None,
        description: str = "",
        progress: Progress | None = None,
    ) -> Dataset: ...

    def get_dataset(self, ref: str) -> Dataset: ...

    def list_datasets(self, name: str | None = None) -> list[Dataset]: ...

    def whoami(self) -> Principal: ...

    def add_user(self, name: str, role: str) -> Principal: ...

    def update_user(
        self, name: str, role: str | None = None, disabled: bool | None = None
    ) -> Principal: ...

    def list_users(self) -> list[Principal]: ...

    def create_token(
        self,
        user: str | None = None,
        expires: str | None = None,
        scope: str = "write",
        description: str = "",
    ) -> tuple[TokenInfo, str]: ...

    def list_tokens(self, user: str | None = None) -> list[TokenInfo]: ...

    def revoke_token(self, token_id: str) -> TokenInfo: ...

    def audit_events(
        self,
        actor: str | None = None,
        action: str | None = None,
        target: str | None = None,
        since: str | None = None,
        limit: int = 100,
    ) -> list[AuditEvent]: ...

    def audit_verify(self, expect_head: str | None = None) -> AuditVerdict:
        """The audit chain checked; tampering is `intact=False` with `problems`, not a raise."""
        ...

    def hosts(self) -> list[Host]:
        """The servers sharing this database, their capacity and whether they live."""
        ...

    def plugins(self) -> list[Plugin]:
        """Runtimes, trainers, executors, inspectors and artifact stores, built-in and
        installed, each with its status (loaded, failed or refused, and why)."""
        ...

    # -- training ------------------------------------------------------------------

    @property
    def queues_only(self) -> bool:
        """True when a started or resumed run is only queued: nothing known executes it.

        Local mode: a `modelhub server` on the same home, or `scheduling()`, runs it.
        """
        ...

    def scheduling(self) -> contextlib.AbstractContextManager[None]:
        """Make sure queued runs execute while the block runs (a server always does)."""
        ...

    def create_pipeline(
        self, spec: str, files: dict[str, bytes] | None = None
    ) -> tuple[Pipeline, Estimate]:
        """Store a pipeline spec (YAML text) with the files it names, and estimate a run.

        `files` maps paths relative to pipeline.yaml to their bytes (the script).
        Raises InvalidInput listing every problem of the spec.
        """
        ...

    def list_pipelines(self) -> list[Pipeline]: ...

    def list_engines(self) -> list[EngineRecord]: ...

    def get_pipeline(self, name: str) -> Pipeline: ...

    def start_run(self, pipeline: str, priority: str | None = None) -> Run: ...

    def get_run(self, run_id: int) -> Run: ...

    def list_runs(
        self, status: str | None = None, pipeline: str | None = None, limit: int = 100
    ) -> list[Run]: ...

    def cancel_run(self, run_id: int) -> Run: ...

    def resume_run(self, run_id: int) -> Run:
        """Queue a failed or cancelled run again; IllegalTransition for any other."""
        ...

    def run_metrics(self, run_id: int, name: str | None = None) -> list[MetricPoint]: ...

    def run_checkpoints(self, run_id: int) -> list[Checkpoint]: ...

    def run_alerts(self, run_id: int) -> list[Alert]: ...

    # -- optimising a pipeline (issue 15) --

    def optimize_pipeline(
        self,
        name: str,
        budget_steps: int = DEFAULT_BUDGET_STEPS,
        tolerance: float = DEFAULT_TOLERANCE,
    ) -> PipelineOptimization:
        """Queue a profiling run of the pipeline (`budget_steps` steps, its phases timed);
        when it ends the server proposes changes and measures them in a second short run.
        The optimisation comes back `profiling`: follow it with `get_optimization`.
        InvalidInput for a budget (5-10000) or tolerance (0-1) out of range; NotFound."""
        ...

    def get_optimization(self, name: str, optimization: int | None = None) -> PipelineOptimization:
        """An optimisation of the pipeline: the newest when `optimization` is None."""
        ...

    def list_optimizations(self, name: str) -> list[PipelineOptimization]: ...

    def accept_optimization(
        self, name: str, optimization: int | None = None
    ) -> PipelineOptimization:
        """The proposed spec becomes the pipeline's next version. IllegalTransition when
        nothing is proposed; Conflict when the pipeline changed since it was profiled."""
        ...

    # -- tuning (issue 15) ------------------------------------------------------------

    def tune(self, request: TuneRequest) -> Study:
        """Store the pipeline and start an Optuna study over its `search:` block.

        InvalidInput for a spec without search (or with any other problem, each named by
        its path) or a bad timeout; Conflict while a study of that pipeline runs.
        """
        ...

    def study(self, name: str) -> Study:
        """The study of pipeline `name`: trials, best so far, importance; NotFound if none."""
        ...

    def study_chart(self, name: str) -> str:
        """The study's optimisation history and parameter importance as SVG text."""
        ...

    def resume_study(self, name: str) -> Study:
        """Run a failed study on to its trials; NotFound if none, IllegalTransition if done."""
        ...

    # -- alerts (issue 11) ----------------------------------------------------------

    def add_alert_rule(self, draft: AlertRuleDraft) -> AlertRule:
        """Add a rule; InvalidInput for an unknown metric or comparison, NotFound for an
        unknown model, deployment or run."""
        ...

    def list_alert_rules(self) -> list[AlertRule]:
        """The built-in training rules, then the stored ones."""
        ...

    def remove_alert_rule(self, rule_id: int) -> AlertRule: ...

    def list_alerts(
        self, firing: bool = False, subject: str | None = None, limit: int = 200
    ) -> list[Alert]: ...

    def ack_alert(self, alert_id: int) -> Alert: ...

    def alert_deliveries(self, alert_id: int) -> list[Delivery]: ...

    def alert_metrics(self) -> list[MetricInfo]:
        """The metrics rules may name, with their scopes."""
        ...

    def run_logs(self, run_id: int, offset: int = 0) -> tuple[bytes, int]:
        """Log bytes from `offset` (a chunk, empty when nothing new) and the next offset."""
        ...

    def run_events(self, run_id: int, after: int = 0, log_offset: int = 0) -> Iterator[RunEvent]:
        """The run's events after event id `after`, as they happen, until the run ends.

        Kinds: status, progress, metrics, checkpoint, alert, preprocessing, and log
        (data {"text", "offset"}: new log text from byte `log_offset` on).
        """
        ...

    # -- deployments and inference ---------------------------------------------------

    @property
    def serves_deployments(self) -> bool:
        """True when something runs the replicas of what is deployed (a server does).

        Local mode only records deployments: a `modelhub server` on the same home
        serves them when it starts; `predict` answers in-process meanwhile.
        """
        ...

    def deploy(self, request: DeployRequest) -> DeploymentReply:
        """Serve a version (`NAME`, `NAME@3`, `NAME@ALIAS`) in an environment.

        With `request.optimize`, the version's optimised variant within tolerance with
        the lowest measured latency is served instead, and `optimisation` says which
        and why (the version itself when none qualifies).

        Returns at once with the deployment `deploying`; `wait_deployment` follows it.
        Production serves approved versions only: IllegalTransition otherwise, unless
        an admin sets `override_approval`.
        """
        ...

    def list_deployments(
        self,
        environment: str | None = None,
        model: str | None = None,
        include_stopped: bool = False,
    ) -> list[Deployment]: ...

    def get_deployment(self, name: str) -> tuple[Deployment, list[UsageRecord]]:
        """The deployment and its usage per served version; NotFound if none."""
        ...

    def list_pools(self) -> list[Pool]:
        """The shared model pools: replicas, loaded models, memory, hit rate, evictions."""
        ...

    def get_pool(self, name: str) -> Pool:
        """One shared model pool (`shared`); NotFound naming the pools if none."""
        ...

    def canary_status(self, name: str) -> CanaryStatus:
        """The deployment's automated canary analysis: the canary in place (when
        `--analysis auto`) and its decisions with their figures and tests, newest first."""
        ...

    def scale_deployment(self, name: str, replicas: int) -> Deployment:
        """A fixed replica count (autoscaling, if on, is turned off)."""
        ...

    def update_deployment(self, request: RolloutRequest) -> Deployment:
        """Roll out another version of the model: all at once, or `canary` percent first.

        In production an unapproved version needs `override_approval` (admins only)."""
        ...

    def promote_deployment(self, name: str) -> Deployment:
        """Send all traffic to the canary; IllegalTransition when there is none."""
        ...

    def rollback_deployment(self, name: str) -> Deployment:
        """Drop a canary, or go back to the version served before the last rollout."""
        ...

    def stop_deployment(self, name: str) -> Deployment: ...

    def wait_deployment(self, name: str, timeout: float, canary_settles: bool = True) -> Deployment:
        """Poll until the deployment settles: running, failed or stopped, an error
        reported, or (unless `canary_settles` is False) a canary in place.

        Raises Unavailable after `timeout` seconds. Local mode returns at once.
        """
        ...

    def predict(
        self, target: str, body: bytes | dict[str, Any], version: int | None = None
    ) -> dict[str, Any]:
        """One Open Inference Protocol request to a deployment (or a model's live
        deployment); the response as JSON. Local mode answers in this process."""
        ...

    # -- drift ---------------------------------------------------------------------

    def set_drift_reference(
        self, name: str, version: int, path: Path, format: str | None = None
    ) -> DriftReference:
        """Profile a data file (CSV, JSONL, Parquet) as the version's drift reference.

        Its columns must be the version's inputs (and may add its outputs):
        InvalidInput names the missing and unexpected ones, and nothing is stored.
        """
        ...

    def get_drift_reference(self, name: str, version: int) -> DriftReference:
        """NotFound when the version has none; a `failed` one says why profiling failed."""
        ...

    def drift(self, name: str, version: int, since: str = "24h") -> DriftReport:
        """The version's logged requests over the last `since` against its reference."""
        ...

    def compare_drift(
        self, name: str, version: int, path: Path, format: str | None = None
    ) -> DriftReport:
        """A data file of recent inputs against the version's reference."""
        ...

    # -- monitoring ---------------------------------------------------------------------

    def monitor(
        self, name: str, since: str | timedelta = "24h", version: int | None = None
    ) -> MonitorReport:
        """The monitor report of a model over the last `since` (24h, 7d ...), for one
        version or all: health score and its parts, performance, trends, degradation,
        drift, accuracy, cost, alerts and recommendations. NotFound for an unknown model
        or version; a part with no data is empty with a note saying why."""

    # -- cost (issue 11) ----------------------------------------------------------

    def cost_report(self, since: str = "30d", by: str = "model") -> CostReport:
        """What was spent in the last `since`, grouped by model, deployment, run, user
        or tag:KEY."""
        ...

    def run_cost(self, run_id: int) -> CostSummary:
        """A run's measured cost, with its estimate beside it."""
        ...

    def deployment_cost(self, name: str, since: str = "30d") -> CostSummary:
        """A deployment's replica cost in the last `since`, per 1,000 requests."""
        ...

    def list_budgets(self) -> list[BudgetStatus]: ...

    def set_budget(self, request: BudgetRequest) -> Budget:
        """A monthly budget for a tag, a user or a model (admins only)."""
        ...

    def remove_budget(self, budget_id: int) -> Budget: ...

    def platform_figures(self, since: str = "24h") -> PlatformFigures:
        """Training success rate, queue wait, job time, utilisation and uptime."""

    # -- prediction log, feedback, accuracy (issue 11) --

    def list_predictions(
        self, model: str, since: str = "24h", limit: int = 100, version: int | None = None
    ) -> list[LoggedPrediction]:
        """The newest sampled requests of `model` in the last `since` (e.g. "24h")."""
        ...

    def send_feedback(self, model: str, source: Path) -> FeedbackOutcome:
        """Labels from a JSON-lines file, joined to logged requests by request id.

        Ids never logged are counted in the outcome; any malformed line or label of
        the wrong type refuses the whole file (InvalidInput naming the lines)."""
        ...

    def accuracy(
        self, model: str, since: str = "24h", version: int | None = None
    ) -> AccuracySummary:
        """Accuracy (or MAE) from feedback, per version and over time."""
        ...

    def set_prediction_log(self, deployment: str, policy: PredictionLogPolicy) -> Deployment:
        """Change the share of a deployment's requests the prediction log samples."""

    def performance(
        self, name: str, since: str = "24h", version: int | None = None
    ) -> PerformanceSummary:
        """How a model served over the last `since` (30m, 24h, 7d), for one version if
        given: requests, errors, latency quantiles, resources, series and trend."""
        ...

    # -- governance: lineage --

    def lineage(self, name: str, version: int) -> LineageGraph:
        """Where the version came from (datasets with digests, run, pipeline, base and
        optimised-from versions) and what came of it (versions made from it, deployments
        serving it), as typed nodes and edges."""
        ...

    def model_card(self, name: str, version: int) -> VersionDocument:
        """A Hugging Face style README.md generated now from the registry and the reviews."""
        ...

    def governance_report(self, name: str, version: int) -> VersionDocument:
        """The auditor's report: version, policy, assessments, reviews, lineage, audit events."""
        ...

    # -- governance: compliance --

    def compliance_check(self, name: str, version: int) -> Assessment:
        """Run the compliance checks on a version now and record the result: each check
        pass, fail or not applicable with its reason (figures["checks"])."""
        ...

    def ethics_review(self, name: str, version: int, text: str) -> Assessment:
        """Record the caller's ethics review (YAML `text`) of a version; InvalidInput
        naming each missing field, PermissionDenied for one's own version."""
        ...

    # -- governance: workflow ---------------------------------------------------

    def show_policy(self, version: int | None = None) -> PolicyVersion:
        """The governance policy in force (or one version of it; 0 is the default)."""
        ...

    def set_policy(self, text: str) -> PolicyVersion:
        """Make the YAML `text` the policy in force (admins); InvalidInput listing every
        problem, nothing stored, when it is not a valid policy."""
        ...

    def policy_history(self) -> list[PolicyVersion]:
        """Every policy version, newest first, ending with the default (version 0)."""
        ...

    def request_review(
        self, name: str, version: int, reviewers: list[str] | None = None
    ) -> ReviewRequest:
        """Open (or re-open) the review of a version; reviewers hear of it by webhook."""
        ...

    def review(
        self, name: str, version: int, approve: bool, note: str | None = None
    ) -> ModelVersion:
        """One reviewer's approve or reject under the policy (as `approve`/`reject`)."""
        ...

    def governance_status(
        self, name: str, version: int, stage: str = "production"
    ) -> GovernanceStatus:
        """What the policy needs before `stage`, what is done and what is missing."""
        ...

    # -- governance: explain --

    def explain(
        self, name: str, version: int, path: Path, options: ExplainOptions | None = None
    ) -> Explanation:
        """Explain a version on a data file (CSV, JSONL, Parquet) and record its
        explainability assessment: Integrated Gradients for the PyTorch classifiers
        trained here, permutation importance for any servable version. InvalidInput
        names what does not fit (missing features, label, row), and nothing is recorded."""
        ...

    # -- governance: bias --

    def assess_bias(self, name: str, version: int, path: Path, options: BiasOptions) -> Assessment:
        """Run the version over a labelled data file (CSV, JSONL, Parquet) and judge its
        answers across the groups of the `sensitive` columns (each alone and together)
        against the policy's bias bars; the recorded assessment, figures included.

        InvalidInput (nothing recorded) for a missing column, a label column with one
        class, labels the model does not predict, or data without the model's features.
        """
        ...

    def bias_chart(self, name: str, version: int, assessment_id: int | None = None) -> bytes:
        """The PNG chart of the version's newest bias assessment (or of `assessment_id`)."""
        ...

    # -- import and export with other platforms (docs/interop.md) --

    def import_model(
        self, request: ImportRequest, source: Path, progress: Progress | None = None
    ) -> ModelVersion:
        """Register `source` (an MLflow model directory, a Hugging Face folder or an ONNX
        file, as `request.from_format` says) as a new version, keeping what its layout says
        (signature, requirements, license, card). InvalidInput names what is wrong with
        the layout and nothing is registered; UnsafeModel for a pickle without trust."""
        ...

    def export_model(self, ref: str, to: str, dest: Path) -> ExportResult:
        """Write version `ref` as `to` (mlflow, huggingface, onnx) into `dest`, a new or
        empty folder (Conflict otherwise, nothing written); filled whole or not at all."""
        ...

    # -- optimisation (issue 15) --

    def optimize(
        self,
        request: OptimiseRequest,
        calibration: Path | None = None,
        eval_data: Path | None = None,
    ) -> OptimisationReport:
        """Export a version to ONNX (and quantise it to int8, or halve it to fp16), measure
        source and result on the source's validation rows (or `eval_data`), and register
        the result as a new version when its accuracy drop is within the tolerance (or
        `request.force`). `calibration` rows make int8 static instead of dynamic.

        InvalidInput (nothing registered) for a tolerance out of [0, 1], a version no
        exporter covers, data without the model's columns, fp16 without a GPU.
        """
        ...

    # -- personas (issue 17, docs/personas.md) --

    def create_persona(self, request: PersonaRequest) -> Persona:
        """A persona calling `request.model` through an alias (set on the newest version
        if missing). InvalidInput for a bad policy (an unknown trigger, a margin out of
        range); NotFound for a model that is not registered; Conflict for a taken name."""
        ...

    def list_personas(self) -> list[Persona]: ...

    def show_persona(self, name: str) -> PersonaView:
        """The persona, the version it calls, its interaction counts and last cycle."""
        ...

    def set_persona_policy(self, name: str, policy: str) -> Persona: ...

    def delete_persona(self, name: str) -> None: ...

    def add_interactions(self, name: str, interactions: list[InteractionIn]) -> IngestReport:
        """A batch (at most 1000), all or nothing: NotFound for a version that does not
        exist, InvalidInput for a model the persona does not use; ids seen before are
        skipped and counted; personal data is blanked before it is stored."""
        ...

    def learn(self, name: str) -> Cycle:
        """Start one learning cycle now; Conflict while one is open."""
        ...

    def learn_plan(self, name: str) -> LearnPlan:
        """What `learn` would do now (the dry run); changes nothing."""
        ...

    def persona_history(self, name: str) -> list[Cycle]: ...

    def close(self) -> None: ...


if TYPE_CHECKING:

    def _both_clients_keep_the_contract(http: Client, local: LocalClient) -> list[ModelhubClient]:
        """Never called: mypy fails here when either client drifts from the Protocol."""
        return [http, local]
