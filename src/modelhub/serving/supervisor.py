"""The replica supervisor: every deployment's replica group, watched from one thread.

It launches groups, restarts replicas that die or stop answering, scales groups
whose autoscaling says so, and turns the replicas' cumulative usage counters into
deltas for the listener (the deployment service, which stores them). It never
touches the metadata store itself.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from modelhub.domain.monitoring import ResourceSample
from modelhub.domain.resources import DeploymentResources
from modelhub.errors import ModelhubError, NotFound
from modelhub.limits import describe
from modelhub.monitoring.resources import GpuProbe, ProcessProbe
from modelhub.monitoring.rollup import Minute, merge_minutes
from modelhub.serving.autoscale import ScalePolicy, Scaler
from modelhub.serving.host import BATCH_BOUNDS, ServedModel
from modelhub.serving.launcher import ReplicaLauncher, ReplicaSettings
from modelhub.serving.pool import ModelPool, group_name
from modelhub.serving.predlog import COUNTERS
from modelhub.serving.replicas import ReplicaGroup

log = logging.getLogger("modelhub.serving")


@dataclass(frozen=True)
class UsageSample:
    """What one version of one deployment served since the previous sample."""

    deployment: str
    version: int
    requests: int
    errors: int
    rows: int
    latency_ms_sum: float
    latency_buckets: tuple[int, ...]
    active_callers: int
    last_used: datetime | None


@dataclass(frozen=True)
class ReplicaState:
    pid: int
    port: int
    live: bool
    ready: bool
    limits: str | None = None


class SupervisorListener(Protocol):
    def replicas_changed(
        self, name: str, replicas: list[ReplicaState], restarts: int, note: str | None
    ) -> None: ...

    def usage_sampled(self, samples: list[UsageSample]) -> None: ...

    def minutes_finished(self, minutes: list[FinishedMinute]) -> None: ...

    def resources_sampled(self, samples: list[ResourceSample]) -> None: ...


@dataclass(frozen=True)
class FinishedMinute:
    """One finished minute of one deployment version, merged over its replicas."""

    deployment: str
    version: int
    minute: Minute


@dataclass
class LogTotals:
    """The prediction log's counters (COUNTERS) per deployment version, summed over its
    replicas, also those restarted: each replica reports its own since it started."""

    counts: dict[tuple[str, int], dict[str, int]] = field(default_factory=dict)
    seen: dict[tuple[int, str, int], dict[str, int]] = field(default_factory=dict)

    def add(self, pid: int, reported: list[dict[str, Any]]) -> None:
        """Add what replica `pid` counted since its previous report."""
        for item in reported:
            key = (pid, str(item["deployment"]), int(item["version"]))
            now = {counter: int(item[counter]) for counter in COUNTERS}
            before = self.seen.get(key)
            if before is not None and any(now[c] < before[c] for c in COUNTERS):
                before = None  # the replica's log began again
            self.seen[key] = now
            total = self.counts.setdefault(key[1:], dict.fromkeys(COUNTERS, 0))
            for counter in COUNTERS:
                total[counter] += now[counter] - (before[counter] if before else 0)

    def forget(self, name: str, alive: set[int]) -> None:
        """Drop what was seen of `name`'s replicas that are gone (their sums stay)."""
        for key in [k for k in self.seen if k[1] == name and k[0] not in alive]:
            del self.seen[key]


@dataclass
class Totals:
    """What each deployment version served since this supervisor started, summed over
    its replicas (also those restarted): the platform's /metrics exports it."""

    requests: dict[tuple[str, int], int] = field(default_factory=dict)
    errors: dict[tuple[str, int], int] = field(default_factory=dict)
    rows: dict[tuple[str, int], int] = field(default_factory=dict)
    batches: dict[tuple[str, int], list[int]] = field(default_factory=dict)
    latency_buckets: dict[tuple[str, int], list[int]] = field(default_factory=dict)
    latency_ms_sum: dict[tuple[str, int], float] = field(default_factory=dict)
    prediction_log: LogTotals = field(default_factory=LogTotals)

    def add(self, sample: UsageSample) -> None:
        key = (sample.deployment, sample.version)
        self.requests[key] = self.requests.get(key, 0) + sample.requests
        self.errors[key] = self.errors.get(key, 0) + sample.errors
        self.rows[key] = self.rows.get(key, 0) + sample.rows
        self.latency_ms_sum[key] = self.latency_ms_sum.get(key, 0.0) + sample.latency_ms_sum
        buckets = self.latency_buckets.setdefault(key, [0] * len(sample.latency_buckets))
        if len(buckets) == len(sample.latency_buckets):
            for index, count in enumerate(sample.latency_buckets):
                buckets[index] += count


