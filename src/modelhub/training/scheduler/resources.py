"""Resource samples of running training workers, for what a run measurably used.

Every `every_seconds` each running attempt's worker and its direct children are
sampled (CPU percent and cumulative CPU-seconds, resident memory, GPU where NVML
finds one) and appended to the store under the run's id. A run's CPU-seconds are the
last cumulative figure of each of its processes, so a worker's final interval (up to
`every_seconds`) after its last sample is not counted.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from modelhub.monitoring.resources import GpuProbe, ProcessProbe
from modelhub.stores.metadata.base import MetadataStore
from modelhub.training.executor import child_pids

log = logging.getLogger("modelhub.training")


class ResourceWatch:
    def __init__(self, metadata: MetadataStore, every_seconds: float, gpu: bool = True) -> None:
        self.metadata = metadata
        self.every_seconds = every_seconds
        self.probe = ProcessProbe(GpuProbe() if gpu else None)
        self._next = 0.0

    def maybe_sample(self, workers: Mapping[int, int], now: float) -> None:
        """Sample the workers (run id -> worker pid) and their children if the interval
        has passed; a store failure is logged, never raised into the scheduler."""
        if now < self._next:
            return
        self._next = now + self.every_seconds
        targets = [
            (str(run_id), pid)
            for run_id, worker in workers.items()
            for pid in (worker, *child_pids(worker))
        ]
        self.probe.forget({pid for _, pid in targets})
        if not targets:
            return
        try:
            self.metadata.add_resource_samples(self.probe.sample("training", targets))
        except Exception:
            log.exception("training resource samples were not stored")

    def close(self) -> None:
        if self.probe.gpu is not None:
            self.probe.gpu.close()
