"""The background half of deployments: launching, scaling and version changes.

The deployment service records what a person asked for (a new deployment, a
`rollout` in progress, a replica count) and returns at once; the jobs here make the
replicas match, one job at a time per deployment, and record how it ended. They also
take the supervisor's reports (replica health, usage) into the store.

A version change keeps its `rollout` on the record until it is done, so a server
restart, or a change recorded while no server ran, finishes it instead of losing it:

    loading   new version loads beside the old; the old keeps all traffic
    canary    both serve, by the recorded split, until promote or rollback
    done      only the new version serves; the old one drained; rollout cleared
"""

from __future__ import annotations

import contextlib
import logging
import shutil
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modelhub.domain.deployments import (
    Autoscale,
    Deployment,
    DeploymentStatus,
    ReplicaHealth,
    TrafficShare,
    check_traffic,
)
from modelhub.domain.monitoring import ResourceSample
from modelhub.domain.records import ModelVersion
from modelhub.domain.resources import recorded_resources
from modelhub.errors import IllegalTransition, IntegrityError, ModelhubError, NotFound
from modelhub.serving.host import ServedModel, ServedVersion
from modelhub.serving.predlog import LogTarget
from modelhub.stores.metadata.base import UsageDelta

if TYPE_CHECKING:
    from modelhub.services.monitoring.history import HistoryService
    from modelhub.services.registry import RegistryService
    from modelhub.serving.launcher import ReplicaLauncher
    from modelhub.serving.pool import ModelPool
    from modelhub.serving.replicas import ReplicaGroup
    from modelhub.serving.supervisor import FinishedMinute, ReplicaState, Supervisor, UsageSample
    from modelhub.settings import Settings
    from modelhub.stores.metadata.base import MetadataStore

log = logging.getLogger("modelhub.deployments")


def split_of(old: int, new: int, canary: int) -> list[TrafficShare]:
    return check_traffic(
        [TrafficShare(version=old, percent=100 - canary), TrafficShare(version=new, percent=canary)]
    )


