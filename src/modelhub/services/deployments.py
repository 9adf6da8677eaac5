"""Deployments: deploy a version to an environment, scale it, roll it out, roll it back.

The service owns the rules (production serves approved versions; an admin override
is audited; one live deployment per name) and the records. The replica supervisor
(an engine) runs the processes; the service tells it what to serve and stores what it
reports back (replica health, usage). Changes that start or load processes run on a
background job, so a request returns at once with the deployment `deploying` or
`updating`, and the record says how it ended.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from modelhub.domain.auth import Action, Caller, parse_duration
from modelhub.domain.deployments import (
    LIVE,
    AnalysisMode,
    Autoscale,
    CanaryAnalysis,
    Deployment,
    DeploymentStatus,
    Environment,
    LoadBalancing,
    Rollout,
    TrafficShare,
    UsageRecord,
)
from modelhub.domain.enums import Approval, ModelStatus, Stage, parse_enum
from modelhub.domain.names import check_model_name, parse_ref
from modelhub.domain.optimisation import (
    DeploymentReply,
    VariantChoice,
    choose_variant,
    variants_of,
)
from modelhub.domain.predictions import PredictionLogPolicy
from modelhub.domain.records import ModelVersion
from modelhub.errors import (
    Conflict,
    IllegalTransition,
    InvalidInput,
    NotFound,
    PermissionDenied,
    Unavailable,
    UnsafeModel,
)
from modelhub.services.rollouts import Rollouts
from modelhub.stores.metadata.base import AuditDraft

if TYPE_CHECKING:
    import socket

    from modelhub.domain.pools import Pool
    from modelhub.services.auth import AuthService
    from modelhub.services.hosts import HostService
    from modelhub.services.monitoring.history import HistoryService
    from modelhub.services.placement import Placement
    from modelhub.services.registry import RegistryService
    from modelhub.serving.launcher import ReplicaLauncher
    from modelhub.serving.supervisor import Totals
    from modelhub.settings import Settings
    from modelhub.stores.metadata.base import MetadataStore

MAX_REPLICAS = 64
# The environments whose versions must pass the governance policy's gate of a stage.
GATED_ENVIRONMENTS = {Environment.STAGING: Stage.STAGING, Environment.PRODUCTION: Stage.PRODUCTION}
ENVIRONMENT_PREFERENCE = (Environment.PRODUCTION, Environment.STAGING, Environment.DEVELOPMENT)


@dataclass(frozen=True)
class DeployRequest:
    """What to serve and how; the same request from the API, the CLI and both clients.

    `ref` is NAME, NAME@VERSION or NAME@ALIAS; `name` defaults to the model's in
    production and MODEL-ENV elsewhere. `environment` and `load_balancing` also take
    their text ("staging"); anything else is InvalidInput naming the field.
    """

    ref: str
    environment: Environment = Environment.DEVELOPMENT
    replicas: int | None = None
    autoscale: Autoscale | None = None
    name: str | None = None
    load_balancing: LoadBalancing = LoadBalancing.ROUND_ROBIN
    resources: dict[str, Any] = field(default_factory=dict)
    override_approval: bool = False
    # None: the server's default (settings.prediction_log_rate / _max_per_minute).
    prediction_log: PredictionLogPolicy | None = None
    # Serve the version's fastest optimised variant within tolerance (see choose_variant).
    optimize: bool = False
    # Place it on this shared model pool (domain/pools.py) instead of its own replicas.
    pool: str | None = None

    def __post_init__(self) -> None:
        # Frozen: set through object.__setattr__, once, before anyone reads them.
        environment = parse_enum(Environment, self.environment, "environment")
        object.__setattr__(self, "environment", environment)
        balancing = parse_enum(LoadBalancing, self.load_balancing, "load_balancing")
        object.__setattr__(self, "load_balancing", balancing)


@dataclass(frozen=True)
class RolloutRequest:
    """Roll out another version of a deployment's model: all at once, or `canary`
    percent (1-99) of requests first. `version` is a number or an alias.

    With `analysis="auto"` the canary is promoted or rolled back on its measured
    results once it served `min_requests`, giving up (inconclusive) after
    `max_duration` ("30m"); `alpha` is the tests' significance level. Unset, each
    takes its `canary_*` setting."""

    deployment: str
    version: str
    canary: int | None = None
    override_approval: bool = False
    analysis: AnalysisMode = AnalysisMode.MANUAL
    min_requests: int | None = None
    max_duration: str | None = None
    alpha: float | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "version", str(self.version))  # 3 means "3"
        object.__setattr__(self, "analysis", parse_enum(AnalysisMode, self.analysis, "analysis"))


@dataclass(frozen=True)
class Route:
    """Where requests for a deployment go: its endpoint and its replicas' own ports."""

    deployment: str
    endpoint: str
    replicas: list[str]
    load_balancing: LoadBalancing


