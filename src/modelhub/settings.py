"""The one settings object. Nothing else in modelhub reads the environment."""

from __future__ import annotations

import ipaddress
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, ValidationInfo, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from modelhub.domain.auth import CODE_RUNNERS, Role, parse_duration
from modelhub.domain.ray_address import parse_ray_address
from modelhub.errors import InvalidInput


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="MODELHUB_", extra="ignore")

    home: Path = Field(
        default_factory=lambda: Path.home() / ".modelhub",
        description="Where the embedded database, artifacts and tokens live.",
    )
    database_url: str | None = Field(
        default=None,
        description="SQLAlchemy URL of the metadata store; default SQLite at <home>/modelhub.db.",
    )
    artifacts: str | None = Field(
        default=None,
        description="Artifact store: a folder or s3://bucket/prefix; default <home>/artifacts.",
    )
    url: str | None = Field(
        default=None,
        description="URL of a running modelhub server; when set the CLI talks to it.",
    )
    token: str | None = Field(default=None, description="API token the CLI and client send.")
    host: str = Field(default="127.0.0.1", description="Address `modelhub server` binds.")
    port: int = Field(default=8400, description="Port `modelhub server` binds.")
    key_path: Path | None = Field(
        default=None,
        description="The HMAC key that hashes API tokens; default <home>/server.key, made "
        "on first start. Servers sharing one database must share this key (point each at "
        "one copy of the first server's), or their tokens differ.",
    )
    host_name: str | None = Field(
        default=None,
        description="This server's name among the servers sharing the database (hosts "
        "list); default <machine name>:<port>. A restart under the same name takes its "
        "place back.",
    )
    host_address: str | None = Field(
        default=None,
        description="The address other servers use to reach this one and its replicas; "
        "default the bound address, or the machine name when it binds 0.0.0.0.",
    )
    host_heartbeat_seconds: float = Field(
        default=2.0,
        gt=0,
        description="How often a server renews its row in the hosts table and re-places "
        "deployments of hosts that died.",
    )
    host_dead_seconds: float = Field(
        default=10.0,
        gt=0,
        description="A server whose heartbeat is older than this is dead: its deployments "
        "move to a live server. Must exceed host_heartbeat_seconds.",
    )
    # -- the authenticated data plane (issue 16, part 2) --
    data_plane_port: int | None = Field(
        default=None,
        ge=0,
        le=65535,
        description="Port of the data-plane listener on `host`, where every deployment "
        "answers by name with a token (`/v2/models/{deployment}/infer`, `/v1/embeddings`, "
        "`/v1/completions`); unset: no such listener (the per-deployment loopback "
        "endpoints and the platform route stay either way).",
    )
    data_plane_token_cache_seconds: float = Field(
        default=1.0,
        gt=0,
        le=60,
        description="How long a replica trusts a token it verified on the data-plane "
        "listener: a revoked token stops working there within this time.",
    )
    data_plane_ssl_certfile: Path | None = Field(
        default=None,
        description="PEM certificate (chain) for TLS on the data-plane listener; with "
        "`data_plane_ssl_keyfile`. Unset: plain HTTP.",
    )
    data_plane_ssl_keyfile: Path | None = Field(
        default=None, description="PEM private key of `data_plane_ssl_certfile`."
    )
    s3_endpoint_url: str | None = Field(
        default=None, description="Endpoint of an S3-compatible store (MinIO, moto ...)."
    )
    upload_chunk_bytes: int = Field(
        default=8 * 1024 * 1024, description="Chunk size for streaming artifacts."
    )
    auth: bool = Field(
        default=True,
        description="Require a token on every API request. Off only for loopback "
        "experiments: a non-loopback server without auth is refused unless forced.",
    )
    token_cache_seconds: float = Field(
        default=10.0,
        description="How long a verified token is trusted without rereading it; "
        "a revocation on another server process takes effect within this time.",
    )
    token_default_ttl: timedelta = Field(
        default=timedelta(days=30),
        description="Lifetime of a new token when its creator names none (e.g. 30d, 12h); "
        "never beyond the creating token's own end.",
    )
    token_max_ttl: timedelta = Field(
        default=timedelta(days=365),
        description="The longest a token may live (e.g. 365d); also the first admin's token.",
    )
    auth_failure_limit: int = Field(
        default=10, description="Failed authentications per client before it is slowed down."
    )
    auth_failure_window_seconds: float = Field(
        default=60.0, description="The window the failure limit counts over."
    )
    trusted_proxies: Annotated[list[str], NoDecode] = Field(
        default=[],
        description="Addresses or networks (comma-separated, e.g. 127.0.0.1,10.0.0.0/8) of "
        "reverse proxies whose X-Forwarded-For names the real client, on the API server and "
        "the replicas alike. Empty (the default): the header is ignored and the client is "
        "the peer of the connection.",
    )
    code_runners: Annotated[list[Role], NoDecode] = Field(
        default=sorted(CODE_RUNNERS),
        description="Roles that may make the server run their own code (`code.run`: "
        "pipelines with the script trainer), comma-separated in the environment, e.g. "
        "admin,data_scientist,developer.",
    )
    import_dirs: Annotated[list[Path], NoDecode] = Field(
        default=[],
        description="Folders on the server whose model files and folders may be imported by "
        "path (the dashboard's Import Model), comma-separated in the environment; a path "
        "must resolve, symbolic links followed, inside one of them. Default <home>/imports.",
    )
    gc_grace_seconds: int = Field(
        default=3600,
        description="Blobs younger than this are kept by GC even when unreferenced "
        "(an upload may be about to reference them).",
    )

    cpu_hour_price: float = Field(
        default=0.05, ge=0, description="Price of one CPU core for one hour (cost estimates)."
    )
    gpu_hour_price: float = Field(
        default=2.5, ge=0, description="Price of one GPU for one hour (cost estimates)."
    )
    storage_gb_month_price: float = Field(
        default=0.023, ge=0, description="Price of storing 1 GB (10**9 bytes) for a month."
    )
    currency: str = Field(default="USD", description="Currency the prices above are in.")

    # -- cost (issue 11, lane cost): measured cost, budgets, the platform's figures --
    replica_hour_price: float = Field(
        default=0.05,
        ge=0,
        description="Price of one serving replica for one hour (deployment cost); the CPU, "
        "GPU and storage prices above price runs and stored bytes.",
    )
    cost_check_seconds: float = Field(
        default=300.0,
        gt=0,
        description="How often the server checks this month's spend against the budgets "
        "(alerts at 80 % and 100 %, once each per budget and month).",
    )
    cost_figures_cache_seconds: float = Field(
        default=30.0,
        ge=0,
        description="How long /metrics reuses the platform figures it computed (training "
        "success, queue wait, utilisation, uptime) before reading the store again.",
    )

    train_scheduler: bool = Field(
        default=True,
        description="Run the training scheduler inside `modelhub server`. One scheduler "
        "per database: turn it off on extra API servers that share one.",
    )
    train_cpus: float | None = Field(
        default=None, gt=0, description="CPU slots training may use; default every core."
    )
    train_memory: str | None = Field(
        default=None, description="Memory training may use (e.g. 16GiB); default all of it."
    )
    train_gpus: int | None = Field(
        default=None, ge=0, description="GPUs training may use; default every one torch sees."
    )
    train_max_running: int = Field(
        default=8, ge=1, description="At most this many runs train at once."
    )
    train_max_attempts: int = Field(
        default=3, ge=1, description="Attempts per run before a crashing run is failed."
    )
    train_retry_backoff_seconds: float = Field(
        default=2.0, ge=0, description="Wait before the first retry; doubles per attempt."
    )
    train_aging_seconds: float = Field(
        default=300.0, gt=0, description="A queued run gains one priority level per this wait."
    )
    train_stall_seconds: float = Field(
        default=600.0, gt=0, description="A running run with no progress this long is alerted."
    )
    train_lease_seconds: float = Field(
        default=10.0,
        gt=0,
        description="A running run is held by its server's lease this long past the last "
        "heartbeat; after a server dies its runs resume elsewhere (or after its restart) "
        "within this time.",
    )
    train_heartbeat_seconds: float = Field(
        default=2.0,
        gt=0,
        description="How often a server renews its runs' leases and sweeps expired ones; "
        "must be under train_lease_seconds.",
    )
    train_warm_workers: int = Field(
        default=1,
        ge=0,
        description="Worker processes kept started with torch imported, so a run starts "
        "in well under a second; 0 starts a fresh process per attempt.",
    )
    tune_poll_seconds: float = Field(
        default=1.0,
        gt=0,
        le=60,
        description="How often the tuning driver reads its studies' trial runs (their "
        "metrics for pruning, their ends); a new study or a resume wakes it at once.",
    )
    train_ray_address: str | None = Field(
        default=None,
        description="The Ray cluster runs with `engine: ray` go to: `auto` (the cluster this "
        "host belongs to), `ray://head:10001` (Ray Client, from any host) or `head:6379` "
        "(from a node of the cluster). Unset: no Ray engine.",
    )
    train_ray_unreachable: Literal["queue", "fail"] = Field(
        default="queue",
        description="What a run for the Ray engine does when the cluster cannot be reached "
        "as it would start: `queue` waits queued and is tried again later, `fail` fails "
        "it with the reason.",
    )
    train_ray_connect_timeout_seconds: float = Field(
        default=10.0,
        gt=0,
        description="How long reaching the Ray cluster may take before it counts as "
        "unreachable; an unreachable cluster is not tried again sooner than this.",
    )
    serve_supervisor: bool = Field(
        default=True,
        description="Whether `modelhub server` runs the deployments' replica processes. "
        "Off, deployments are recorded but nothing serves them.",
    )
    serve_warm_spares: int = Field(
        default=1,
        ge=0,
        description="Replica processes kept started with their libraries imported, so a "
        "deployment serves in well under two seconds; 0 starts each replica fresh.",
    )
    serve_warm_imports: Annotated[list[str], NoDecode] = Field(
        default=["torch", "onnxruntime", "sentence_transformers"],
        description="Modules a warm spare imports while it waits (comma-separated in the "
        "environment).",
    )
    cgroup_root: Path | None = Field(
        default=None,
        description="A delegated cgroup v2 folder where the server makes one cgroup per "
        "replica and training attempt to hold its memory and CPU limits (its "
        "cgroup.subtree_control must offer memory and cpu). Unset: the server's own cgroup "
        "when it qualifies, else address-space limits and CPU affinity (docs/scaling.md).",
    )
    serve_memory: str | None = Field(
        default=None,
        description="Memory budget of the models one replica keeps loaded (e.g. 2GiB); "
        "beyond it the least recently used model is unloaded. Unset: no limit.",
    )
    pool_replicas: int = Field(
        default=2,
        ge=1,
        le=64,
        description="Replica processes of the shared model pool (`deploy --pool shared`): "
        "each serves any deployment placed on the pool, loading it on its first request.",
    )
    pool_memory: str = Field(
        default="1GiB",
        description="Memory budget of the models one pool replica keeps loaded; beyond "
        "it the least recently used is unloaded. A version whose files are larger is "
        "refused a place on the pool.",
    )
    serve_max_batch_size: int = Field(
        default=32, ge=1, description="Most rows one dynamic batch holds."
    )
    serve_max_wait_ms: float = Field(
        default=0.0,
        ge=0,
        le=1000,
        description="How long a batch waits for more rows. 0 batches what arrived in the "
        "same event-loop turn and adds no wait.",
    )
    serve_max_body_bytes: int = Field(
        default=16 * 1024 * 1024, ge=1024, description="Largest inference request body."
    )
    serve_threads: int = Field(
        default=1, ge=1, description="Compute threads per replica process (torch, ONNX)."
    )
    serve_health_seconds: float = Field(
        default=0.5, gt=0, description="How often replicas are checked for life and death."
    )
    serve_usage_seconds: float = Field(
        default=2.0, gt=0, description="How often usage is collected from replicas and stored."
    )
    serve_ready_timeout_seconds: float = Field(
        default=120.0, gt=0, description="How long a new replica may take to load its models."
    )
    serve_drain_seconds: float = Field(
        default=30.0, ge=0, description="How long a replaced version may finish its requests."
    )
    serve_scale_up_seconds: float = Field(
        default=3.0,
        ge=0,
        description="How long in-flight load must stay above target before a replica is added.",
    )
    serve_scale_down_seconds: float = Field(
        default=30.0,
        ge=0,
        description="How long load must stay below target before a replica is removed.",
    )
    train_script_user: str = Field(
        default="nobody",
        description="Where the server runs as root: the unprivileged user a script run "
        "switches to, when that user can reach the interpreter; otherwise the script "
        "keeps uid 0 with every capability dropped (the run log says which).",
    )
    train_script_require_landlock: bool = Field(
        default=True,
        description="Refuse to run training scripts where Landlock (Linux 5.13+) is "
        "missing. False runs them there with only the environment, user and "
        "capability limits (the run log says so).",
    )
    train_script_network: bool = Field(
        default=False,
        description="Let training scripts open TCP connections (downloads ...). Off, "
        "Landlock (Linux 6.7+) refuses TCP connect and bind in a script.",
    )
    # -- drift --
    drift_p_value: float = Field(
        default=0.01,
        gt=0,
        lt=1,
        description="A feature drifted when its p-value (KS, chi-squared, MMD), corrected "
        "with Benjamini-Hochberg across the check's features, is below this.",
    )
    drift_distance: float = Field(
        default=0.1,
        gt=0,
        description="A feature drifted when its distance (normalised Wasserstein, "
        "Jensen-Shannon), used when reference and window both exceed drift_large_sample "
        "values, is at least this (Evidently's default).",
    )
    drift_large_sample: int = Field(
        default=1000,
        ge=1,
        description="Above this many values on both sides, a feature is judged by a "
        "distance instead of a p-value (a test on huge samples flags trivial shifts).",
    )
    drift_min_live_rows: int = Field(
        default=30, ge=1, description="A feature with fewer live values is not compared."
    )
    drift_sample_size: int = Field(
        default=5000,
        ge=100,
        description="Values of each numeric column a reference profile keeps (a random sample).",
    )
    drift_vector_sample: int = Field(
        default=500,
        ge=20,
        description="Embedding rows a reference keeps per text or vector column, and the "
        "live rows an MMD test draws.",
    )
    drift_permutations: int = Field(
        default=200, ge=19, description="Permutations of the MMD test (fixed seed)."
    )
    drift_max_reference_rows: int = Field(
        default=1_000_000,
        ge=1,
        description="A reference file or training dataset with more rows is refused.",
    )
    run_job: Path | None = Field(
        default=None,
        description="Set by the executor inside a training process: the job file that "
        "`modelhub.training.context()` reads.",
    )
    # -- report (issue 11: health score, recommendations, `modelhub monitor`) --
    monitor_p99_objective_ms: float | None = Field(
        default=None,
        gt=0,
        description="The p99 latency (ms) every model's health is held against. Unset: "
        "each window's p99 is held against the previous window's.",
    )
    monitor_slow_p99_ms: float = Field(
        default=100.0,
        gt=0,
        description="Without an objective, a p99 (ms) above this counts as high when the "
        "report considers recommending quantization.",
    )
    monitor_quantize_min_bytes: int = Field(
        default=100 * 1024 * 1024,
        ge=0,
        description="An fp32 version at least this large, with a high p99, gets a "
        "recommendation to quantize.",
    )

    # -- alerts --
    alerts_engine: bool = Field(
        default=True,
        description="Run the alert engine's evaluation and notification threads with the server.",
    )
    alerts_evaluation_seconds: float = Field(
        default=30.0, gt=0, description="The alert rules are evaluated this often."
    )
    alerts_window_seconds: float = Field(
        default=300.0,
        gt=0,
        description="Serving metrics of a rule (latency, error rate ...) are read over this "
        "window ending at the evaluation.",
    )
    alerts_resolve_after_seconds: float = Field(
        default=60.0,
        ge=0,
        description="A firing alert resolves only after its condition has been false this "
        "long (and at least the rule's `for`), so a brief dip does not end the incident.",
    )
    alerts_dispatch_seconds: float = Field(
        default=2.0, gt=0, description="Alerts owed a notification are looked for this often."
    )
    alerts_webhooks: Annotated[list[str], NoDecode] = Field(
        default=[],
        description="Webhook URLs told of every alert, built-in training ones included "
        "(comma-separated in the environment); rules may add their own.",
    )
    alerts_webhook_secret: str | None = Field(
        default=None,
        description="The key of the X-Modelhub-Signature header (HMAC-SHA256 of the body) on "
        "every webhook notification; unset, notifications go unsigned.",
    )
    alerts_webhook_attempts: int = Field(
        default=5, ge=1, le=20, description="Tries per notification before it is failed."
    )
    alerts_webhook_backoff_seconds: float = Field(
        default=1.0, ge=0, description="Wait after the first failed try; doubles per try."
    )
    alerts_webhook_timeout_seconds: float = Field(
        default=5.0, gt=0, description="Connect and read timeout of one webhook request."
    )
    alerts_external_url: str | None = Field(
        default=None,
        description="The platform's address as receivers should link to it (externalURL, "
        "generatorURL); default http://HOST:PORT.",
    )

    # -- personas: learning cycles (issue 17) --
    persona_learning: bool = Field(
        default=True,
        description="Whether `modelhub server` runs the personas' learning loop (triggers "
        "and open cycles are looked at every `persona_interval_seconds`).",
    )
    persona_interval_seconds: float = Field(
        default=30.0,
        gt=0,
        description="How often the server's learning loop looks at every persona.",
    )

    # -- canary: automated canary analysis (issue 11, part 8) --
    canary_min_requests: int = Field(
        default=200,
        ge=1,
        description="Requests the canary version must serve before `--analysis auto` "
        "compares it with the stable version and decides (a rollout may ask for more).",
    )
    canary_max_seconds: float = Field(
        default=3600.0,
        gt=0,
        description="How long an automated canary may take to reach its minimum requests; "
        "past it the analysis records `inconclusive`, alerts, and leaves the canary for a "
        "person to promote or roll back.",
    )
    canary_alpha: float = Field(
        default=0.05,
        gt=0,
        lt=1,
        description="Significance level of the canary's tests (error rate, latency, accuracy).",
    )
    canary_min_effect: float = Field(
        default=0.10,
        ge=0,
        description="Smallest relative change (0.10 = 10 %) of error rate or latency that "
        "counts as worse, however significant a smaller one is.",
    )
    canary_interval_seconds: float = Field(
        default=15.0,
        gt=0,
        description="How often the server's canary analysis looks at canaries in place.",
    )
    canary_analysis: bool = Field(
        default=True,
        description="Whether `modelhub server` runs the canary analysis loop.",
    )

    # -- predictions (issue 11: prediction log, feedback, accuracy) --
    prediction_log_rate: float = Field(
        default=0.1,
        ge=0.0,
        le=1.0,
        description="Share of requests a new deployment logs when it names no rate of its own.",
    )
    prediction_log_max_per_minute: int = Field(
        default=600,
        ge=0,
        description="Most requests per minute a new deployment logs when it names no cap.",
    )
    prediction_log_queue: int = Field(
        default=4096,
        ge=1,
        description="Sampled requests a replica holds for its log writer; beyond, they drop.",
    )
    prediction_log_file_bytes: int = Field(
        default=8 * 1024 * 1024,
        ge=1024,
        description="A replica closes its prediction log file at about this many bytes.",
    )
    prediction_log_file_seconds: float = Field(
        default=60.0,
        gt=0,
        description="A replica closes its prediction log file at the latest this old.",
    )
    prediction_log_retention: timedelta = Field(
        default=timedelta(days=30),
        description="How long sampled requests are kept (e.g. 30d): older log files, their "
        "index and their labels are dropped by the server's cleanup, and their blobs by the "
        "artifact GC.",
    )
    prediction_ingest_seconds: float = Field(
        default=2.0,
        gt=0,
        description="How often the server moves closed prediction log files into the stores.",
    )

    # -- history (monitoring, issue 11) --
    monitoring_minutes_retention: timedelta = Field(
        default=timedelta(days=7),
        description="How long per-minute serving roll-ups are kept (e.g. 7d); older "
        "minutes are deleted by the history cleanup, their hours stay.",
    )
    monitoring_hours_retention: timedelta = Field(
        default=timedelta(days=90),
        description="How long per-hour serving roll-ups are kept (e.g. 90d).",
    )
    monitoring_samples_retention: timedelta = Field(
        default=timedelta(days=90),
        description="How long process resource samples (CPU, memory, GPU) are kept; "
        "a run's cost is measured from them.",
    )
    monitoring_cleanup_seconds: float = Field(
        default=3600.0,
        gt=0,
        description="How often the server deletes history older than its retention.",
    )
    monitoring_rollup_seconds: int = Field(
        default=60,
        ge=1,
        le=60,
        description="How long a replica gathers a roll-up before handing it over: a "
        "minute, or a divisor of 60 (pieces of one minute merge into one stored minute; "
        "tests use 1 so they need not wait for a minute to end).",
    )
    monitoring_resource_seconds: float = Field(
        default=30.0,
        gt=0,
        description="How often replica and training-worker processes are sampled for "
        "CPU, resident memory and GPU use.",
    )

    @field_validator(
        "serve_warm_imports",
        "trusted_proxies",
        "code_runners",
        "alerts_webhooks",
        "import_dirs",
        mode="before",
    )
    @classmethod
    def _comma_separated(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator(
        "token_default_ttl",
        "token_max_ttl",
        "monitoring_minutes_retention",
        "monitoring_hours_retention",
        "monitoring_samples_retention",
        "prediction_log_retention",
        mode="before",
    )
    @classmethod
    def _duration(cls, value: object, info: ValidationInfo) -> object:
        if isinstance(value, str):
            try:
                return parse_duration(value, info.field_name or "")
            except InvalidInput as exc:
                raise ValueError(exc.message) from None
        return value

    @model_validator(mode="after")
    def _rollup_divides_a_minute(self) -> Settings:
        if 60 % self.monitoring_rollup_seconds:
            raise ValueError(
                f"monitoring_rollup_seconds ({self.monitoring_rollup_seconds}) must divide 60"
            )
        return self

    @model_validator(mode="after")
    def _default_import_dir(self) -> Settings:
        if not self.import_dirs:
            self.import_dirs = [self.home / "imports"]
        return self

    @model_validator(mode="after")
    def _default_within_max(self) -> Settings:
        if self.token_default_ttl > self.token_max_ttl:
            raise ValueError("token_default_ttl is longer than token_max_ttl")
        return self

    @model_validator(mode="after")
    def _host_heartbeat_within_dead_time(self) -> Settings:
        if self.host_heartbeat_seconds >= self.host_dead_seconds:
            raise ValueError(
                f"host_heartbeat_seconds ({self.host_heartbeat_seconds:g}) must be under "
                f"host_dead_seconds ({self.host_dead_seconds:g}), or live servers look dead"
            )
        return self

    @model_validator(mode="after")
    def _heartbeat_within_lease(self) -> Settings:
        if self.train_heartbeat_seconds >= self.train_lease_seconds:
            raise ValueError(
                f"train_heartbeat_seconds ({self.train_heartbeat_seconds:g}) must be under "
                f"train_lease_seconds ({self.train_lease_seconds:g}), or leases lapse between "
                "heartbeats"
            )
        return self

    @field_validator("train_ray_address")
    @classmethod
    def _ray_address(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        try:
            return parse_ray_address(value).text
        except InvalidInput as exc:
            raise ValueError(exc.message) from None

    @field_validator("pool_memory")
    @classmethod
    def _pool_memory(cls, value: str) -> str:
        from modelhub.domain.pipelines import parse_memory

        parse_memory(value)  # a ValueError names what is wrong with it
        return value

    @field_validator("trusted_proxies")
    @classmethod
    def _addresses(cls, value: list[str]) -> list[str]:
        for entry in value:
            try:
                ipaddress.ip_network(entry, strict=False)
            except ValueError:
                raise ValueError(
                    f"{entry!r} is not an IP address or network (e.g. 10.0.0.0/8)"
                ) from None
        return value

    @property
    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.home / 'modelhub.db'}"

    @property
    def resolved_artifacts(self) -> str:
        return self.artifacts or str(self.home / "artifacts")

    @property
    def staging_dir(self) -> Path:
        return self.home / "staging"

    @property
    def admin_token_file(self) -> Path:
        return self.home / "admin.token"

    @property
    def token_file(self) -> Path:
        """Where the CLI looks for a token when MODELHUB_TOKEN is not set."""
        return self.home / "token"

    @property
    def key_file(self) -> Path:
        return self.key_path or self.home / "server.key"

    @property
    def serving_dir(self) -> Path:
        """Verified copies of deployed versions' files, one folder per version digest."""
        return self.home / "serving"

    @property
    def prediction_spool_dir(self) -> Path:
        """Where replicas put closed prediction log files until the server ingests them."""
        return self.home / "serving" / "prediction-spool"

    @property
    def runs_dir(self) -> Path:
        """Working folders of training runs (job, logs, local checkpoints)."""
        return self.home / "runs"
