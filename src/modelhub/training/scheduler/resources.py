"""Resource samples of running training workers: the one measurement of what a run
used while it runs.

Every `every_seconds` each running attempt's worker and its direct children are
sampled (CPU percent and cumulative CPU-seconds, resident memory, GPU where NVML
finds one) and appended to the store under the run's id: the series the monitoring
figures read (`HistoryService.run_resources`: peak memory, GPU). The same samples
give the attempt's running CPU-seconds for its cost (`run_usage`, through the
watcher), measured from the worker's figure when the attempt began (a warm worker's
warm-up is not the run's). When the worker exits by itself its own exact figure
(`usage.json`, training/usage.py) replaces the sampled one; a killed attempt keeps
its last sample, so up to `every_seconds` of its end is not counted.
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

    def baseline(self, pid: int) -> float:
        """The CPU-seconds a worker had used before its attempt began (0 when gone)."""
        return sum(s.cpu_seconds for s in self.probe.sample("training", [("", pid)]))

    def maybe_sample(self, workers: Mapping[int, int], now: float) -> dict[int, float]:
        """Sample the workers (run id -> worker pid) and their children if the interval
        has passed, and return each sampled run's cumulative CPU-seconds (its live
        processes'); a store failure is logged, never raised into the scheduler."""
        if now < self._next:
            return {}
        self._next = now + self.every_seconds
        targets = [
            (str(run_id), pid)
            for run_id, worker in workers.items()
            for pid in (worker, *child_pids(worker))
        ]
        self.probe.forget({pid for _, pid in targets})
        if not targets:
            return {}
        samples = self.probe.sample("training", targets)
        try:
            self.metadata.add_resource_samples(samples)
        except Exception:
            log.exception("training resource samples were not stored")
        used: dict[int, float] = {}
        for sample in samples:
            used[int(sample.subject)] = used.get(int(sample.subject), 0.0) + sample.cpu_seconds
        return used

    def close(self) -> None:
        if self.probe.gpu is not None:
            self.probe.gpu.close()
