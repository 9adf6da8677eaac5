"""Memory and CPU limits that hold, for serving replicas and training attempts.

Two mechanisms, chosen once when the server starts (`Enforcement.detect`):

- **cgroup v2**, where the server may create cgroups: a delegated cgroup v2 folder
  (MODELHUB_CGROUP_ROOT, or the server's own cgroup when it is writable and offers
  the memory and cpu controllers to its children). Each replica or attempt gets a
  child cgroup with `memory.max` (and no swap) and `cpu.max`; the kernel's OOM killer
  ends a process over its memory, and the supervisor reads `memory.events` to say so.
- **address-space limits and CPU affinity** everywhere else (cgroup v1 machines,
  containers without delegation): the process limits itself once its libraries are
  imported, before it loads models or runs a job. RLIMIT_AS is set to its address
  space at that moment plus the memory limit, so an allocation past it fails
  (MemoryError, or the library's own "cannot allocate"), which the replica or worker
  reports naming the limit. Shared libraries mapped before (torch's code) are not
  counted; with GPUs no address-space limit is set, since CUDA reserves far more
  address space than it uses.

CPU affinity (the chosen CPUs) is set in both: every thread of the process, and what
it starts later inherits it (`/proc/PID/status` Cpus_allowed_list shows it).
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import math
import os
import resource
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

log = logging.getLogger("modelhub.limits")

CGROUP_V2 = "cgroup v2"
ADDRESS_SPACE = "address-space limit and CPU affinity"
CPU_PERIOD_US = 100_000
M_ARENA_MAX = -8  # mallopt: fewer malloc arenas, so threads do not each reserve 64 MiB
ARENAS_UNDER_LIMIT = 2


@dataclass(frozen=True)
class Limits:
    """What one process may use: `memory` bytes (None: no limit), the CPUs it is pinned
    to (empty: any), its CPU quota in CPUs (cgroup only) and its GPUs."""

    memory: int | None = None
    cpus: tuple[int, ...] = ()
    cpu_quota: float | None = None
    gpus: tuple[int, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "memory": self.memory,
            "cpus": list(self.cpus),
            "cpu_quota": self.cpu_quota,
            "gpus": list(self.gpus),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any] | None) -> Limits:
        if not data:
            return cls()
        return cls(
            memory=data.get("memory"),
            cpus=tuple(int(c) for c in data.get("cpus") or ()),
            cpu_quota=data.get("cpu_quota"),
            gpus=tuple(int(g) for g in data.get("gpus") or ()),
        )

    @property
    def empty(self) -> bool:
        return self.memory is None and not self.cpus and not self.gpus and self.cpu_quota is None


def machine_cpus() -> list[int]:
    """The CPUs this process may run on (its own affinity: a container's share)."""
    return sorted(os.sched_getaffinity(0))


def count_gpus() -> int:
    """NVIDIA GPUs the driver shows, read without importing torch (server start-up stays fast)."""
    try:
        return len(os.listdir("/proc/driver/nvidia/gpus"))
    except OSError:
        pass
    if shutil.which("nvidia-smi") is None:
        return 0
    try:
        listed = subprocess.run(
            ["nvidia-smi", "-L"], capture_output=True, text=True, timeout=10, check=True
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return 0
    return sum(1 for line in listed.splitlines() if line.startswith("GPU "))


def choose_cpus(cpus: float | None, turn: int, available: Sequence[int]) -> tuple[int, ...]:
    """ceil(cpus) of `available`, starting further along at each turn, so that replicas
    (or attempts) started one after another spread over the machine."""
    if cpus is None or not available:
        return ()
    count = min(len(available), math.ceil(cpus))
    start = (turn * count) % len(available)
    return tuple(sorted(available[(start + i) % len(available)] for i in range(count)))


def choose_gpus(gpus: int, turn: int, total: int) -> tuple[int, ...]:
    """`gpus` devices of `total`, round robin by turn (replicas of one deployment spread)."""
    if gpus <= 0 or total <= 0:
        return ()
    return tuple(sorted({(turn * gpus + i) % total for i in range(min(gpus, total))}))


def address_space() -> int:
    """This process's virtual size in bytes (VmSize)."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmSize:"):
                return int(line.split()[1]) * 1024
    return 0


def pin_threads(pid: int, cpus: Sequence[int]) -> None:
    """Set the affinity of every thread of `pid` (threads started later inherit it)."""
    try:
        threads = os.listdir(f"/proc/{pid}/task")
    except OSError:
        threads = [str(pid)]
    for thread in threads:
        with contextlib.suppress(ProcessLookupError):  # a thread that ended meanwhile
            os.sched_setaffinity(int(thread), cpus)


def limit_self(limits: Limits) -> list[str]:
    """Apply the fallback limits to this process (see the module); returns what was done.

    Call it after the process's libraries are imported and before it loads or runs
    anything the limit is meant for. Memory is left alone when `memory` is None, when
    GPUs are in use, or when a cgroup already holds it (the caller then passes None)."""
    notes = []
    if limits.cpus:
        pin_threads(os.getpid(), limits.cpus)
        notes.append(f"pinned to CPUs {','.join(str(c) for c in limits.cpus)}")
    if limits.memory is not None and not limits.gpus:
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL("libc.so.6").mallopt(M_ARENA_MAX, ARENAS_UNDER_LIMIT)
        ceiling = address_space() + limits.memory
        _, hard = resource.getrlimit(resource.RLIMIT_AS)
        if hard != resource.RLIM_INFINITY:
            ceiling = min(ceiling, hard)
        resource.setrlimit(resource.RLIMIT_AS, (ceiling, ceiling))
        notes.append(
            f"address space limited to {ceiling // 2**20} MiB (memory {mib(limits.memory)})"
        )
    return notes


def describe(limits: Limits, cgroup: Path | None) -> str | None:
    """One line for `deployments show`: what holds this process, and to what."""
    if limits.empty:
        return None
    parts = []
    if limits.memory is not None:
        how = "cgroup memory.max" if cgroup is not None else "address space"
        parts.append(f"memory {mib(limits.memory)} ({how})")
    if limits.cpus:
        how = f"cgroup cpu.max {limits.cpu_quota:g}, " if cgroup is not None else ""
        parts.append(f"CPUs {','.join(str(c) for c in limits.cpus)} ({how}affinity)")
    if limits.gpus:
        parts.append(f"GPUs {','.join(str(g) for g in limits.gpus)}")
    return f"{CGROUP_V2 if cgroup is not None else ADDRESS_SPACE}: " + ", ".join(parts)


def mib(size: int) -> str:
    return f"{size / 2**20:.0f} MiB"


def memory_failure(text: str) -> bool:
    """Whether an error's text is an allocation that failed (Python's, torch's, C++'s)."""
    lowered = text.lower()
    return any(
        sign in lowered
        for sign in ("memoryerror", "can't allocate memory", "cannot allocate memory",
                     "std::bad_alloc", "out of memory", "failed to allocate")
    )  # fmt: skip


# -- cgroup v2 -----------------------------------------------------------------


@dataclass
class CgroupV2:
    """A cgroup v2 folder where this server may create one child cgroup per process."""

    root: Path
    controllers: frozenset[str] = field(default_factory=frozenset)

    @classmethod
    def find(cls, configured: Path | None) -> CgroupV2 | None:
        """The configured folder, else this process's own cgroup, when it is a writable
        cgroup v2 folder that offers memory and cpu to its children; else None."""
        candidates = [configured] if configured is not None else [_own_cgroup()]
        for root in candidates:
            if root is None:
                continue
            try:
                offered = frozenset((root / "cgroup.subtree_control").read_text().split())
            except OSError:
                continue
            if {"memory", "cpu"} <= offered and os.access(root, os.W_OK):
                return cls(root, offered)
        return None

    def confine(self, name: str, pid: int, limits: Limits) -> Path:
        """Create `name` under the root with the limits and move `pid` into it."""
        folder = self.root / name
        folder.mkdir(exist_ok=True)
        if limits.memory is not None:
            (folder / "memory.max").write_text(str(limits.memory))
            with contextlib.suppress(OSError):
                (folder / "memory.swap.max").write_text("0")
        if limits.cpu_quota is not None:
            quota = max(1000, int(limits.cpu_quota * CPU_PERIOD_US))
            (folder / "cpu.max").write_text(f"{quota} {CPU_PERIOD_US}")
        (folder / "cgroup.procs").write_text(str(pid))
        return folder

    @staticmethod
    def oom_killed(folder: Path) -> bool:
        try:
            events = (folder / "memory.events").read_text().split()
        except OSError:
            return False
        counts = dict(zip(events[::2], events[1::2], strict=False))
        return int(counts.get("oom_kill", "0")) > 0

    @staticmethod
    def remove(folder: Path) -> None:
        with contextlib.suppress(OSError):
            folder.rmdir()


def _own_cgroup() -> Path | None:
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        if line.startswith("0::"):
            candidate = Path("/sys/fs/cgroup") / line[3:].lstrip("/")
            if (candidate / "cgroup.controllers").exists():
                return candidate
    return None


@dataclass
class Enforcement:
    """How this server holds processes to their limits: a cgroup v2, or the fallback."""

    cgroup: CgroupV2 | None

    @classmethod
    def detect(cls, configured: Path | None = None) -> Enforcement:
        found = cls(CgroupV2.find(configured))
        log.info("resource limits: %s", found.describe())
        return found

    @property
    def mechanism(self) -> str:
        return CGROUP_V2 if self.cgroup is not None else ADDRESS_SPACE

    def describe(self) -> str:
        if self.cgroup is not None:
            return f"{CGROUP_V2} under {self.cgroup.root}"
        return f"{ADDRESS_SPACE} (no cgroup v2 folder this server may write)"

    def cgroup_expected(self, limits: Limits) -> Path | None:
        """The root its cgroup will be made under, where `confine` will make one."""
        if self.cgroup is None or (limits.memory is None and limits.cpu_quota is None):
            return None
        return self.cgroup.root

    @staticmethod
    def for_process(limits: Limits, cgroup: Path | None) -> Limits:
        """What the process applies to itself: without memory where a cgroup holds it."""
        if cgroup is not None:
            return Limits(memory=None, cpus=limits.cpus, gpus=limits.gpus)
        return limits

    def confine(self, name: str, pid: int, limits: Limits) -> Path | None:
        """Move `pid` into its own cgroup with `limits` (cgroup v2 only; else None).
        A cgroup that cannot be made is logged and the process runs on the fallback."""
        if self.cgroup is None or self.cgroup_expected(limits) is None:
            return None
        try:
            return self.cgroup.confine(name, pid, limits)
        except OSError:
            log.exception("cgroup %s for process %d could not be made", name, pid)
            return None
