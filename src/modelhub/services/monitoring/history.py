"""History: the per-minute serving roll-ups and process resource samples, stored,
rolled up into hours, read back as performance summaries, and cleaned up by age.

Minutes arrive from the replica supervisor (through the deployment service) already
merged across a deployment's replicas. A minute that arrives in pieces (a replica
answered one poll late) merges into the stored one; each arrival also merges into
its hour row, so reading a week reads hours, not minutes. One server supervises a
deployment, so the read-merge-write of a key has one writer.

Windows up to 24 h read minutes; longer ones read whole hours from the hour table
and the partial hours at both edges from minutes (where they are still kept).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from ddsketch import DDSketch

from modelhub.domain.auth import Action, Caller
from modelhub.domain.monitor_report import Traffic
from modelhub.domain.monitoring import (
    ALL_DEPLOYMENTS,
    HOUR,
    PerformanceSummary,
    ResourceFigures,
    ResourceSample,
    ResourceTotals,
    RollupColumns,
    RollupRecord,
    Window,
    check_window,
    hour_of,
    window_since,
)
from modelhub.errors import InvalidInput
from modelhub.monitoring import sketches
from modelhub.monitoring.performance import summarise
from modelhub.monitoring.rollup import combine
from modelhub.services.auth import AuthService
from modelhub.settings import Settings
from modelhub.stores.metadata.base import MetadataStore
from modelhub.stores.metadata.base_history import Purged, RollupQuery

log = logging.getLogger("modelhub.monitoring")

MINUTE_RESOLUTION_UP_TO = timedelta(hours=24)
MAX_VERSION = 2**31 - 1  # the version columns are 32-bit integers


def _utc_now() -> datetime:
    return datetime.now(UTC)


def _ceil_hour(at: datetime) -> datetime:
    floor = hour_of(at)
    return floor if floor == at else floor + HOUR


class HistoryService:
    def __init__(
        self,
        settings: Settings,
        metadata: MetadataStore,
        auth: AuthService,
        clock: Callable[[], datetime] = _utc_now,
    ) -> None:
        self.settings = settings
        self.metadata = metadata
        self.auth = auth
        self.clock = clock
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- writing (the deployment service and the training scheduler call these) -----

    def record_minutes(self, minutes: Sequence[RollupRecord]) -> None:
        """Store finished minutes and bring their hours up to date, in one transaction:
        each minute merges into its deployment's minute and hour and into the model's
        (deployment ALL_DEPLOYMENTS) minute and hour."""
        if not minutes:
            return
        pieces = [*minutes, *(replace(m, deployment=ALL_DEPLOYMENTS) for m in minutes)]
        hours = [replace(p, start=hour_of(p.start)) for p in pieces]
        self.metadata.merge_rollups(pieces, hours, combine)

    def record_resources(self, samples: Sequence[ResourceSample]) -> None:
        self.metadata.add_resource_samples(samples)

    # -- reading (other monitoring services call these) ----------------------------

    def performance(
        self,
        model: str,
        window: Window,
        version: int | None = None,
        deployment: str | None = None,
    ) -> PerformanceSummary:
        """How `model` served over `window` (one version or deployment of it, if given),
        with its trend against window.previous(). A model that served nothing has a
        summary of zeros; InvalidInput for a window that is not aware or is empty."""
        check_window(window)
        # The model's own rows (ALL_DEPLOYMENTS) unless one deployment is asked for.
        scope = ALL_DEPLOYMENTS if deployment is None else deployment
        columns, resolution = self._rollups(window, model, scope, version)
        previous, _ = self._rollups(window.previous(), model, scope, version)
        deployments = (
            [deployment]
            if deployment is not None
            else [d.name for d in self.metadata.list_deployments(model=model, include_stopped=True)]
        )
        return summarise(
            model,
            window,
            columns,
            previous,
            self._replica_figures(deployments, window),
            resolution,
            version=version,
            deployment=deployment,
        )

    def latency_sketch(self, deployment: str, version: int, window: Window) -> DDSketch:
        """The merged latency sketch (milliseconds) of one deployment version over `window`."""
        check_window(window)
        columns, _ = self._rollups(window, None, deployment, version)
        summed = sketches.BinSum(columns.latency, [0] * len(columns), 1)
        return sketches.sketch_of(summed.bins())

    def counts(self, deployment: str, version: int, window: Window) -> tuple[int, int]:
        """(requests, errors) of one deployment version over `window`."""
        check_window(window)
        columns, _ = self._rollups(window, None, deployment, version)
        return sum(columns.requests), sum(columns.errors)

    def recent_traffic(
        self, caller: Caller, deployments: Sequence[str], since: str = "1h"
    ) -> dict[str, Traffic]:
        """Requests, errors and latency quantiles per deployment over the last `since`
        (minutes, so at most 24 h), read in one query whatever the number of
        deployments; a deployment that served nothing is absent."""
        self.auth.authorize(caller, Action.DEPLOYMENTS_READ)
        window = window_since(since, self.clock())
        if window.end - window.start > MINUTE_RESOLUTION_UP_TO:
            raise InvalidInput("recent traffic covers at most 24h", {"field": "since"})
        wanted = {name: cell for cell, name in enumerate(dict.fromkeys(deployments))}
        if not wanted:
            return {}
        columns = self.metadata.rollup_columns(RollupQuery("minute", window.start, window.end))
        rows = [i for i, name in enumerate(columns.deployment) if name in wanted]
        cell_of = [wanted[columns.deployment[i]] for i in rows]
        latency = sketches.BinSum([columns.latency[i] for i in rows], cell_of, len(wanted))
        requests = [0] * len(wanted)
        errors = [0] * len(wanted)
        for i, cell in zip(rows, cell_of, strict=True):
            requests[cell] += columns.requests[i]
            errors[cell] += columns.errors[i]
        found: dict[str, Traffic] = {}
        for name, cell in wanted.items():
            if requests[cell] == 0 and errors[cell] == 0:
                continue
            bins = latency.bins([cell])
            found[name] = Traffic(
                requests=requests[cell],
                errors=errors[cell],
                p50_ms=sketches.bins_quantile(bins, 0.5),
                p99_ms=sketches.bins_quantile(bins, 0.99),
            )
        return found

    def run_resources(self, run_id: int) -> ResourceTotals:
        """What a training run's workers used. Peak memory and GPU come from its
        resource samples; CPU-seconds from the attempts' usage ledger, the figure its
        cost is priced from (the same samples while an attempt runs or once it was
        killed, the worker's exact figure once it ended by itself), so that the cost
        and the monitoring figures never disagree. A run's replica-seconds are not
        here: the cost service's replica spans are their one source."""
        sampled = self.metadata.resource_totals("training", str(run_id))
        usage = self.metadata.run_usage([run_id]).get(run_id)
        return replace(sampled, cpu_seconds=usage.cpu_seconds if usage else 0.0)

    def performance_for(
        self, caller: Caller, model: str, since: str = "24h", version: int | None = None
    ) -> PerformanceSummary:
        """The transports' entry: a viewer may read; NotFound for an unknown model;
        InvalidInput for a `since` that does not parse."""
        self.auth.authorize(caller, Action.MODELS_READ)
        window = window_since(since, self.clock())
        if version is not None and not 1 <= version <= MAX_VERSION:
            raise InvalidInput(
                f"version must be a number from 1 to {MAX_VERSION}",
                {"field": "version", "value": str(version)[:24]},
            )
        self.metadata.get_model(model)
        return self.performance(model, window, version)

    def _rollups(
        self, window: Window, model: str | None, deployment: str | None, version: int | None
    ) -> tuple[RollupColumns, str]:
        def read(resolution: str, start: datetime, end: datetime) -> RollupColumns:
            if end <= start:
                return RollupColumns()
            query = RollupQuery(resolution, start, end, model, deployment, version)
            return self.metadata.rollup_columns(query)

        if window.end - window.start <= MINUTE_RESOLUTION_UP_TO:
            return read("minute", window.start, window.end), "minute"
        whole_start, whole_end = _ceil_hour(window.start), hour_of(window.end)
        if whole_end <= whole_start:
            return read("minute", window.start, window.end), "minute"
        columns = read("hour", whole_start, whole_end)
        for start, end in ((window.start, whole_start), (whole_end, window.end)):
            edge = read("minute", start, end)
            # Edge minutes are shown in their hour's point of the series.
            columns.extend(replace(edge, start=[hour_of(at) for at in edge.start]))
        return columns, "hour"

    def _replica_figures(self, deployments: list[str], window: Window) -> ResourceFigures:
        samples = self.metadata.list_resource_samples(
            "replica", deployments, window.start, window.end
        )
        if not samples:
            return ResourceFigures()
        gpu = [s for s in samples if s.gpu_util is not None]
        return ResourceFigures(
            cpu_percent=sum(s.cpu_percent for s in samples) / len(samples),
            rss_bytes=int(sum(s.rss_bytes for s in samples) / len(samples)),
            gpu_util=sum(s.gpu_util or 0.0 for s in gpu) / len(gpu) if gpu else None,
            gpu_memory_bytes=int(sum(s.gpu_memory_bytes or 0 for s in gpu) / len(gpu))
            if gpu
            else None,
        )

    # -- retention -------------------------------------------------------------------

    def cleanup(self, now: datetime | None = None) -> Purged:
        """Delete minutes, hours and resource samples older than their retention."""
        at = now or self.clock()
        s = self.settings
        purged = self.metadata.purge_history(
            minutes_before=at - s.monitoring_minutes_retention,
            hours_before=at - s.monitoring_hours_retention,
            samples_before=at - s.monitoring_samples_retention,
        )
        if purged.minutes or purged.hours or purged.samples:
            log.info(
                "history cleanup deleted %d minutes, %d hours, %d resource samples",
                purged.minutes,
                purged.hours,
                purged.samples,
            )
        return purged

    def start_cleanup(self) -> None:
        """Run `cleanup` now and then every monitoring_cleanup_seconds until `stop_cleanup`."""
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(
            target=self._cleanup_loop, name="history-cleanup", daemon=True
        )
        self._thread.start()

    def stop_cleanup(self) -> None:
        self._stop.set()
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.join(timeout=10)

    def _cleanup_loop(self) -> None:
        while True:
            try:
                self.cleanup()
            except Exception:
                log.exception("history cleanup failed; trying again next interval")
            if self._stop.wait(self.settings.monitoring_cleanup_seconds):
                return
