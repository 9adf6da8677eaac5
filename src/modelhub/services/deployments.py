"""Deployments: deploy a version to an environment, scale it, roll it out, roll it back.

The service owns the rules (production serves approved versions; an admin override
is audited; one live deployment per name) and the records. The replica supervisor
(an engine) runs the processes; the service tells it what to serve and stores what it
reports back (replica health, usage). Changes that start or load processes run on a
background job, so a request returns at once with the deployment `deploying` or
`updating`, and the record says how it ended.
"""

from __future__ import annotations

import contextlib
import logging
import shutil
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modelhub.domain.auth import Action, Caller
from modelhub.domain.deployments import (
    LIVE,
    Autoscale,
    Deployment,
    DeploymentStatus,
    Environment,
    LoadBalancing,
    ReplicaHealth,
    TrafficShare,
    UsageRecord,
    check_traffic,
)
from modelhub.domain.enums import Approval, ModelStatus
from modelhub.domain.names import check_model_name, parse_ref
from modelhub.domain.records import ModelVersion
from modelhub.errors import (
    Conflict,
    IllegalTransition,
    InvalidInput,
    ModelhubError,
    NotFound,
    Unavailable,
    UnsafeModel,
)
from modelhub.services.manifest import safe_target, write_verified_stream
from modelhub.serving.host import ServedModel, ServedVersion
from modelhub.stores.metadata.base import AuditDraft, UsageDelta

if TYPE_CHECKING:
    from modelhub.services.auth import AuthService
    from modelhub.services.registry import RegistryService
    from modelhub.serving.supervisor import ReplicaState, Supervisor, UsageSample
    from modelhub.settings import Settings
    from modelhub.stores.artifacts.base import ArtifactStore
    from modelhub.stores.metadata.base import MetadataStore

log = logging.getLogger("modelhub.deployments")

MAX_REPLICAS = 64
ENVIRONMENT_PREFERENCE = (Environment.PRODUCTION, Environment.STAGING, Environment.DEVELOPMENT)


@dataclass(frozen=True)
class DeployRequest:
    ref: str
    environment: Environment = Environment.DEVELOPMENT
    replicas: int | None = None
    autoscale: Autoscale | None = None
    name: str | None = None
    load_balancing: LoadBalancing = LoadBalancing.ROUND_ROBIN
    resources: dict[str, Any] = field(default_factory=dict)
    override_approval: bool = False


@dataclass(frozen=True)
class Route:
    """Where requests for a deployment go: its endpoint and its replicas' own ports."""

    deployment: str
    endpoint: str
    replicas: list[str]
    load_balancing: LoadBalancing


def default_name(model: str, environment: Environment) -> str:
    return model if environment is Environment.PRODUCTION else f"{model}-{environment.value}"


def _now() -> datetime:
    return datetime.now(UTC)


