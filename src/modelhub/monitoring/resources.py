"""Resource samples of processes: CPU and resident memory from psutil, GPU
utilisation and memory from NVML (nvidia-ml-py) where a GPU exists.

A `ProcessProbe` keeps one psutil.Process per pid so that CPU percent is measured
over the interval since the previous sample. NVML that fails to initialise means
no GPU: no error, and GPU figures stay None.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any

import psutil

from modelhub.domain.monitoring import ResourceSample


class GpuProbe:
    """Per-process GPU memory and device utilisation, or nothing without NVML."""

    def __init__(self) -> None:
        self.nvml: Any = None
        try:
            import pynvml

            pynvml.nvmlInit()
            self.nvml = pynvml
        except Exception:  # no library, no driver, no device: no GPU figures
            self.nvml = None

    @property
    def present(self) -> bool:
        return self.nvml is not None

    def usage(self, pids: set[int]) -> dict[int, tuple[float, int]]:
        """pid -> (utilisation percent of its device, its GPU memory bytes)."""
        if self.nvml is None or not pids:
            return {}
        nvml = self.nvml
        found: dict[int, tuple[float, int]] = {}
        try:
            for index in range(nvml.nvmlDeviceGetCount()):
                handle = nvml.nvmlDeviceGetHandleByIndex(index)
                util = float(nvml.nvmlDeviceGetUtilizationRates(handle).gpu)
                for process in nvml.nvmlDeviceGetComputeRunningProcesses(handle):
                    if process.pid in pids:
                        used = int(process.usedGpuMemory or 0)
                        before = found.get(process.pid, (0.0, 0))
                        found[process.pid] = (max(before[0], util), before[1] + used)
        except Exception:  # a driver hiccup loses one sample's GPU figures, nothing else
            return found
        return found

    def close(self) -> None:
        if self.nvml is not None:
            with contextlib.suppress(Exception):
                self.nvml.nvmlShutdown()
            self.nvml = None


class ProcessProbe:
    """Samples of a changing set of processes, each CPU percent over its own interval."""

    def __init__(
        self,
        gpu: GpuProbe | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.gpu = gpu
        self.clock = clock
        self._processes: dict[int, tuple[psutil.Process, float]] = {}

    def sample(self, kind: str, targets: Iterable[tuple[str, int]]) -> list[ResourceSample]:
        """One sample per (subject, pid) still alive; a pid seen for the first time
        gives its cumulative CPU but a CPU percent of 0 (no interval yet)."""
        wanted = list(targets)
        gpu = self.gpu.usage({pid for _, pid in wanted}) if self.gpu else {}
        now = datetime.now(UTC)
        samples: list[ResourceSample] = []
        for subject, pid in wanted:
            try:
                entry = self._processes.get(pid)
                if entry is None:
                    process = psutil.Process(pid)
                    process.cpu_percent(None)  # starts its interval
                    entry = (process, self.clock())
                process, since = entry
                with process.oneshot():
                    percent = process.cpu_percent(None)
                    times = process.cpu_times()
                    rss = process.memory_info().rss
                taken = self.clock()
                self._processes[pid] = (process, taken)
            except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
                self._processes.pop(pid, None)
                continue
            util, gpu_bytes = gpu.get(pid, (None, None))
            samples.append(
                ResourceSample(
                    kind=kind,
                    subject=subject,
                    pid=pid,
                    at=now,
                    cpu_percent=float(percent),
                    cpu_seconds=float(times.user + times.system),
                    rss_bytes=int(rss),
                    gpu_util=util,
                    gpu_memory_bytes=gpu_bytes,
                    interval_seconds=max(0.0, taken - since),
                )
            )
        return samples

    def forget(self, keep: set[int]) -> None:
        """Drop the processes not in `keep` (exited, or no longer watched)."""
        for pid in [p for p in self._processes if p not in keep]:
            del self._processes[pid]
