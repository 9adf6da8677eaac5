"""SQLAlchemy Core tables of the metadata store. Alembic migrations mirror these."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

metadata = MetaData()

models = Table(
    "models",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(100), nullable=False, unique=True),
    Column("type", String(32), nullable=False),
    Column("description", Text, nullable=False, default=""),
    Column("owner", String(128), nullable=False),
    Column("license", String(128)),
    Column("status", String(16), nullable=False),
    # Numbers are never reused: deleting version 3 must not let a new artifact be 3.
    Column("next_version", Integer, nullable=False, server_default="1"),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Index("ix_models_type", "type"),
)

model_tags = Table(
    "model_tags",
    metadata,
    Column("model_id", Integer, ForeignKey("models.id", ondelete="CASCADE"), primary_key=True),
    Column("key", String(64), primary_key=True),
    Column("value", String(256), nullable=False),
    Index("ix_model_tags_key_value", "key", "value"),
)

versions = Table(
    "versions",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("model_id", Integer, ForeignKey("models.id", ondelete="CASCADE"), nullable=False),
    Column("version", Integer, nullable=False),
    Column("label", String(64)),
    Column("framework", String(32), nullable=False),
    Column("architecture", String(128)),
    Column("parameters", BigInteger),
    Column("size", BigInteger, nullable=False),
    Column("precision", String(16), nullable=False),
    Column("quantization", String(64)),
    Column("context_length", Integer),
    Column("digest", String(64), nullable=False),
    Column("signature", JSON, nullable=False),
    Column("inspection", JSON, nullable=False),
    Column("resources", JSON),
    Column("lineage", JSON, nullable=False),
    Column("metrics", JSON, nullable=False),
    Column("stage", String(16), nullable=False),
    Column("approval", String(16), nullable=False),
    Column("approval_note", Text),
    Column("trusted", Boolean, nullable=False, default=False),
    Column("model_card", Text),
    Column("status", String(16), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("created_by", String(128), nullable=False),
    UniqueConstraint("model_id", "version", name="uq_versions_model_version"),
    Index("ix_versions_stage", "stage", "model_id"),
    Index("ix_versions_framework", "framework", "model_id"),
    Index("ix_versions_digest", "digest"),
)

version_files = Table(
    "version_files",
    metadata,
    Column("version_id", Integer, ForeignKey("versions.id", ondelete="CASCADE"), primary_key=True),
    Column("path", String(1024), primary_key=True),
    Column("digest", String(64), nullable=False),
    Column("size", BigInteger, nullable=False),
    Index("ix_version_files_digest", "digest"),
)

aliases = Table(
    "aliases",
    metadata,
    Column("model_id", Integer, ForeignKey("models.id", ondelete="CASCADE"), primary_key=True),
    Column("alias", String(64), primary_key=True),
    Column("version_id", Integer, ForeignKey("versions.id", ondelete="CASCADE"), nullable=False),
    Index("ix_aliases_version", "version_id"),
)

audit_events = Table(
    "audit_events",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("actor", String(128), nullable=False),
    Column("action", String(64), nullable=False),
    Column("target", String(256), nullable=False),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("details", JSON, nullable=False),
    Column("request_id", String(64)),
    Column("prev_hash", String(64), nullable=False),
    Column("hash", String(64), nullable=False),
    Index("ix_audit_actor", "actor"),
    Index("ix_audit_action", "action"),
    Index("ix_audit_at", "at"),
)

# One row; updating it inside every audited transaction serialises appends to the
# hash chain on PostgreSQL (row lock) as SQLite's single writer already does.
audit_head = Table(
    "audit_head",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("last_id", Integer, nullable=False),
    Column("last_hash", String(64), nullable=False),
)


principals = Table(
    "principals",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(64), nullable=False, unique=True),
    Column("role", String(32), nullable=False),
    Column("disabled", Boolean, nullable=False, default=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

tokens = Table(
    "tokens",
    metadata,
    Column("id", String(32), primary_key=True),
    Column(
        "principal_id", Integer, ForeignKey("principals.id", ondelete="CASCADE"), nullable=False
    ),
    # HMAC-SHA256 of the secret under the server's key: a stolen database holds no token.
    Column("secret_hash", String(64), nullable=False),
    Column("scopes", JSON, nullable=False),
    Column("description", String(256), nullable=False, default=""),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True)),
    Column("revoked_at", DateTime(timezone=True)),
    Column("last_used_at", DateTime(timezone=True)),
    Index("ix_tokens_principal", "principal_id"),
)


datasets = Table(
    "datasets",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(100), nullable=False),
    Column("version", Integer, nullable=False),
    Column("format", String(16), nullable=False),
    Column("digest", String(64), nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("rows", BigInteger, nullable=False),
    Column("columns", JSON, nullable=False),
    Column("description", Text, nullable=False, default=""),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("created_by", String(128), nullable=False),
    UniqueConstraint("name", "version", name="uq_datasets_name_version"),
    Index("ix_datasets_digest", "digest"),
)

pipelines = Table(
    "pipelines",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(100), nullable=False, unique=True),
    Column("version", Integer, nullable=False),
    Column("type", String(32), nullable=False),
    Column("trainer", String(64), nullable=False),
    Column("priority", String(16), nullable=False),
    Column("spec", JSON, nullable=False),
    Column("script_digest", String(64), nullable=True),
    # created_by made the pipeline (its owner); updated_by wrote the current version.
    Column("created_by", String(128), nullable=False),
    Column("updated_by", String(128), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

runs = Table(
    "runs",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("pipeline", String(100), nullable=False),
    Column("pipeline_version", Integer, nullable=False),
    Column("status", String(16), nullable=False),
    Column("priority", String(16), nullable=False),
    Column("resources", JSON, nullable=False),
    Column("created_by", String(128), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("queued_at", DateTime(timezone=True), nullable=True),
    Column("started_at", DateTime(timezone=True), nullable=True),
    Column("finished_at", DateTime(timezone=True), nullable=True),
    Column("attempts", Integer, nullable=False, default=0),
    Column("max_attempts", Integer, nullable=False),
    Column("next_attempt_at", DateTime(timezone=True), nullable=True),
    Column("progress", Float, nullable=False, default=0.0),
    Column("epoch", Integer, nullable=True),
    Column("step", Integer, nullable=False, default=0),
    Column("total_steps", Integer, nullable=True),
    Column("eta_seconds", Float, nullable=True),
    Column("last_progress_at", DateTime(timezone=True), nullable=True),
    Column("metrics", JSON, nullable=False),
    Column("result_model", String(100), nullable=False),
    Column("result_version", Integer, nullable=True),
    Column("error", Text, nullable=True),
    Column("error_code", String(32), nullable=True),
    Column("cancel_requested", Boolean, nullable=False, default=False),
    Column("owner", String(200), nullable=True),
    Column("lease_expires_at", DateTime(timezone=True), nullable=True),
    Column("worker_pid", Integer, nullable=True),
    Column("engine", String(16), nullable=True),
    Column("requested_engine", String(16), nullable=True),
    Column("spec", JSON, nullable=False),
    Column("inputs", JSON, nullable=False),
    Index("ix_runs_status", "status"),
    Index("ix_runs_pipeline", "pipeline"),
)

run_metrics = Table(
    "run_metrics",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("run_id", Integer, ForeignKey("runs.id", ondelete="CASCADE"), nullable=False),
    Column("name", String(100), nullable=False),
    Column("step", Integer, nullable=False),
    Column("value", Float, nullable=True),
    Column("at", DateTime(timezone=True), nullable=False),
    Index("ix_run_metrics_run", "run_id", "name", "step"),
)

run_events = Table(
    "run_events",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("run_id", Integer, ForeignKey("runs.id", ondelete="CASCADE"), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("data", JSON, nullable=False),
    Index("ix_run_events_run", "run_id", "id"),
)

run_checkpoints = Table(
    "run_checkpoints",
    metadata,
    Column("run_id", Integer, ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True),
    Column("step", Integer, primary_key=True),
    Column("best", Boolean, primary_key=True),
    Column("digest", String(64), nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("metric", Float, nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Index("ix_run_checkpoints_digest", "digest"),
)

alerts = Table(
    "alerts",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("subject", String(200), nullable=False),
    Column("rule", String(64), nullable=False),
    Column("severity", String(16), nullable=False),
    Column("message", Text, nullable=False),
    Column("state", String(16), nullable=False),
    Column("fired_at", DateTime(timezone=True), nullable=False),
    Column("resolved_at", DateTime(timezone=True), nullable=True),
    # -- alerts (issue 11): the engine's lifecycle, acknowledgement and notification
    Column("rule_id", Integer, nullable=True),
    Column("labels", JSON, nullable=True),
    Column("pending_since", DateTime(timezone=True), nullable=True),
    Column("clearing_since", DateTime(timezone=True), nullable=True),
    Column("acknowledged_by", String(100), nullable=True),
    Column("acknowledged_at", DateTime(timezone=True), nullable=True),
    # The state webhooks were last told of; differs from `state` while one is owed.
    Column("notified", String(16), nullable=True),
    # The rule's webhooks when the alert opened: a removed rule still tells them it ended.
    Column("webhooks", JSON, nullable=True),
    Index("ix_alerts_subject", "subject", "state"),
)

deployments = Table(
    "deployments",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(100), nullable=False, unique=True),
    Column("model", String(100), nullable=False),
    Column("environment", String(16), nullable=False),
    # [{"version", "percent"}, ...]: one share, or two during a rollout or a canary.
    Column("traffic", JSON, nullable=False),
    Column("previous_version", Integer, nullable=True),
    Column("replicas", Integer, nullable=False),
    Column("autoscale", JSON(none_as_null=True), nullable=True),
    Column("rollout", JSON(none_as_null=True), nullable=True),
    Column("load_balancing", String(32), nullable=False),
    Column("resources", JSON, nullable=False),
    Column("status", String(16), nullable=False),
    Column("error", Text, nullable=True),
    Column("endpoint", String(256), nullable=True),
    Column("health", JSON, nullable=False),
    Column("approval_override", Boolean, nullable=False, default=False),
    Column("created_by", String(128), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Index("ix_deployments_status", "status"),
)

# Keyed by deployment name, not id: a stopped deployment replaced under the same
# name starts from no usage (its rows are deleted with it), and the supervisor,
# the only writer, knows deployments by name.
deployment_usage = Table(
    "deployment_usage",
    metadata,
    Column("deployment", String(100), primary_key=True),
    Column("version", Integer, primary_key=True),
    Column("requests", BigInteger, nullable=False),
    Column("errors", BigInteger, nullable=False),
    Column("rows", BigInteger, nullable=False),
    Column("latency_ms_sum", Float, nullable=False),
    # Counts per upper bound of LATENCY_BOUNDS_MS, the last one everything slower.
    Column("latency_buckets", JSON, nullable=False),
    Column("active_callers", Integer, nullable=False),
    Column("last_used", DateTime(timezone=True), nullable=True),
)

# -- alerts --
alert_rules = Table(
    "alert_rules",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(64), nullable=False, unique=True),
    Column("metric", String(64), nullable=False),
    Column("comparison", String(16), nullable=False),
    Column("threshold", Float, nullable=False),
    Column("for_seconds", Float, nullable=False),
    Column("severity", String(16), nullable=False),
    Column("scope_kind", String(16), nullable=False),
    Column("target", String(200), nullable=False),
    Column("labels", JSON, nullable=False),
    Column("webhooks", JSON, nullable=False),
    Column("enabled", Boolean, nullable=False),
    Column("created_by", String(100), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

alert_deliveries = Table(
    "alert_deliveries",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("alert_id", Integer, nullable=False),
    Column("url", Text, nullable=False),
    Column("status", String(16), nullable=False),
    Column("attempt", Integer, nullable=False),
    Column("status_code", Integer, nullable=True),
    Column("error", Text, nullable=True),
    Column("outcome", String(16), nullable=False),
    Column("at", DateTime(timezone=True), nullable=False),
    Index("ix_alert_deliveries_alert", "alert_id"),
)

# -- drift --

# One drift reference per model version: the profile is an artifact (its digest
# here), or, when profiling a trained version's dataset failed, the error.
drift_references = Table(
    "drift_references",
    metadata,
    Column("version_id", Integer, ForeignKey("versions.id", ondelete="CASCADE"), primary_key=True),
    Column("status", String(16), nullable=False),
    Column("digest", String(64), nullable=True),
    Column("source", String(512), nullable=False),
    Column("rows", BigInteger, nullable=False),
    Column("columns", JSON, nullable=False),
    Column("error", Text, nullable=True),
    Column("created_by", String(128), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Index("ix_drift_references_digest", "digest"),
)

# -- canary --
# One row per decision of the automated canary analysis; (deployment, started_at)
# names one canary, and its uniqueness lets only one server act on it.
canary_decisions = Table(
    "canary_decisions",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("deployment", String(100), nullable=False),
    Column("model", String(100), nullable=False),
    Column("stable_version", Integer, nullable=False),
    Column("canary_version", Integer, nullable=False),
    Column("outcome", String(16), nullable=False),
    Column("reason", Text, nullable=False),
    # {"stable": VersionFigures, "canary": VersionFigures}
    Column("figures", JSON, nullable=False),
    # [Verdict, ...]: each test with its statistic, p-value, effect and outcome.
    Column("verdicts", JSON, nullable=False),
    Column("started_at", DateTime(timezone=True), nullable=False),
    Column("decided_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("deployment", "started_at", name="uq_canary_decisions_canary"),
    Index("ix_canary_decisions_deployment", "deployment", "decided_at"),
)

# -- cost --
# One row per attempt of a run: the scheduler rewrites it as it samples the worker's
# process tree, and the worker's own figure at exit replaces it for good (final).
run_usage = Table(
    "run_usage",
    metadata,
    Column("run_id", Integer, ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True),
    Column("attempt", Integer, primary_key=True),
    Column("cpu_seconds", Float, nullable=False),
    Column("gpu_seconds", Float, nullable=False),
    Column("wall_seconds", Float, nullable=False),
    Column("final", Boolean, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

# A replica process of a deployment in one readiness state; the supervisor's reports
# open and close them. Replica-seconds and uptime are read from these spans.
replica_spans = Table(
    "replica_spans",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("deployment", String(100), nullable=False),
    Column("pid", Integer, nullable=False),
    Column("ready", Boolean, nullable=False),
    Column("started_at", DateTime(timezone=True), nullable=False),
    Column("ended_at", DateTime(timezone=True), nullable=True),
    Column("last_seen_at", DateTime(timezone=True), nullable=False),
    Index("ix_replica_spans_deployment", "deployment", "ended_at"),
)

cost_budgets = Table(
    "cost_budgets",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("scope", String(16), nullable=False),
    Column("key", String(128), nullable=False),
    Column("value", String(256), nullable=False),
    Column("monthly", Float, nullable=False),
    Column("currency", String(16), nullable=False),
    Column("created_by", String(128), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("scope", "key", "value", name="uq_cost_budgets_scope"),
)

# A threshold of a budget alerted in a month: the primary key makes it once.
cost_budget_alerts = Table(
    "cost_budget_alerts",
    metadata,
    Column(
        "budget_id", Integer, ForeignKey("cost_budgets.id", ondelete="CASCADE"), primary_key=True
    ),
    Column("month", String(7), primary_key=True),
    Column("threshold", Integer, primary_key=True),
    Column("fired_at", DateTime(timezone=True), nullable=False),
)

# -- predictions --
# The prediction log policy of a deployment ({"rate", "max_per_minute"}).
deployments.append_column(Column("prediction_log", JSON(none_as_null=True), nullable=True))

# One closed Parquet file of sampled requests, stored in the artifact store under its
# digest: ingesting the same file twice finds the digest and adds nothing.
prediction_log_files = Table(
    "prediction_log_files",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("digest", String(80), nullable=False, unique=True),
    Column("deployment", String(100), nullable=False),
    Column("model", String(100), nullable=False),
    Column("version", Integer, nullable=False),
    Column("rows", Integer, nullable=False),
    Column("requests", Integer, nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("first_at", DateTime(timezone=True), nullable=False),
    Column("last_at", DateTime(timezone=True), nullable=False),
    Column("ingested_at", DateTime(timezone=True), nullable=False),
    Index("ix_prediction_log_files_model_time", "model", "version", "last_at"),
)

# One sampled request: what feedback joins by (model, request_id) and where its
# inputs and outputs are (the file's digest). The label arrives later.
prediction_records = Table(
    "prediction_records",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("model", String(100), nullable=False),
    Column("request_id", String(128), nullable=False),
    Column("version", Integer, nullable=False),
    Column("deployment", String(100), nullable=False),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("latency_ms", Float, nullable=False),
    Column("rows", Integer, nullable=False),
    Column("prediction", JSON(none_as_null=True), nullable=True),
    Column("kind", String(8), nullable=False),
    Column("label", JSON(none_as_null=True), nullable=True),
    Column("labelled_at", DateTime(timezone=True), nullable=True),
    Column("file_digest", String(80), nullable=False),
    UniqueConstraint("model", "request_id", name="uq_prediction_records_model_request"),
    Index("ix_prediction_records_model_at", "model", "at"),
)

# -- history --

# Roll-ups of what one deployment version served, per minute and per hour (the hour
# rows are kept up to date as minutes arrive). Keyed by model and deployment name (like
# deployment_usage); the rows of deployment "" merge all the model's deployments, so a
# model's week reads 168 hours per version however many deployments serve it.
# `latency` is a packed mergeable quantile sketch (milliseconds), empty without requests.


def _rollup_table(name: str) -> Table:
    return Table(
        name,
        metadata,
        Column("model", String(100), primary_key=True),
        Column("deployment", String(100), primary_key=True),
        Column("version", Integer, primary_key=True),
        Column("start", DateTime(timezone=True), primary_key=True),
        Column("requests", BigInteger, nullable=False),
        Column("errors", BigInteger, nullable=False),
        Column("errors_by_kind", JSON, nullable=False),
        Column("rows", BigInteger, nullable=False),
        Column("batches", BigInteger, nullable=False),
        Column("batch_rows", BigInteger, nullable=False),
        Column("in_flight_peak", Integer, nullable=False),
        Column("latency", LargeBinary, nullable=False),
        Index(f"ix_{name}_deployment", "deployment", "version", "start"),
        Index(f"ix_{name}_start", "start"),
    )


monitoring_minutes = _rollup_table("monitoring_minutes")
monitoring_hours = _rollup_table("monitoring_hours")

# One row per sampled process: a replica (subject: deployment) or a training worker
# (subject: run id). cpu_seconds is the process's cumulative CPU time at `at`.
resource_samples = Table(
    "resource_samples",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("kind", String(16), nullable=False),
    Column("subject", String(100), nullable=False),
    Column("pid", Integer, nullable=False),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("cpu_percent", Float, nullable=False),
    Column("cpu_seconds", Float, nullable=False),
    Column("rss_bytes", BigInteger, nullable=False),
    Column("gpu_util", Float, nullable=True),
    Column("gpu_memory_bytes", BigInteger, nullable=True),
    Column("interval_seconds", Float, nullable=False),
    Index("ix_resource_samples_subject", "kind", "subject", "at"),
    Index("ix_resource_samples_at", "at"),
)

# -- governance --
# Each version of the governance policy as its YAML text; the newest is in force.
governance_policies = Table(
    "governance_policies",
    metadata,
    Column("version", Integer, primary_key=True, autoincrement=False),
    Column("text", Text, nullable=False),
    Column("digest", String(64), nullable=False),
    Column("created_by", String(100), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

# Evidence about one version (bias, explainability, ethics, compliance), never changed.
assessments = Table(
    "assessments",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("model", String(100), nullable=False),
    Column("version", Integer, nullable=False),
    Column("kind", String(16), nullable=False),
    Column("passed", Boolean, nullable=False),
    Column("policy_version", Integer, nullable=False),
    Column("summary", Text, nullable=False),
    Column("figures", JSON, nullable=False),
    # {"name": digest}: files kept with it in the artifact store (charts).
    Column("attachments", JSON, nullable=False),
    Column("actor", String(100), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Index("ix_assessments_version", "model", "version", "kind", "created_at"),
)

review_requests = Table(
    "review_requests",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("model", String(100), nullable=False),
    Column("version", Integer, nullable=False),
    Column("state", String(16), nullable=False),
    Column("requested_by", String(100), nullable=False),
    Column("reviewers", JSON, nullable=False),
    Column("policy_version", Integer, nullable=False),
    Column("opened_at", DateTime(timezone=True), nullable=False),
    Column("closed_at", DateTime(timezone=True), nullable=True),
    Index("ix_review_requests_version", "model", "version", "id"),
)

review_decisions = Table(
    "review_decisions",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column(
        "request_id",
        Integer,
        ForeignKey("review_requests.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("model", String(100), nullable=False),
    Column("version", Integer, nullable=False),
    Column("reviewer", String(100), nullable=False),
    Column("role", String(32), nullable=False),
    Column("approve", Boolean, nullable=False),
    Column("note", Text, nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("request_id", "reviewer", name="uq_review_decisions_reviewer"),
)

# -- several servers on one database (issue 16) ------------------------------------

# One row per `modelhub server` sharing this database, by name; its heartbeat says
# whether it lives. A restart under the same name takes its row over.
hosts = Table(
    "hosts",
    metadata,
    Column("name", String(200), primary_key=True),
    Column("address", String(256), nullable=False),
    Column("port", Integer, nullable=False),
    Column("pid", Integer, nullable=False),
    Column("cpus", Float, nullable=False),
    Column("memory_bytes", BigInteger, nullable=False),
    Column("started_at", DateTime(timezone=True), nullable=False),
    Column("heartbeat_at", DateTime(timezone=True), nullable=False),
    Column("stopped_at", DateTime(timezone=True), nullable=True),
)

# The host a deployment is placed on (its supervisor serves it); None: not placed yet.
deployments.append_column(Column("host", String(200), nullable=True))
# 0017: the shared model pool a deployment is placed on (`deploy --pool`); NULL: its
# own replicas. A column, not a key inside `resources`: `resources` is what a
# deployment may use (enforced), the pool is where it runs, and a column lets the
# pool's deployments be listed with an index rather than by parsing every row's JSON.
deployments.append_column(Column("pool", String(64), nullable=True))
Index("ix_deployments_pool", deployments.c.pool)

# -- personas (issue 17) -------------------------------------------------------------

# A persona, the models it calls (the intent model through an alias) and its policy.
personas = Table(
    "personas",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(100), nullable=False, unique=True),
    Column("model", String(100), nullable=False),
    Column("alias", String(64), nullable=False),
    Column("chat_model", String(100), nullable=True),
    Column("policy", JSON, nullable=False),
    Column("owner", String(128), nullable=False),
    Column("duplicates", BigInteger, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

# What people told a persona, personal data already blanked; `id` is the order they
# arrived in (a cycle's watermark), (persona, interaction_id) makes ingestion idempotent.
persona_interactions = Table(
    "persona_interactions",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("persona_id", Integer, ForeignKey("personas.id", ondelete="CASCADE"), nullable=False),
    Column("interaction_id", String(128), nullable=False),
    Column("model", String(100), nullable=False),
    Column("version", BigInteger, nullable=False),
    Column("request_id", String(128), nullable=True),
    Column("message", Text, nullable=False),
    Column("response", Text, nullable=False),
    Column("feedback", JSON, nullable=False),
    Column("label", String(128), nullable=True),
    Column("held_out", Boolean, nullable=False),
    Column("scrubbed", Integer, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("persona_id", "interaction_id", name="uq_persona_interactions_id"),
)

# One learning cycle: its state, and every step it took as JSON (`personas history`).
persona_cycles = Table(
    "persona_cycles",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("persona_id", Integer, ForeignKey("personas.id", ondelete="CASCADE"), nullable=False),
    Column("number", Integer, nullable=False),
    Column("status", String(16), nullable=False),
    Column("watermark", BigInteger, nullable=False),
    # Bumped by every update; an update must name the revision it read (several servers).
    Column("revision", Integer, nullable=False),
    Column("record", JSON, nullable=False),
    Column("started_at", DateTime(timezone=True), nullable=False),
    Column("finished_at", DateTime(timezone=True), nullable=True),
    UniqueConstraint("persona_id", "number", name="uq_persona_cycles_number"),
)