class DeploymentService:
    def __init__(
        self,
        settings: Settings,
        metadata: MetadataStore,
        artifacts: ArtifactStore,
        registry: RegistryService,
        auth: AuthService,
    ) -> None:
        self.settings = settings
        self.metadata = metadata
        self.artifacts = artifacts
        self.registry = registry
        self.auth = auth
        self.supervisor: Supervisor | None = None
        self._jobs = ThreadPoolExecutor(max_workers=4, thread_name_prefix="deploy")
        self._pending: dict[str, Future[None]] = {}

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

    def resolve(self, target: str) -> Deployment:
        """A live deployment by its name, or else the live deployment of a model by the
        model's name (production first, then staging, then development)."""
        try:
            found = self.metadata.get_deployment(target)
            if found.status in LIVE:
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
        return infer_once(deployment.name, chosen, self.materialize(served), body)

    # -- deploying ----------------------------------------------------------------

    def deploy(self, caller: Caller, request: DeployRequest) -> Deployment:
        ref = parse_ref(request.ref)
        self.auth.authorize_owned(
            caller, Action.DEPLOYMENTS_WRITE, self.registry.model_owner(ref.name)
        )
        version = self.registry.get(request.ref)
        override = self._check_servable(
            caller, version, request.environment, request.override_approval
        )
        name = check_model_name(request.name or default_name(version.name, request.environment))
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
            resources=request.resources,
            status=DeploymentStatus.DEPLOYING,
            approval_override=override,
            created_by=caller.name,
            created_at=now,
            updated_at=now,
        )
        details = {
            "model": version.name,
            "version": version.version,
            "environment": request.environment.value,
            "replicas": replicas,
        }
        if override:
            details["approval_override"] = version.approval.value
        created = self.metadata.create_deployment(
            deployment, AuditDraft(caller.name, "deployments.create", name, details)
        )
        self._submit(name, self._launch, name)
        return created

    def _check_servable(
        self, caller: Caller, version: ModelVersion, environment: Environment, override: bool
    ) -> bool:
        """Refuse what must not be served; True when an admin overrode the approval gate."""
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
        if environment is not Environment.PRODUCTION or version.approval is Approval.APPROVED:
            return False
        if version.approval is Approval.REJECTED:
            raise IllegalTransition(
                f"{ref} was rejected; a rejected version never serves production",
                {"ref": ref, "approval": version.approval.value},
            )
        if not override:
            raise IllegalTransition(
                f"{ref} is not approved ({version.approval.value}); production serves approved "
                "versions only (an admin may override)",
                {"ref": ref, "approval": version.approval.value},
            )
        self.auth.authorize(caller, Action.DEPLOYMENTS_OVERRIDE)
        return True

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

    def scale(self, caller: Caller, name: str, replicas: int) -> Deployment:
        """A fixed replica count (autoscaling, if it was on, is turned off)."""
        deployment = self._live(caller, name)
        count = self._replicas(replicas, None)
        changed = self.metadata.update_deployment(
            name,
            {"replicas": count, "autoscale": None},
            audit=AuditDraft(
                caller.name, "deployments.scale", name, {"from": deployment.replicas, "to": count}
            ),
        )
        self._submit(name, self._scale, name, count)
        return changed

    def update(
        self, caller: Caller, name: str, version_ref: str, canary: int | None = None
    ) -> Deployment:
        """Roll out another version: all at once, or `canary` percent of requests first."""
        deployment = self._live(caller, name)
        if deployment.status is not DeploymentStatus.RUNNING:
            raise IllegalTransition(
                f"deployment {name} is {deployment.status.value}; promote or roll back first",
                {"deployment": name, "status": deployment.status.value},
            )
        if canary is not None and not 1 <= canary <= 99:
            raise InvalidInput("canary share must be 1-99 percent", {"field": "canary"})
        version = self.registry.get(f"{deployment.model}@{version_ref}")
        current = deployment.primary_version
        if version.version == current:
            raise Conflict(
                f"deployment {name} already serves version {current}",
                {"deployment": name, "version": current},
            )
        override = self._check_servable(
            caller, version, deployment.environment, deployment.approval_override
        )
        changed = self.metadata.update_deployment(
            name,
            {"status": DeploymentStatus.UPDATING, "error": None},
            expected_status=DeploymentStatus.RUNNING,
            audit=AuditDraft(
                caller.name,
                "deployments.update",
                name,
                {
                    "from": current,
                    "to": version.version,
                    "canary": canary,
                    **({"approval_override": version.approval.value} if override else {}),
                },
            ),
        )
        self._submit(name, self._rollout, name, current, version.version, canary)
        return changed

    def promote(self, caller: Caller, name: str) -> Deployment:
        """Send all traffic to the canary version and drain the old one."""
        deployment = self._live(caller, name)
        if deployment.status is not DeploymentStatus.UPDATING or len(deployment.traffic) != 2:
            raise IllegalTransition(
                f"deployment {name} has no canary to promote", {"deployment": name}
            )
        old, new = deployment.traffic[0].version, deployment.traffic[1].version
        self.metadata.record_event(
            AuditDraft(caller.name, "deployments.promote", name, {"to": new})
        )
        self._submit(name, self._finish_rollout, name, old, new)
        return deployment

    def rollback(self, caller: Caller, name: str) -> Deployment:
        """Back to the version served before: drop a canary, or undo the last rollout."""
        deployment = self._live(caller, name)
        if deployment.status is DeploymentStatus.UPDATING:
            if len(deployment.traffic) != 2:
                raise IllegalTransition(
                    f"deployment {name} is still loading its new version; wait, then roll back",
                    {"deployment": name},
                )
            old, new = deployment.traffic[0].version, deployment.traffic[1].version
            self.metadata.record_event(
                AuditDraft(caller.name, "deployments.rollback", name, {"to": old, "dropped": new})
            )
            self._submit(name, self._abandon_canary, name, old, new)
            return deployment
        if deployment.previous_version is None:
            raise Conflict(
                f"deployment {name} has no previous version to roll back to",
                {"deployment": name},
            )
        current = deployment.primary_version
        target = deployment.previous_version
        changed = self.metadata.update_deployment(
            name,
            {"status": DeploymentStatus.UPDATING, "error": None},
            expected_status=DeploymentStatus.RUNNING,
            audit=AuditDraft(
                caller.name, "deployments.rollback", name, {"from": current, "to": target}
            ),
        )
        self._submit(name, self._rollout, name, current, target, None)
        return changed

    def stop(self, caller: Caller, name: str) -> Deployment:
        deployment = self._live(caller, name)
        pending = self._pending.get(name)
        if pending is not None:
            pending.result()
        if self.supervisor is not None:
            self.supervisor.retire(name)
            self.supervisor.forget_usage(name)
        return self.metadata.update_deployment(
            name,
            {"status": DeploymentStatus.STOPPED, "health": [], "error": None},
            audit=AuditDraft(
                caller.name, "deployments.stop", name, {"was": deployment.status.value}
            ),
        )

    # -- background work ------------------------------------------------------------

    def _submit(self, name: str, work: Any, *args: Any) -> None:
        if self.supervisor is None:
            return  # recorded; the server serves it when it starts
        before = self._pending.get(name)

        def run() -> None:
            if before is not None:
                before.exception()
            try:
                work(*args)
            except Exception:
                log.exception("deployment job for %s failed", name)

        self._pending[name] = self._jobs.submit(run)

    def wait_idle(self, name: str, timeout: float | None = None) -> None:
        """Block until the background job of `name` (if any) has ended."""
        pending = self._pending.get(name)
        if pending is not None:
            pending.exception(timeout=timeout)

    def _served(self, deployment: Deployment, traffic: list[TrafficShare]) -> list[ServedModel]:
        versions = []
        for share in traffic:
            version = self.registry.get(f"{deployment.model}@{share.version}")
            versions.append(ServedVersion(share.version, self.materialize(version), share.percent))
        return [ServedModel(deployment.name, tuple(versions), preload=True)]

    def _launch(self, name: str) -> None:
        assert self.supervisor is not None
        deployment = self.metadata.get_deployment(name)
        port = _port_of(deployment.endpoint)
        try:
            models = self._served(deployment, deployment.traffic)
            group = self.supervisor.launch(name, models, deployment.replicas, port)
        except ModelhubError as exc:
            self._fail(deployment, exc.message)
            return
        except OSError as exc:
            self._fail(deployment, f"replicas could not start: {exc}")
            return
        self.supervisor.set_autoscale(name, _bounds(deployment.autoscale))
        changes: dict[str, Any] = {"endpoint": group.endpoint, "error": None}
        if deployment.status is not DeploymentStatus.RUNNING and len(deployment.traffic) == 1:
            changes["status"] = DeploymentStatus.RUNNING
        self.metadata.update_deployment(name, changes)

    def _fail(self, deployment: Deployment, reason: str) -> None:
        log.warning("deployment %s failed: %s", deployment.name, reason)
        self.metadata.update_deployment(
            deployment.name,
            {"status": DeploymentStatus.FAILED, "error": reason, "health": []},
        )

    def _scale(self, name: str, replicas: int) -> None:
        assert self.supervisor is not None
        self.supervisor.set_autoscale(name, None)
        try:
            self.supervisor.scale(name, replicas)
        except ModelhubError as exc:
            self.metadata.update_deployment(name, {"error": f"scaling failed: {exc.message}"})

    def _rollout(self, name: str, old: int, new: int, canary: int | None) -> None:
        """Load `new` beside `old`, then shift traffic: all of it, or the canary share."""
        assert self.supervisor is not None
        deployment = self.metadata.get_deployment(name)
        try:
            group = self.supervisor.group(name)
            both = [TrafficShare(version=old, percent=100), TrafficShare(version=new, percent=0)]
            group.apply(self._served(deployment, both))
        except ModelhubError as exc:
            self._revert(name, old, f"update to version {new} failed: {exc.message}")
            return
        if canary is None:
            self._finish_rollout(name, old, new)
            return
        split = check_traffic(
            [
                TrafficShare(version=old, percent=100 - canary),
                TrafficShare(version=new, percent=canary),
            ]
        )
        group.apply(self._served(deployment, split))
        self.metadata.update_deployment(name, {"traffic": split})

    def _finish_rollout(self, name: str, old: int, new: int) -> None:
        assert self.supervisor is not None
        deployment = self.metadata.get_deployment(name)
        only_new = [TrafficShare(version=new, percent=100)]
        self.supervisor.group(name).apply(self._served(deployment, only_new))
        drained = self.supervisor.group(name).wait_drained()
        self.metadata.update_deployment(
            name,
            {
                "status": DeploymentStatus.RUNNING,
                "traffic": only_new,
                "previous_version": old,
                "error": None if drained else f"version {old} was still busy when drained",
            },
        )

    def _abandon_canary(self, name: str, old: int, new: int) -> None:
        self._revert(name, old, None)

    def _revert(self, name: str, old: int, error: str | None) -> None:
        assert self.supervisor is not None
        deployment = self.metadata.get_deployment(name)
        only_old = [TrafficShare(version=old, percent=100)]
        try:
            group = self.supervisor.group(name)
            group.apply(self._served(deployment, only_old))
            group.wait_drained()
        except ModelhubError as exc:
            error = f"{error or 'rollback'}; and restoring version {old} failed: {exc.message}"
        self.metadata.update_deployment(
            name, {"status": DeploymentStatus.RUNNING, "traffic": only_old, "error": error}
        )

    # -- files ------------------------------------------------------------------

    def materialize(self, version: ModelVersion) -> Path:
        """The version's files in a local folder, verified against their digests once.

        A damaged blob raises IntegrityError and leaves nothing behind."""
        folder = self.settings.serving_dir / "models" / version.digest
        if (folder / ".verified").exists():
            return folder
        partial = folder.with_name(folder.name + ".partial")
        shutil.rmtree(partial, ignore_errors=True)
        try:
            for entry in version.files:
                write_verified_stream(
                    self.artifacts.open_chunks(entry.digest),
                    safe_target(partial, entry.path),
                    digest=entry.digest,
                )
            (partial / ".verified").touch()
        except BaseException:
            shutil.rmtree(partial, ignore_errors=True)
            raise
        shutil.rmtree(folder, ignore_errors=True)
        partial.rename(folder)
        return folder

    # -- serving lifecycle (the server calls these) ------------------------------------

    def build_supervisor(self) -> Supervisor:
        from modelhub.domain.pipelines import parse_memory
        from modelhub.serving.launcher import ReplicaSettings
        from modelhub.serving.supervisor import Supervisor

        settings = self.settings
        replica_settings = ReplicaSettings(
            workdir=settings.serving_dir / "replicas",
            memory_budget=parse_memory(settings.serve_memory) if settings.serve_memory else None,
            max_batch_size=settings.serve_max_batch_size,
            max_wait_ms=settings.serve_max_wait_ms,
            max_body_bytes=settings.serve_max_body_bytes,
            threads=settings.serve_threads,
            ready_timeout=settings.serve_ready_timeout_seconds,
            drain_seconds=settings.serve_drain_seconds,
            warm_spares=settings.serve_warm_spares,
            warm_imports=tuple(settings.serve_warm_imports),
        )
        self.supervisor = Supervisor(
            replica_settings,
            self,
            health_seconds=settings.serve_health_seconds,
            usage_seconds=settings.serve_usage_seconds,
            scale_up_seconds=settings.serve_scale_up_seconds,
            scale_down_seconds=settings.serve_scale_down_seconds,
        )
        return self.supervisor

    def start_serving(self) -> None:
        """Start the supervisor and bring back every deployment that should be live."""
        supervisor = self.supervisor or self.build_supervisor()
        supervisor.start()
        for deployment in self.metadata.list_deployments():
            if deployment.status in LIVE:
                self._submit(deployment.name, self._launch, deployment.name)

    def stop_serving(self) -> None:
        self._jobs.shutdown(wait=True, cancel_futures=True)
        if self.supervisor is not None:
            self.supervisor.stop()

    def route(self, target: str) -> Route:
        """Where a request for `target` (a deployment or a model name) should go."""
        deployment = self.resolve(target)
        if deployment.endpoint is None or deployment.status is DeploymentStatus.DEPLOYING:
            raise Unavailable(
                f"deployment {deployment.name} is {deployment.status.value}; not serving yet",
                {"deployment": deployment.name, "status": deployment.status.value},
            )
        replicas = [f"http://127.0.0.1:{h.port}" for h in deployment.health if h.port and h.live]
        if self.supervisor is not None and self.supervisor.has(deployment.name):
            group = self.supervisor.group(deployment.name)
            replicas = [r.url for r in list(group.replicas) if r.ready and r.exited() is None]
        return Route(deployment.name, deployment.endpoint, replicas, deployment.load_balancing)

    # -- what the supervisor reports -------------------------------------------------

    def replicas_changed(
        self, name: str, replicas: list[ReplicaState], restarts: int, note: str | None
    ) -> None:
        health = [
            ReplicaHealth(pid=r.pid, port=r.port, live=r.live, ready=r.ready, restarts=restarts)
            for r in replicas
        ]
        changes: dict[str, Any] = {"health": health}
        if note and note.startswith("autoscaled"):
            changes["replicas"] = len(replicas)
        if note:
            log.info("deployment %s: %s", name, note)
        with contextlib.suppress(NotFound):
            self.metadata.update_deployment(name, changes)

    def usage_sampled(self, samples: list[UsageSample]) -> None:
        deltas = [
            UsageDelta(
                deployment=s.deployment,
                version=s.version,
                requests=s.requests,
                errors=s.errors,
                rows=s.rows,
                latency_ms_sum=s.latency_ms_sum,
                latency_buckets=s.latency_buckets,
                active_callers=s.active_callers,
                last_used=s.last_used,
            )
            for s in samples
        ]
        try:
            self.metadata.add_usage(deltas)
        except NotFound:
            log.info("usage for a deployment that is gone was dropped")


def _port_of(endpoint: str | None) -> int | None:
    if not endpoint:
        return None
    try:
        return int(endpoint.rsplit(":", 1)[1])
    except (IndexError, ValueError):
        return None


def _bounds(autoscale: Autoscale | None) -> tuple[int, int, float] | None:
    if autoscale is None:
        return None
    return (autoscale.min_replicas, autoscale.max_replicas, autoscale.target_in_flight)