def _minus(now: list[int], before: list[int] | None) -> list[int]:
    if before is None or len(before) != len(now):
        return list(now)
    return [a - b for a, b in zip(now, before, strict=True)]


class Supervisor:
    def __init__(
        self,
        settings: ReplicaSettings,
        listener: SupervisorListener,
        health_seconds: float = 0.5,
        usage_seconds: float = 2.0,
        scale_up_seconds: float = 3.0,
        scale_down_seconds: float = 30.0,
        launcher: ReplicaLauncher | None = None,
        resource_seconds: float = 30.0,
        gpu: bool = True,
    ) -> None:
        self.settings = settings
        self.launcher = launcher or ReplicaLauncher(settings)
        self.listener = listener
        self.health_seconds = health_seconds
        self.usage_seconds = usage_seconds
        self.scale_up_seconds = scale_up_seconds
        self.scale_down_seconds = scale_down_seconds
        self.groups: dict[str, ReplicaGroup] = {}
        self.scalers: dict[str, Scaler] = {}
        self.pools: dict[str, ModelPool] = {}
        self._pool_launchers: list[ReplicaLauncher] = []
        self.totals = Totals()
        self.resource_seconds = resource_seconds
        self.probe = ProcessProbe(GpuProbe() if gpu else None)
        self._seen: dict[tuple[int, str, int], dict[str, Any]] = {}
        # The newest minute forwarded per (replica pid, deployment, version).
        self._minutes_seen: dict[tuple[int, str, int], int] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- groups -----------------------------------------------------------------

    def launch(
        self,
        name: str,
        models: list[ServedModel],
        replicas: int,
        port: int | None = None,
        resources: DeploymentResources | None = None,
    ) -> ReplicaGroup:
        """Start a group and wait until every replica serves; on failure nothing is left."""
        group = ReplicaGroup(name, models, self.launcher, port, resources)
        try:
            group.start(replicas)
        except BaseException:
            group.stop()
            raise
        with self._lock:
            old = self.groups.pop(name, None)
            self.groups[name] = group
        if old is not None:
            old.stop()
        self._report(group, None)
        return group

    def pool(self, name: str, replicas: int, memory_budget: int) -> ModelPool:
        """The named model pool, its replicas started on first use (each with
        `memory_budget` for the models it keeps loaded); its group is watched, restarted
        and sampled like a deployment's, under the name `pool:NAME`."""
        with self._lock:
            found = self.pools.get(name)
        if found is not None:
            return found
        from dataclasses import replace

        settings = replace(
            self.settings,
            memory_budget=memory_budget,
            warm_spares=0,
            workdir=self.settings.workdir / "pools",
        )
        launcher = ReplicaLauncher(settings)
        group = ReplicaGroup(group_name(name), [], launcher)
        try:
            group.start(replicas)
        except BaseException:
            group.stop()
            launcher.close()
            raise
        pool = ModelPool(name, group, memory_budget)
        with self._lock:
            self.pools[name] = pool
            self.groups[group.name] = group
            self._pool_launchers.append(launcher)
        self._report(group, None)
        return pool

    def running_pool(self, name: str) -> ModelPool | None:
        with self._lock:
            return self.pools.get(name)

    def group(self, name: str) -> ReplicaGroup:
        with self._lock:
            group = self.groups.get(name)
        if group is None:
            raise NotFound(f"deployment {name} has no running replicas", {"deployment": name})
        return group

    def has(self, name: str) -> bool:
        with self._lock:
            return name in self.groups

    def names(self) -> list[str]:
        """The deployments this supervisor runs a group for."""
        with self._lock:
            return sorted(self.groups)

    def size(self, name: str) -> int:
        """How many replicas `name`'s group runs (0 when none)."""
        with self._lock:
            group = self.groups.get(name)
        return len(group.replicas) if group is not None else 0

    def set_autoscale(self, name: str, bounds: tuple[int, int, float] | None) -> None:
        with self._lock:
            if bounds is None:
                self.scalers.pop(name, None)
                return
            low, high, target = bounds
            self.scalers[name] = Scaler(
                ScalePolicy(low, high, target, self.scale_up_seconds, self.scale_down_seconds)
            )

    def scale(self, name: str, replicas: int) -> None:
        group = self.group(name)
        group.scale(replicas)
        self._report(group, f"scaled to {replicas}")

    def retire(self, name: str) -> None:
        with self._lock:
            group = self.groups.pop(name, None)
            self.scalers.pop(name, None)
        if group is not None:
            group.stop()

    def _report(self, group: ReplicaGroup, note: str | None) -> None:
        states = [
            ReplicaState(
                r.pid, r.private_port, r.exited() is None, r.ready, describe(r.limits, r.cgroup)
            )
            for r in list(group.replicas)
        ]
        self.listener.replicas_changed(group.name, states, group.restarts, note)

    # -- the watch thread ---------------------------------------------------------

    def start(self) -> None:
        self.launcher.fill()
        self._stop.clear()
        self._thread = threading.Thread(target=self._watch, name="replica-supervisor", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        with self._lock:
            groups, self.groups = list(self.groups.values()), {}
        for group in groups:
            group.stop()
        self.launcher.close()
        for launcher in self._pool_launchers:
            launcher.close()
        if self.probe.gpu is not None:
            self.probe.gpu.close()

    def _watch(self) -> None:
        next_usage = time.monotonic() + self.usage_seconds
        next_resources = time.monotonic()
        while not self._stop.wait(self.health_seconds):
            self._guarded(self.check_health)
            if time.monotonic() >= next_usage:
                next_usage = time.monotonic() + self.usage_seconds
                self._guarded(self.collect_usage)
            if time.monotonic() >= next_resources:
                next_resources = time.monotonic() + self.resource_seconds
                self._guarded(self.collect_resources)

    @staticmethod
    def _guarded(step: Callable[[], None]) -> None:
        try:
            step()
        except Exception:
            log.exception("replica supervisor tick failed")

    def check_health(self) -> None:
        with self._lock:
            groups = list(self.groups.values())
        for group in groups:
            if not group.lock.acquire(blocking=False):
                continue  # a launch, update or scale holds it; look next tick
            try:
                before = [(r.pid, r.ready) for r in group.replicas]
                events = group.check()
                if events or before != [(r.pid, r.ready) for r in group.replicas]:
                    self._report(group, "; ".join(events) or None)
                self._autoscale(group)
            finally:
                group.lock.release()

    def _autoscale(self, group: ReplicaGroup) -> None:
        scaler = self.scalers.get(group.name)
        if scaler is None:
            return
        current = len(group.replicas)
        wanted = scaler.observe(time.monotonic(), current, group.in_flight())
        if wanted != current:
            group.scale(wanted)
            self._report(group, f"autoscaled from {current} to {wanted}")

    # -- usage ------------------------------------------------------------------

    def collect_usage(self) -> None:
        with self._lock:
            groups = list(self.groups.values())
        samples: list[UsageSample] = []
        minutes: list[FinishedMinute] = []
        for group in groups:
            group_samples, group_minutes = self._group_usage(group)
            samples.extend(group_samples)
            minutes.extend(group_minutes)
        if samples:
            self.listener.usage_sampled(samples)
        if minutes:
            self.listener.minutes_finished(minutes)

    def collect_resources(self) -> None:
        """Sample every live replica's CPU, memory (and GPU) for the listener."""
        with self._lock:
            groups = list(self.groups.values())
        targets = [
            (group.name, replica.pid)
            for group in groups
            for replica in list(group.replicas)
            if replica.exited() is None
        ]
        self.probe.forget({pid for _, pid in targets})
        samples = self.probe.sample("replica", targets)
        if samples:
            self.listener.resources_sampled(samples)

    def _group_usage(self, group: ReplicaGroup) -> tuple[list[UsageSample], list[FinishedMinute]]:
        reports = group.stats()
        alive = {replica.pid for replica in list(group.replicas)}
        # A deployment's group serves the deployment; a pool's group serves many.
        names = {group.name, *(model.name for model in group.models)}
        for key in [k for k in self._seen if k[1] in names and k[0] not in alive]:
            del self._seen[key]  # a replica that is gone: its counters went with it
        for key in [k for k in self._minutes_seen if k[1] in names and k[0] not in alive]:
            del self._minutes_seen[key]
        for name in names:
            self.totals.prediction_log.forget(name, alive)
        new_minutes: list[tuple[str, int, Minute]] = []
        merged_by: dict[str, dict[int, dict[str, Any]]] = {}
        for pid, stats in reports:
            self.totals.prediction_log.add(pid, stats.get("prediction_log", {}).get("versions", []))
            for entry in stats["models"]:
                version = int(entry["version"])
                served = str(entry["name"])
                merged = merged_by.setdefault(served, {})
                new_minutes.extend(
                    (served, version, minute)
                    for minute in self._new_minutes(pid, served, version, entry)
                )
                usage = entry["usage"]
                key = (pid, served, version)
                before = self._seen.get(key)
                if before is not None and usage["requests"] < before["requests"]:
                    before = None  # the slot was rebuilt: its counters began again
                self._seen[key] = usage
                into = merged.setdefault(version, {"callers": set(), "last_used": None})
                for counter in ("requests", "errors", "rows"):
                    into[counter] = (
                        into.get(counter, 0) + usage[counter] - (before[counter] if before else 0)
                    )
                into["latency_ms_sum"] = (
                    into.get("latency_ms_sum", 0.0)
                    + usage["latency_ms_sum"]
                    - (before["latency_ms_sum"] if before else 0.0)
                )
                latency = _minus(
                    usage["latency_buckets"], before["latency_buckets"] if before else None
                )
                summed = into.get("latency_buckets", [0] * len(latency))
                into["latency_buckets"] = [a + b for a, b in zip(summed, latency, strict=True)]
                batches = _minus(
                    usage["batch_buckets"], before["batch_buckets"] if before else None
                )
                total = self.totals.batches.setdefault(
                    (served, version), [0] * (len(BATCH_BOUNDS) + 1)
                )
                for index, count in enumerate(batches):
                    total[index] += count
                into["callers"].update(usage["callers"])
                if usage["last_used"] is not None:
                    into["last_used"] = max(into["last_used"] or 0.0, usage["last_used"])
        samples: list[UsageSample] = []
        for served, merged in merged_by.items():
            samples.extend(self._samples(served, merged))
        finished = [
            FinishedMinute(deployment, version, minute)
            for (deployment, version, _), minute in sorted(
                merge_minutes(new_minutes).items(), key=lambda item: item[0]
            )
        ]
        return samples, finished

    def _samples(self, served: str, merged: dict[int, dict[str, Any]]) -> list[UsageSample]:
        samples: list[UsageSample] = []
        for version, data in merged.items():
            if not data.get("requests"):
                continue
            last = data["last_used"]
            samples.append(
                UsageSample(
                    deployment=served,
                    version=version,
                    requests=data["requests"],
                    errors=data["errors"],
                    rows=data["rows"],
                    latency_ms_sum=data["latency_ms_sum"],
                    latency_buckets=tuple(data["latency_buckets"]),
                    active_callers=len(data["callers"]),
                    last_used=datetime.fromtimestamp(last, UTC) if last else None,
                )
            )
            self.totals.add(samples[-1])
        return samples

    def _new_minutes(
        self, pid: int, name: str, version: int, entry: dict[str, Any]
    ) -> list[Minute]:
        """The finished minutes of one replica's slot not forwarded before."""
        key = (pid, name, version)
        last = self._minutes_seen.get(key, -1)
        fresh: list[Minute] = []
        for data in entry.get("minutes", ()):
            try:
                minute = Minute.from_json(data)
            except ModelhubError:
                log.warning("replica %d sent a malformed minute for %s; dropped", pid, name)
                continue
            if minute.minute > last:
                fresh.append(minute)
        if fresh:
            self._minutes_seen[key] = max(m.minute for m in fresh)
        return fresh

    def forget_usage(self, name: str) -> None:
        for key in [k for k in self._seen if k[1] == name]:
            del self._seen[key]
        for key in [k for k in self._minutes_seen if k[1] == name]:
            del self._minutes_seen[key]