class Rollouts:
    def __init__(
        self,
        settings: Settings,
        metadata: MetadataStore,
        registry: RegistryService,
        history: HistoryService | None = None,
    ) -> None:
        self.settings = settings
        self.metadata = metadata
        self.registry = registry
        self.history = history
        self._models: dict[str, str] = {}
        self.supervisor: Supervisor | None = None
        self._jobs = ThreadPoolExecutor(max_workers=4, thread_name_prefix="deploy")
        self._pending: dict[str, Future[None]] = {}
        # With several servers: whether this one serves a deployment (placed on it).
        self.is_mine: Callable[[str], bool] | None = None

    @property
    def serving(self) -> bool:
        """True when this process runs replicas (a server), False in local mode."""
        return self.supervisor is not None

    # -- jobs -----------------------------------------------------------------

    def submit(self, name: str, work: Callable[[str], None]) -> None:
        """Run `work(name)` after the deployment's previous job, off the caller's thread.

        In local mode (no replicas here) it runs at once and only updates the record:
        the server that starts on this home later serves what the record says."""
        if self.supervisor is None:
            work(name)
            return
        if self.is_mine is not None and not self.is_mine(name):
            return  # the server it is placed on serves it (its heartbeat picks it up)
        before = self._pending.get(name)

        def run() -> None:
            if before is not None:
                before.exception()
            try:
                work(name)
            except Exception:
                log.exception("deployment job for %s failed", name)

        self._pending[name] = self._jobs.submit(run)

    def busy(self, name: str) -> bool:
        """Whether a job of `name` is queued or running here."""
        pending = self._pending.get(name)
        return pending is not None and not pending.done()

    def wait_idle(self, name: str, timeout: float | None = None) -> None:
        pending = self._pending.get(name)
        if pending is not None:
            pending.exception(timeout=timeout)

    def _group(self, name: str) -> ReplicaGroup:
        assert self.supervisor is not None
        return self.supervisor.group(name)

    def _pool(self, pool: str) -> ModelPool:
        """The running pool (its replicas started on first use)."""
        from modelhub.domain.pipelines import parse_memory

        assert self.supervisor is not None
        settings = self.settings
        return self.supervisor.pool(
            pool, settings.pool_replicas, parse_memory(settings.pool_memory)
        )

    def _apply(self, deployment: Deployment, traffic: list[TrafficShare]) -> None:
        """Have every replica serve `traffic` (files checked even with none running)."""
        models = self.served(deployment, traffic)
        if self.supervisor is None:
            return
        if deployment.pool is not None:
            self._pool(deployment.pool).put(models[0])
        else:
            self._group(deployment.name).apply(models)

    def launch(self, name: str) -> None:
        """Start the deployment's replicas as recorded (or place it on its pool), then go
        on with its rollout."""
        if self.supervisor is None:
            return
        deployment = self.metadata.get_deployment(name)
        try:
            models = self.served(deployment, deployment.traffic)
            if deployment.pool is not None:
                pool = self._pool(deployment.pool)
                pool.put(models[0])
                endpoint = pool.endpoint
            else:
                group = self.supervisor.launch(
                    name,
                    models,
                    deployment.replicas,
                    _port_of(deployment.endpoint),
                    recorded_resources(deployment.resources),
                )
                endpoint = group.endpoint
        except IntegrityError as exc:
            self._fail(name, f"an artifact failed its integrity check: {exc.message}")
            return
        except ModelhubError as exc:
            self._fail(name, exc.message)
            return
        except OSError as exc:
            self._fail(name, f"replicas could not start: {exc}")
            return
        if deployment.pool is None:
            self.supervisor.set_autoscale(name, _bounds(deployment.autoscale))
        changes: dict[str, Any] = {"endpoint": endpoint, "error": None}
        if deployment.rollout is None and deployment.status is not DeploymentStatus.RUNNING:
            changes["status"] = DeploymentStatus.RUNNING
        try:
            self.metadata.update_deployment(name, changes)
        except IllegalTransition:
            # stopped while its replicas started: the stop's job, queued behind this
            # one, takes them down; the record already says stopped
            log.info("deployment %s was stopped while it launched", name)
            return
        if deployment.rollout is not None and len(deployment.traffic) == 1:
            self.roll(name)  # it was loading when the server stopped: carry on

    def _fail(self, name: str, reason: str) -> None:
        log.warning("deployment %s failed: %s", name, reason)
        self.metadata.update_deployment(
            name, {"status": DeploymentStatus.FAILED, "error": reason, "health": []}
        )

    def scale(self, name: str) -> None:
        if self.supervisor is None:
            return
        deployment = self.metadata.get_deployment(name)
        if deployment.pool is not None:
            return  # a pool deployment has no replicas of its own
        self.supervisor.set_autoscale(name, _bounds(deployment.autoscale))
        try:
            self.supervisor.scale(name, deployment.replicas)
        except ModelhubError as exc:
            self.metadata.update_deployment(name, {"error": f"scaling failed: {exc.message}"})

    def roll(self, name: str) -> None:
        """Load the rollout's new version beside the old, then shift traffic."""
        deployment = self.metadata.get_deployment(name)
        rollout = deployment.rollout
        if rollout is None:
            return
        old, new = rollout.from_version, rollout.to_version
        both = [TrafficShare(version=old, percent=100), TrafficShare(version=new, percent=0)]
        try:
            self._apply(deployment, both)
        except ModelhubError as exc:
            self._settle(name, old, f"the change to version {new} failed: {exc.message}")
            return
        if rollout.canary is None:
            self.finish(name)
            return
        split = split_of(old, new, rollout.canary)
        try:
            self._apply(deployment, split)
        except ModelhubError as exc:
            self._settle(name, old, f"the canary of version {new} failed: {exc.message}")
            return
        self.metadata.update_deployment(name, {"traffic": split})

    def finish(self, name: str) -> None:
        """All traffic to the rollout's new version; the old one drains, then unloads."""
        deployment = self.metadata.get_deployment(name)
        if deployment.rollout is None:
            return
        self._settle(name, deployment.rollout.to_version, None)

    def abandon(self, name: str) -> None:
        """All traffic back to the version served before the rollout."""
        deployment = self.metadata.get_deployment(name)
        if deployment.rollout is None:
            return
        self._settle(name, deployment.rollout.from_version, None)

    def _settle(self, name: str, version: int, error: str | None) -> None:
        deployment = self.metadata.get_deployment(name)
        only = [TrafficShare(version=version, percent=100)]
        rollout = deployment.rollout
        changes: dict[str, Any] = {"traffic": only, "rollout": None}
        if self.supervisor is not None:
            try:
                served = self.served(deployment, only)
                target: ModelPool | ReplicaGroup
                if deployment.pool is not None:
                    target = self._pool(deployment.pool)
                    target.put(served[0])
                else:
                    target = self._group(name)
                    target.apply(served)
                if not target.wait_drained() and error is None:
                    error = "the replaced version was still busy when its drain time ran out"
            except ModelhubError as exc:
                # Nothing changed on the replicas: the record keeps the rollout, so
                # promote or rollback can be tried again.
                self.metadata.update_deployment(
                    name, {"error": f"serving only version {version} failed: {exc.message}"}
                )
                return
        if rollout is not None and version == rollout.to_version:
            changes["previous_version"] = rollout.from_version
        changes["error"] = error
        if deployment.status is not DeploymentStatus.RUNNING:
            changes["status"] = DeploymentStatus.RUNNING
        self.metadata.update_deployment(name, changes)

    # -- files ----------------------------------------------------------------

    def served(self, deployment: Deployment, traffic: list[TrafficShare]) -> list[ServedModel]:
        versions = []
        private: dict[int, frozenset[str]] = {}
        for share in traffic:
            version = self.registry.get(f"{deployment.model}@{share.version}")
            versions.append(
                ServedVersion(
                    share.version,
                    self.materialize(version),
                    share.percent,
                    trusted=version.trusted,
                )
            )
            private[share.version] = frozenset(
                spec.name for spec in version.signature.inputs if spec.private
            )
        policy = deployment.prediction_log
        log = None
        if policy is not None and policy.rate > 0 and policy.max_per_minute > 0:
            log = LogTarget(
                deployment.name, deployment.model, policy.rate, policy.max_per_minute, private
            )
        return [
            ServedModel(
                deployment.name,
                tuple(versions),
                preload=True,
                log=log,
                model=deployment.model,
            )
        ]

    def served_here(self) -> list[str]:
        """The deployments this server serves: its own replica groups, and those placed on
        its running pools (a pool's own group is no deployment)."""
        if self.supervisor is None:
            return []
        from modelhub.serving.pool import is_pool_group

        names = {name for name in self.supervisor.names() if not is_pool_group(name)}
        for pool in list(self.supervisor.pools.values()):
            names.update(pool.names())
        return sorted(names)

    def refresh(self, name: str) -> None:
        """Send the replicas what they serve again (a changed prediction log policy)."""
        deployment = self.metadata.get_deployment(name)
        if self.supervisor is None:
            return
        pool = self.supervisor.running_pool(deployment.pool) if deployment.pool else None
        if self.supervisor.has(name) or (pool is not None and pool.has(name)):
            self._apply(deployment, deployment.traffic)

    def materialize(self, version: ModelVersion) -> Path:
        """The version's files in a local folder, verified against their digests once.

        A damaged blob raises IntegrityError and leaves nothing behind."""
        folder = self.settings.serving_dir / "models" / version.digest
        if (folder / ".verified").exists():
            return folder
        partial = folder.with_name(folder.name + ".partial")
        shutil.rmtree(partial, ignore_errors=True)
        try:
            self.registry.download(f"{version.name}@{version.version}", partial)
            (partial / ".verified").touch()
        except BaseException:
            shutil.rmtree(partial, ignore_errors=True)
            raise
        shutil.rmtree(folder, ignore_errors=True)
        partial.rename(folder)
        return folder

    # -- the supervisor's reports -------------------------------------------------

    def replicas_changed(
        self, name: str, replicas: list[ReplicaState], restarts: int, note: str | None
    ) -> None:
        from modelhub.serving.pool import is_pool_group

        if is_pool_group(name):
            # A pool's replicas belong to no one deployment: `pools show` reports them.
            if note:
                log.info("%s: %s", name, note)
            return
        health = [
            ReplicaHealth(
                pid=r.pid,
                port=r.port,
                live=r.live,
                ready=r.ready,
                restarts=restarts,
                limits=r.limits,
            )
            for r in replicas
        ]
        changes: dict[str, Any] = {"health": health}
        if note and note.startswith("autoscaled"):
            changes["replicas"] = len(replicas)
        if note:
            log.info("deployment %s: %s", name, note)
        with contextlib.suppress(NotFound):
            self.metadata.update_deployment(name, changes)
        # Replica-seconds (cost) and uptime (platform figures) are read from these spans.
        live = [(r.pid, r.ready) for r in replicas if r.live]
        self.metadata.record_replicas(name, live, datetime.now(UTC))

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
        served = {s.deployment for s in samples}
        self.metadata.touch_replica_spans(served, datetime.now(UTC))

    def minutes_finished(self, minutes: list[FinishedMinute]) -> None:
        if self.history is None:
            return
        from modelhub.monitoring.rollup import to_record

        records = []
        for finished in minutes:
            model = self._model_of(finished.deployment)
            if model is None:
                continue
            records.append(to_record(finished.deployment, model, finished.version, finished.minute))
        self.history.record_minutes(records)

    def resources_sampled(self, samples: list[ResourceSample]) -> None:
        if self.history is not None:
            self.history.record_resources(samples)

    def _model_of(self, deployment: str) -> str | None:
        model = self._models.get(deployment)
        if model is None:
            try:
                model = self._models[deployment] = self.metadata.get_deployment(deployment).model
            except NotFound:
                log.info("minutes of deployment %s, which is gone, were dropped", deployment)
        return model

    # -- the serving lifecycle ------------------------------------------------------

    def build_supervisor(self, launcher: ReplicaLauncher | None = None) -> Supervisor:
        """The supervisor, with `launcher` when the server started one (and its spares)
        before it had even imported its services."""
        from modelhub.serving.launcher import ReplicaSettings
        from modelhub.serving.supervisor import Supervisor

        settings = self.settings
        self.supervisor = Supervisor(
            launcher.settings if launcher else ReplicaSettings.from_settings(settings),
            self,
            launcher=launcher,
            health_seconds=settings.serve_health_seconds,
            usage_seconds=settings.serve_usage_seconds,
            scale_up_seconds=settings.serve_scale_up_seconds,
            scale_down_seconds=settings.serve_scale_down_seconds,
            resource_seconds=settings.monitoring_resource_seconds,
        )
        return self.supervisor

    def stop(self, name: str) -> None:
        """Stop serving `name` (after its pending job), here and now."""
        self.wait_idle(name)
        if self.supervisor is not None:
            for pool in list(self.supervisor.pools.values()):
                pool.remove(name)
            self.supervisor.retire(name)
            self.supervisor.forget_usage(name)
            self.metadata.close_replica_spans(name, datetime.now(UTC))
        self._models.pop(name, None)

    def close(self) -> None:
        self._jobs.shutdown(wait=True, cancel_futures=True)
        if self.supervisor is not None:
            served = self.supervisor.names()
            self.supervisor.stop()
            # Only this server's spans: another server sharing the database runs its own.
            for name in served:
                self.metadata.close_replica_spans(name, datetime.now(UTC))


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