@dataclass(frozen=True)
class ServingTotals:
    totals: Totals
    replicas: dict[str, int]
    models: dict[str, str]  # deployment -> the model it serves


def default_name(model: str, environment: Environment) -> str:
    return model if environment is Environment.PRODUCTION else f"{model}-{environment.value}"


def _now() -> datetime:
    return datetime.now(UTC)


def _policy_json(policy: PredictionLogPolicy | None) -> dict[str, Any] | None:
    return policy.model_dump() if policy is not None else None


class DeploymentService:
    def __init__(
        self,
        settings: Settings,
        metadata: MetadataStore,
        registry: RegistryService,
        auth: AuthService,
        history: HistoryService | None = None,
    ) -> None:
        self.settings = settings
        self.metadata = metadata
        self.registry = registry
        self.auth = auth
        self.rollouts = Rollouts(settings, metadata, registry, history)
        self.placement: Placement | None = None  # set by use_hosts

    def use_hosts(self, hosts: HostService) -> None:
        """Place deployments on the servers sharing the database; serve only our own."""
        from modelhub.services.placement import Placement

        self.placement = Placement(self.metadata, self.rollouts, hosts)
        self.rollouts.is_mine = self.placement.is_mine
        self._machine: tuple[int, int] | None = None  # CPUs and GPUs, read at first use

    # -- reading ----------------------------------------------------------------

    def get(self, caller: Caller, name: str) -> Deployment:
        self.auth.authorize(caller, Action.DEPLOYMENTS_READ)
        return self.metadata.get_deployment(name)

    def list_all(
        self,
        caller: Caller,
        environment: Environment | None = None,
        model: str | None = None,
        include_stopped: bool = False,
    ) -> list[Deployment]:
        self.auth.authorize(caller, Action.DEPLOYMENTS_READ)
        return self.metadata.list_deployments(environment, model, include_stopped)

    def usage(self, caller: Caller, name: str) -> list[UsageRecord]:
        self.auth.authorize(caller, Action.DEPLOYMENTS_READ)
        return self.metadata.deployment_usage(name)

    def replica_starts(self, caller: Caller, deployment: Deployment) -> dict[int, datetime]:
        """When each of the deployment's current replica processes (by PID) started, from
        the replica spans the cost figures use: the open span of a PID and the spans of
        the same PID that it directly follows (a change of readiness opens a new one)."""
        self.auth.authorize(caller, Action.DEPLOYMENTS_READ)
        pids = {h.pid for h in deployment.health if h.pid is not None}
        if not pids:
            return {}
        spans = self.metadata.replica_spans(deployment.created_at, _now(), deployment.name)
        starts: dict[int, datetime] = {}
        for pid in pids:
            mine = sorted((s for s in spans if s.pid == pid), key=lambda s: s.started_at)
            if not mine or mine[-1].ended_at is not None:
                continue
            started = mine[-1].started_at
            for earlier in reversed(mine[:-1]):
                if earlier.ended_at != started:
                    break
                started = earlier.started_at
            starts[pid] = started
        return starts

    def resolve(self, target: str) -> Deployment:
        """A live deployment by its name, or else the live deployment of a model by the
        model's name (production first, then staging, then development).

        A model's name reaches only that model's deployments: a deployment named
        after another model (made before that model was registered) is not found
        by that name, so it cannot answer the other model's traffic.
        """
        try:
            found = self.metadata.get_deployment(target)
            if found.status in LIVE and (
                found.model == target or self.registry.model_owner(target) is None
            ):
                return found
        except NotFound:
            pass
        live = [d for d in self.metadata.list_deployments(model=target) if d.status in LIVE]
        for environment in ENVIRONMENT_PREFERENCE:
            for deployment in live:
                if deployment.environment is environment:
                    return deployment
        raise NotFound(f"nothing named {target!r} is deployed", {"deployment": target})

    def predict_here(
        self, caller: Caller, target: str, body: bytes, version: int | None = None
    ) -> bytes:
        """Answer one inference request in this process (local mode: no server running).

        `target` is a deployment or a model name, as for the server's routes; the
        version is the deployment's main one unless `version` pins another it serves."""
        from modelhub.serving.oneshot import infer_once

        self.auth.authorize(caller, Action.INFERENCE)
        deployment = self.resolve(target)
        chosen = deployment.primary_version if version is None else version
        if chosen not in deployment.versions:
            raise NotFound(
                f"deployment {deployment.name} does not serve version {chosen}",
                {"deployment": deployment.name, "version": chosen},
            )
        served = self.registry.get(f"{deployment.model}@{chosen}")
        return infer_once(
            deployment.name,
            chosen,
            self.rollouts.materialize(served),
            body,
            trusted=served.trusted,
        )

    # -- deploying ----------------------------------------------------------------

    def deploy(self, caller: Caller, request: DeployRequest) -> DeploymentReply:
        """Serve a version; with `optimize`, its optimised variant within tolerance that
        has the lowest measured p50 latency and may serve the environment (else the
        version itself), the reply's `optimisation` saying which and why."""
        ref = parse_ref(request.ref)
        self.auth.authorize_owned(
            caller, Action.DEPLOYMENTS_WRITE, self.registry.model_owner(ref.name)
        )
        resources = self._checked_resources(request.resources)
        version = self.registry.get(request.ref)
        choice = None
        if request.optimize:
            version, choice = self._optimised(caller, version, request)
        override, missing = self._check_servable(
            caller, version, request.environment, request.override_approval
        )
        name = check_model_name(request.name or default_name(version.name, request.environment))
        self._check_name_is_not_another_model(name, version.name)
        if request.pool is not None:
            replicas = self._placed_on_pool(request, f"{version.name}@{version.version}", version)
        else:
            replicas = self._replicas(request.replicas, request.autoscale)
        now = _now()
        deployment = Deployment(
            name=name,
            model=version.name,
            environment=request.environment,
            traffic=[TrafficShare(version=version.version, percent=100)],
            replicas=replicas,
            autoscale=request.autoscale,
            load_balancing=request.load_balancing,
            resources=resources,
            status=DeploymentStatus.DEPLOYING,
            approval_override=override,
            prediction_log=request.prediction_log
            or PredictionLogPolicy(
                rate=self.settings.prediction_log_rate,
                max_per_minute=self.settings.prediction_log_max_per_minute,
            ),
            host=self.placement.choose(request.resources, replicas) if self.placement else None,
            pool=request.pool,
            created_by=caller.name,
            created_at=now,
            updated_at=now,
        )
        details: dict[str, Any] = {
            "model": version.name,
            "version": version.version,
            "environment": request.environment.value,
            "replicas": replicas,
        }
        if request.pool is not None:
            details["pool"] = request.pool
        if override:
            details["approval_override"] = version.approval.value
        if missing:
            details["override_missing"] = missing
        if choice is not None:
            details["optimised_from"] = choice.source
            details["optimisation"] = choice.reason
        created = self.metadata.create_deployment(
            deployment, AuditDraft(caller.name, "deployments.create", name, details)
        )
        self.rollouts.submit(name, self.rollouts.launch)
        return DeploymentReply.model_validate({**dict(created), "optimisation": choice})

    def _checked_resources(self, raw: object) -> dict[str, Any]:
        """The request's resources checked against this machine (InvalidInput naming the
        field), as the deployment records them: memory in bytes."""
        from modelhub.domain.resources import check_deployment_resources
        from modelhub.limits import count_gpus, machine_cpus

        if not raw:
            return {}
        if self._machine is None:
            self._machine = (len(machine_cpus()), count_gpus())
        cpus, gpus = self._machine
        return check_deployment_resources(raw, cpus, gpus).as_record()

    def _optimised(
        self, caller: Caller, source: ModelVersion, request: DeployRequest
    ) -> tuple[ModelVersion, VariantChoice]:
        """The version `deploy --optimize` serves instead of `source`, and why."""
        variants = variants_of(source, self.registry.versions(source.name))

        def refusal(variant: ModelVersion) -> str | None:
            try:
                self._check_servable(
                    caller, variant, request.environment, request.override_approval
                )
            except (IllegalTransition, UnsafeModel, PermissionDenied) as exc:
                return exc.message
            return None

        choice = choose_variant(source, variants, refusal)
        chosen = next((v for v in variants if v.version == choice.chosen), source)
        return chosen, choice

    def _check_name_is_not_another_model(self, name: str, model: str) -> None:
        """A deployment may take a model's name only when it serves that model:
        requests for a model by name must never reach another model's deployment."""
        if name == model:
            return
        owner = self.registry.model_owner(name)
        if owner is not None:
            raise Conflict(
                f"deployment name {name!r} is the name of another model (owner: {owner}); "
                f"a deployment of {model} cannot take it",
                {"field": "name", "deployment": name, "model": model},
            )

    def _check_servable(
        self, caller: Caller, version: ModelVersion, environment: Environment, override: bool
    ) -> tuple[bool, list[str]]:
        """Refuse what must not be served; (True, what the policy missed) when an admin
        overrode the approval gate or the governance policy's."""
        ref = f"{version.name}@{version.version}"
        if version.status is not ModelStatus.ACTIVE:
            raise IllegalTransition(
                f"{ref} is {version.status.value}; restore it before deploying it",
                {"ref": ref, "status": version.status.value},
            )
        if version.inspection.get("requires_trust") and not version.trusted:
            raise UnsafeModel(
                f"{ref} would execute code when loaded and nobody trusted it",
                {"ref": ref},
            )
        stage = GATED_ENVIRONMENTS.get(environment)
        missing = self.registry.gate_missing(version, stage) if stage is not None else []
        unapproved = (
            environment is Environment.PRODUCTION and version.approval is not Approval.APPROVED
        )
        if not unapproved and not missing:
            return False, []
        if unapproved and version.approval is Approval.REJECTED:
            raise IllegalTransition(
                f"{ref} was rejected; a rejected version never serves production",
                {"ref": ref, "approval": version.approval.value},
            )
        if not override:
            if unapproved:
                raise IllegalTransition(
                    f"{ref} is not approved ({version.approval.value}); production serves "
                    "approved versions only (an admin may override)",
                    {"ref": ref, "approval": version.approval.value, "missing": missing},
                )
            raise IllegalTransition(
                f"{ref} may not serve {environment.value}: the governance policy still needs "
                + "; ".join(missing)
                + " (an admin may override)",
                {"ref": ref, "environment": environment.value, "missing": missing},
            )
        self.auth.authorize(caller, Action.DEPLOYMENTS_OVERRIDE)
        return True, missing

    def _placed_on_pool(self, request: DeployRequest, ref: str, version: ModelVersion) -> int:
        """Check a deployment can go on `request.pool`; its replica count is 0 (it has
        none of its own)."""
        from modelhub.domain.pipelines import parse_memory
        from modelhub.domain.pools import check_fits, check_pool

        assert request.pool is not None
        pool = check_pool(request.pool)
        if request.replicas is not None or request.autoscale is not None:
            raise InvalidInput(
                "a deployment on a pool has no replicas of its own: drop --replicas and "
                "--autoscale, or deploy without --pool",
                {"field": "pool", "pool": pool},
            )
        if request.resources:
            raise InvalidInput(
                "a deployment on a pool shares the pool's replicas and their memory budget "
                "(pool_memory): drop --memory, --cpus and --gpus, or deploy without --pool",
                {"field": "resources", "pool": pool},
            )
        check_fits(ref, version.size, pool, parse_memory(self.settings.pool_memory))
        return 0

    @staticmethod
    def _replicas(replicas: int | None, autoscale: Autoscale | None) -> int:
        if autoscale is not None:
            if autoscale.min_replicas > autoscale.max_replicas:
                raise InvalidInput(
                    f"autoscale minimum {autoscale.min_replicas} is above its maximum "
                    f"{autoscale.max_replicas}",
                    {"field": "autoscale"},
                )
            if autoscale.max_replicas > MAX_REPLICAS:
                raise InvalidInput(f"at most {MAX_REPLICAS} replicas", {"field": "autoscale"})
            if replicas is None:
                return autoscale.min_replicas
            if not autoscale.min_replicas <= replicas <= autoscale.max_replicas:
                raise InvalidInput(
                    f"replicas {replicas} lie outside autoscale bounds "
                    f"{autoscale.min_replicas}:{autoscale.max_replicas}",
                    {"field": "replicas"},
                )
            return replicas
        count = 1 if replicas is None else replicas
        if not 1 <= count <= MAX_REPLICAS:
            raise InvalidInput(
                f"replicas must be between 1 and {MAX_REPLICAS}, not {count}",
                {"field": "replicas"},
            )
        return count

    # -- changing a running deployment ---------------------------------------------

    def _live(self, caller: Caller, name: str) -> Deployment:
        deployment = self.metadata.get_deployment(name)
        self.auth.authorize_owned(
            caller, Action.DEPLOYMENTS_WRITE, self.registry.model_owner(deployment.model)
        )
        if deployment.status not in LIVE:
            raise IllegalTransition(
                f"deployment {name} is {deployment.status.value}",
                {"deployment": name, "status": deployment.status.value},
            )
        return deployment

    def set_prediction_log(
        self, caller: Caller, name: str, policy: PredictionLogPolicy
    ) -> Deployment:
        """Log `policy.rate` of the deployment's requests from now on (0: none)."""
        deployment = self._live(caller, name)
        changed = self.metadata.update_deployment(
            name,
            {"prediction_log": policy},
            audit=AuditDraft(
                caller.name,
                "deployments.prediction_log",
                name,
                {"from": _policy_json(deployment.prediction_log), "to": _policy_json(policy)},
            ),
        )
        self.rollouts.submit(name, self.rollouts.refresh)
        return changed

    def scale(self, caller: Caller, name: str, replicas: int) -> Deployment:
        """A fixed replica count (autoscaling, if it was on, is turned off)."""
        deployment = self._live(caller, name)
        if deployment.pool is not None:
            raise InvalidInput(
                f"deployment {name} is on pool {deployment.pool!r} and has no replicas of its "
                "own to scale; the pool's replica count is the pool_replicas setting",
                {"field": "replicas", "pool": deployment.pool},
            )
        count = self._replicas(replicas, None)
        changed = self.metadata.update_deployment(
            name,
            {"replicas": count, "autoscale": None, "error": None},
            audit=AuditDraft(
                caller.name, "deployments.scale", name, {"from": deployment.replicas, "to": count}
            ),
        )
        self.rollouts.submit(name, self.rollouts.scale)
        return changed

    def update(self, caller: Caller, request: RolloutRequest) -> Deployment:
        """Roll out another version: all at once, or `canary` percent of requests first."""
        name, canary = request.deployment, request.canary
        deployment = self._live(caller, name)
        if deployment.status is not DeploymentStatus.RUNNING:
            raise IllegalTransition(
                f"deployment {name} is {deployment.status.value}; promote or roll back first",
                {"deployment": name, "status": deployment.status.value},
            )
        if canary is not None and not 1 <= canary <= 99:
            raise InvalidInput("canary share must be 1-99 percent", {"field": "canary"})
        analysis = self._analysis(request)
        version = self.registry.get(f"{deployment.model}@{request.version}")
        current = deployment.primary_version
        if version.version == current:
            raise Conflict(
                f"deployment {name} already serves version {current}",
                {"deployment": name, "version": current},
            )
        if deployment.pool is not None:
            from modelhub.domain.pipelines import parse_memory
            from modelhub.domain.pools import check_fits

            budget = parse_memory(self.settings.pool_memory)
            check_fits(f"{version.name}@{version.version}", version.size, deployment.pool, budget)
        override, missing = self._check_servable(
            caller, version, deployment.environment, request.override_approval
        )
        details: dict[str, Any] = {"from": current, "to": version.version, "canary": canary}
        if override:
            details["approval_override"] = version.approval.value
        if missing:
            details["override_missing"] = missing
        if analysis is not None:
            details["analysis"] = analysis.model_dump(mode="json")
        return self._change(
            caller, deployment, version.version, canary, "deployments.update", details, analysis
        )

    def _analysis(self, request: RolloutRequest) -> CanaryAnalysis | None:
        """The rollout's automated analysis, its unset figures from the settings."""
        asked = (request.min_requests, request.max_duration, request.alpha)
        if request.analysis is AnalysisMode.MANUAL:
            if any(value is not None for value in asked):
                raise InvalidInput(
                    "min_requests, max_duration and alpha apply to --analysis auto only",
                    {"field": "analysis"},
                )
            return None
        if request.canary is None:
            raise InvalidInput(
                "automated analysis judges a canary: give a canary share (1-99 percent)",
                {"field": "canary"},
            )
        settings = self.settings
        min_requests = request.min_requests or settings.canary_min_requests
        if request.min_requests is not None and request.min_requests < 1:
            raise InvalidInput("min_requests must be at least 1", {"field": "min_requests"})
        alpha = settings.canary_alpha if request.alpha is None else request.alpha
        if not 0 < alpha < 1:
            raise InvalidInput("alpha must be between 0 and 1", {"field": "alpha"})
        max_seconds = settings.canary_max_seconds
        if request.max_duration is not None:
            max_seconds = parse_duration(request.max_duration, "max_duration").total_seconds()
        return CanaryAnalysis(
            min_requests=min_requests,
            max_seconds=max_seconds,
            alpha=alpha,
            min_effect=settings.canary_min_effect,
            started_at=_now(),
        )

    def _change(
        self,
        caller: Caller,
        deployment: Deployment,
        target: int,
        canary: int | None,
        action: str,
        details: dict[str, Any],
        analysis: CanaryAnalysis | None = None,
    ) -> Deployment:
        rollout = Rollout(
            from_version=deployment.primary_version,
            to_version=target,
            canary=canary,
            analysis=analysis,
        )
        changed = self.metadata.update_deployment(
            deployment.name,
            {"status": DeploymentStatus.UPDATING, "rollout": rollout, "error": None},
            expected_status=DeploymentStatus.RUNNING,
            audit=AuditDraft(caller.name, action, deployment.name, details),
        )
        self.rollouts.submit(deployment.name, self.rollouts.roll)
        return changed

    def promote(self, caller: Caller, name: str) -> Deployment:
        """Send all traffic to the canary version and drain the old one."""
        deployment = self._live(caller, name)
        rollout = deployment.rollout
        if rollout is None or rollout.canary is None or len(deployment.traffic) != 2:
            raise IllegalTransition(
                f"deployment {name} has no canary in place to promote", {"deployment": name}
            )
        changed = self.metadata.update_deployment(
            name,
            {"error": None},
            audit=AuditDraft(caller.name, "deployments.promote", name, {"to": rollout.to_version}),
        )
        self.rollouts.submit(name, self.rollouts.finish)
        return changed

    def rollback(self, caller: Caller, name: str) -> Deployment:
        """Back to the version served before: drop a canary, or undo the last rollout."""
        deployment = self._live(caller, name)
        rollout = deployment.rollout
        if rollout is not None:
            if rollout.canary is not None and len(deployment.traffic) != 2:
                raise IllegalTransition(
                    f"deployment {name} is still loading its new version; wait, then roll back",
                    {"deployment": name},
                )
            changed = self.metadata.update_deployment(
                name,
                {"error": None},
                audit=AuditDraft(
                    caller.name,
                    "deployments.rollback",
                    name,
                    {"to": rollout.from_version, "dropped": rollout.to_version},
                ),
            )
            self.rollouts.submit(name, self.rollouts.abandon)
            return changed
        if deployment.previous_version is None:
            raise Conflict(
                f"deployment {name} has no previous version to roll back to",
                {"deployment": name},
            )
        target = deployment.previous_version
        details = {"from": deployment.primary_version, "to": target}
        return self._change(caller, deployment, target, None, "deployments.rollback", details)

    def stop(self, caller: Caller, name: str) -> Deployment:
        deployment = self.metadata.get_deployment(name)
        self.auth.authorize_owned(
            caller, Action.DEPLOYMENTS_WRITE, self.registry.model_owner(deployment.model)
        )
        if deployment.status is DeploymentStatus.STOPPED:
            raise IllegalTransition(f"deployment {name} is already stopped", {"deployment": name})
        self.rollouts.stop(name)
        return self.metadata.update_deployment(
            name,
            {
                "status": DeploymentStatus.STOPPED,
                "health": [],
                "endpoint": None,
                "rollout": None,
                "error": None,
            },
            audit=AuditDraft(
                caller.name, "deployments.stop", name, {"was": deployment.status.value}
            ),
        )

    def wait_idle(self, name: str, timeout: float | None = None) -> None:
        """Block until the background job of `name` (if any) has ended."""
        self.rollouts.wait_idle(name, timeout)

    # -- serving lifecycle (the server calls these) ------------------------------------

    def start_serving(self, launcher: ReplicaLauncher | None = None) -> None:
        """Start the supervisor (with `launcher`, if the server started one early) and
        bring back every deployment that should be live.

        Replica health on record describes the processes of the server that ran
        before (killed, maybe): it is cleared first, so until a replica answers this
        server a deployment shows none, never a dead process as live and ready."""
        supervisor = self.rollouts.supervisor or self.rollouts.build_supervisor(launcher)
        placement = self.placement
        if placement is None or placement.hosts.single_server:
            # Spans a killed server left open end when they were last seen (cost, uptime).
            # With several servers the others' replicas run on: their spans stay open.
            self.metadata.close_stale_replica_spans()
        if placement is not None:
            placement.claim_at_start()
        mine = [
            d
            for d in self.metadata.list_deployments()
            if placement is None or d.host in (None, placement.me)
        ]
        for deployment in mine:
            if deployment.health:
                self.metadata.update_deployment(deployment.name, {"health": []})
        supervisor.start()
        for deployment in mine:
            if deployment.status in LIVE:
                self.rollouts.submit(deployment.name, self.rollouts.launch)
        if placement is not None:
            placement.hosts.on_heartbeat(placement.reconcile)

    def stop_serving(self) -> None:
        self.rollouts.close()

    def serving_totals(self) -> ServingTotals | None:
        """What this server's replicas answered, summed per deployment version, and how
        many replicas each deployment runs; None while this process serves nothing."""
        supervisor = self.rollouts.supervisor
        if supervisor is None:
            return None
        from modelhub.serving.pool import is_pool_group

        groups = [(n, g) for n, g in supervisor.groups.items() if not is_pool_group(n)]
        replicas = {name: len(group.replicas) for name, group in groups}
        models = {
            name: group.models[0].model_name if group.models else name for name, group in groups
        }
        return ServingTotals(supervisor.totals, replicas, models)

    def is_served(self, name: str) -> bool:
        """Whether replicas of deployment `name` run on this server."""
        supervisor = self.rollouts.supervisor
        return supervisor is not None and supervisor.has(name)

    def hand_over(self, name: str, connection: socket.socket) -> bool:
        """Give a client's connection to a replica of deployment `name` (the data-plane
        listener's hand-over); False when no replica of it runs here."""
        supervisor = self.rollouts.supervisor
        if supervisor is None or not supervisor.has(name):
            return False
        try:
            group = supervisor.group(name)
        except NotFound:
            return False  # retired meanwhile
        group.hand_over(connection)
        return True

    def route(self, target: str) -> Route:
        """Where a request for `target` (a deployment or a model name) should go."""
        deployment = self.resolve(target)
        if deployment.endpoint is None or deployment.status is DeploymentStatus.DEPLOYING:
            raise Unavailable(
                f"deployment {deployment.name} is {deployment.status.value}; not serving yet",
                {"deployment": deployment.name, "status": deployment.status.value},
            )
        address = "127.0.0.1"
        if self.placement is not None and deployment.host not in (None, self.placement.me):
            address = self.placement.hosts.address_of(deployment.host) or address
        replicas = [f"http://{address}:{h.port}" for h in deployment.health if h.port and h.live]
        supervisor = self.rollouts.supervisor
        pool = supervisor.running_pool(deployment.pool) if supervisor and deployment.pool else None
        if pool is not None:
            replicas = pool.home(deployment.name)
        elif supervisor is not None and supervisor.has(deployment.name):
            group = supervisor.group(deployment.name)
            replicas = [r.url for r in list(group.replicas) if r.ready and r.exited() is None]
        return Route(deployment.name, deployment.endpoint, replicas, deployment.load_balancing)

    # -- shared model pools (services/pools.py) --------------------------------------

    def pools(self, caller: Caller) -> list[Pool]:
        from modelhub.services.pools import list_pools

        return list_pools(self, caller)

    def pool(self, caller: Caller, name: str) -> Pool:
        from modelhub.services.pools import show_pool

        return show_pool(self, caller, name)
