"""Scheduler throughput and overhead: 200 tiny runs submitted at once, at most 8 running.

200 pipelines (tabular_classifier, 100 rows, 1 epoch, resources cpus 0.25 and
memory 512MiB: a worker that has imported torch and built an optimizer holds
about 300 MiB resident, so 256MiB kills every run) are created, then one run of
each is started in a tight loop. The scheduler runs in the bench process (as in
`modelhub server`) with `train_cpus=2` and `train_max_running=8`, so 8 runs fit
by cpu slots and by the run limit; one warm worker (the default). Every run is its
own worker process importing torch.

Checked: every run ends completed (statuses counted: none lost, none failed), and
concurrency never goes above 8, measured three ways: the scheduler's active set
after each tick, overlapping worker-process lifetimes, and overlapping
running -> finishing (or failed, pending) intervals of the run events in the store.

Overhead per run, the goal's figure: the slot time lost while runs were waiting,
divided by the runs. A slot is busy from the moment the executor is asked to
start a run's worker (`Executor.start`) until that worker process exits (seen
through a pidfd, not through the scheduler's poll). While runs are queued, every
second a slot is not busy is overhead: noticing the exit (the executor wakes it),
handing the run over (it becomes `finishing`; its model version registers on the
finisher thread, off the slot), and launching the next (claiming it in the store,
preparing its folder and job file, starting or waking a worker). Not counted: the
worker's own time (interpreter, torch import, training, exit), reported as
`worker_median_s`, and the tail when nothing waits. `hand_over_median_ms` is the
median, over the hand-overs while runs waited, of the idle time from one worker's
exit to the next launch. `register_median_ms` is the reference measured in the same
run: what each hand-over also cost while registering happened on the slot (before
the `finishing` state, about 130 ms per run in all).
`makespan_overhead_per_run_ms` is a second view: (actual makespan minus the
makespan of the same measured worker durations packed into 8 slots with no gaps) /
runs, about the first figure divided by the 8 slots. `tick_cpu_per_run_ms` is the
CPU time of the scheduler thread inside `Scheduler.tick`, divided by the runs.
`breakdown_median_ms` splits a hand-over into its parts. All of it comes from
bench-only wrappers around `tick`, `queue`, `launch`, the finisher's
`worker_exited` and `on_result`, and `Executor.start`; nothing in modelhub is
changed.

Goal: idle slot time under 50 ms per run.

    python bench/bench_scheduler.py [--runs 200] [--memory 512MiB] [--quick]
"""

from __future__ import annotations

import argparse
import itertools
import os
import select
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from benchlib import emit, isolate_from_user_env, log, median, rounded
from modelhub.domain.runs import ACTIVE, FINAL, QueuedRun, Run, RunStatus
from modelhub.services import Services, build_services
from modelhub.settings import Settings
from modelhub.training.executor import Attempt, AttemptHandle
from modelhub.training.scheduler import Active, Scheduler
from trainlib import CALLER, pipeline_yaml, wait_warm_worker, write_blobs_csv

GOAL_MS = 50.0
ROWS = 100
SLOTS = 8
CPUS = 2.0
RUN_CPUS = 0.25


@dataclass
class Probe:
    """Bench-only instruments on one scheduler: tick CPU, launches, worker exits."""

    scheduler: Scheduler
    tick_cpu_s: float = 0.0
    ticks: int = 0
    max_active: int = 0
    launched: dict[tuple[int, int], float] = field(default_factory=dict)
    exited: dict[tuple[int, int], float] = field(default_factory=dict)
    finishing: dict[int, tuple[float, float]] = field(default_factory=dict)
    registering: list[float] = field(default_factory=list)
    launching: dict[int, tuple[float, float]] = field(default_factory=dict)
    listing: list[float] = field(default_factory=list)
    _fds: dict[int, tuple[int, int]] = field(default_factory=dict)
    _poller: select.poll = field(default_factory=select.poll)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _stop: threading.Event = field(default_factory=threading.Event)

    def install(self) -> None:
        scheduler = self.scheduler
        tick, start = scheduler.tick, scheduler.executor.start
        finisher = scheduler.finisher
        finish, register = finisher.worker_exited, finisher.on_result
        launch, queue = scheduler.launch, scheduler.queue

        def timed_tick() -> None:
            before = time.thread_time()
            try:
                tick()
            finally:
                self.tick_cpu_s += time.thread_time() - before
                self.ticks += 1
                self.max_active = max(self.max_active, len(self.scheduler.active))

        def watched_start(attempt: Attempt) -> AttemptHandle:
            key = (attempt.run_id, attempt.number)
            self.launched[key] = time.time()
            handle = start(attempt)
            try:
                fd = os.pidfd_open(handle.pid)
            except ProcessLookupError:  # already ended and reaped
                self.exited[key] = time.time()
                return handle
            with self._lock:
                self._fds[fd] = key
                self._poller.register(fd, select.POLLIN)
            return handle

        def timed_finish(active: Active, code: int) -> None:
            began = time.time()
            with self._lock:  # the process has ended: the pidfd thread may not have run yet
                self.note_exit((active.run.id, active.run.attempts), began)
            finish(active, code)
            self.finishing[active.run.id] = (began, time.time())

        def timed_register(run: Run, output: Path, metrics: dict[str, float]) -> int:
            began = time.time()
            version = register(run, output, metrics)
            self.registering.append(time.time() - began)
            return version

        def timed_launch(run: QueuedRun) -> None:
            began = time.time()
            launch(run)
            self.launching[run.id] = (began, time.time())

        def timed_queue() -> list[QueuedRun]:
            began = time.time()
            queued = queue()
            if queued:  # an empty queue lists in no time; it would hide the real cost
                self.listing.append(time.time() - began)
            return queued

        scheduler.tick = timed_tick  # type: ignore[method-assign]
        scheduler.queue = timed_queue  # type: ignore[method-assign]
        scheduler.executor.start = watched_start  # type: ignore[method-assign]
        finisher.worker_exited = timed_finish  # type: ignore[method-assign]
        finisher.on_result = timed_register
        scheduler.launch = timed_launch  # type: ignore[method-assign]
        threading.Thread(target=self._watch_exits, daemon=True).start()

    def note_exit(self, key: tuple[int, int], at: float) -> None:
        """The earliest sign of an exit wins: a busy machine can delay either thread."""
        self.exited[key] = min(at, self.exited.get(key, at))

    def _watch_exits(self) -> None:
        while not self._stop.is_set():
            for fd, _ in self._poller.poll(50):
                now = time.time()
                with self._lock:
                    self.note_exit(self._fds.pop(fd), now)
                    self._poller.unregister(fd)
                os.close(fd)

    def close(self) -> None:
        self._stop.set()


def max_overlap(intervals: list[tuple[float, float]]) -> int:
    edges = sorted([(a, 1) for a, _ in intervals] + [(b, -1) for _, b in intervals])
    level = peak = 0
    for _, step in edges:  # at a tie the end (-1) sorts first
        level += step
        peak = max(peak, level)
    return peak


def idle_slot_seconds(submitted: dict[int, float], probe: Probe, slots: int) -> tuple[float, float]:
    """(slot seconds idle while runs waited, seconds during which any run waited)."""
    edges: list[tuple[float, int, int]] = []  # (time, d_waiting, d_busy)
    edges += [(t, 1, 0) for t in submitted.values()]
    for (_, number), t in probe.launched.items():
        edges.append((t, -1 if number == 1 else 0, 1))
    edges += [(t, 0, -1) for t in probe.exited.values()]
    edges.sort()
    waiting = busy = 0
    idle = waited = 0.0
    for (t, dw, db), (t_next, _, _) in itertools.pairwise(edges):
        waiting += dw
        busy += db
        if waiting > 0:
            waited += t_next - t
            idle += max(0, min(slots - busy, waiting)) * (t_next - t)
    return idle, waited


def hand_over_gaps(submitted: dict[int, float], probe: Probe) -> list[float]:
    """Seconds from each worker exit, while runs waited, to the launch that refilled a slot."""
    edges: list[tuple[float, int, str]] = [(t, 1, "submit") for t in submitted.values()]
    edges += [(t, -1 if n == 1 else 0, "launch") for (_, n), t in probe.launched.items()]
    edges += [(t, 0, "exit") for t in probe.exited.values()]
    edges.sort()
    waiting = 0
    freed: list[float] = []
    gaps: list[float] = []
    for t, d_waiting, kind in edges:
        if kind == "exit" and waiting > 0:
            freed.append(t)
        elif kind == "launch" and freed:
            gaps.append(t - freed.pop(0))
        waiting += d_waiting
    return gaps


def packed_makespan(submitted: dict[int, float], probe: Probe, slots: int) -> tuple[float, float]:
    """(actual, ideal) makespan from the first submission; ideal packs the same
    worker durations, in launch order, into `slots` with no gap between runs."""
    first = min(submitted.values())
    order = sorted(probe.launched.items(), key=lambda item: item[1])
    free = [first] * slots
    for key, _ in order:
        slot = min(range(slots), key=free.__getitem__)
        begin = max(free[slot], submitted[key[0]])
        free[slot] = begin + probe.exited[key] - probe.launched[key]
    return max(probe.exited.values()) - first, max(free) - first


def run_event_intervals(services: Services, run_ids: list[int]) -> list[tuple[float, float]]:
    final_values = {status.value for status in FINAL}
    intervals = []
    for run_id in run_ids:
        began = None
        for event in services.training.events(CALLER, run_id):
            status = event.data.get("status") if event.kind == "status" else None
            if status == RunStatus.RUNNING.value:
                began = event.at.timestamp()
            ended = final_values | {RunStatus.PENDING.value, RunStatus.FINISHING.value}
            if status in ended and began is not None:
                intervals.append((began, event.at.timestamp()))
                began = None
    return intervals


def wait_all(
    services: Services, run_ids: set[int], timeout: float, progress: Callable[[], str]
) -> None:
    deadline = time.monotonic() + timeout
    last_log = 0.0
    while True:
        active = {
            r.id for r in services.training.list_runs(CALLER, limit=1000) if r.status in ACTIVE
        }
        active &= run_ids
        if not active:
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"{len(active)} runs still active after {timeout:.0f} s")
        if time.monotonic() - last_log > 15:
            last_log = time.monotonic()
            log(f"{len(run_ids) - len(active)}/{len(run_ids)} finished; {progress()}")
        time.sleep(0.5)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--memory", default="512MiB", help="each run's resources.memory")
    parser.add_argument("--warm-workers", type=int, default=1)
    parser.add_argument("--timeout", type=float, default=900.0)
    parser.add_argument("--quick", action="store_true", help="20 runs")
    args = parser.parse_args()
    runs = 20 if args.quick else args.runs
    isolate_from_user_env()
    with tempfile.TemporaryDirectory(prefix="bench-scheduler-") as tmp:
        home = Path(tmp) / "home"
        settings = Settings(
            home=home,
            train_cpus=CPUS,
            train_max_running=SLOTS,
            train_warm_workers=args.warm_workers,
        )
        services = build_services(settings)
        data = Path(tmp) / "blobs.csv"
        write_blobs_csv(data, ROWS)
        services.datasets.register(CALLER, data, "blobs")
        names = [f"tiny-{i:03d}" for i in range(runs)]
        for name in names:
            spec = pipeline_yaml(name, "blobs", f"{name}-clf", cpus=RUN_CPUS, memory=args.memory)
            services.training.create_pipeline(CALLER, spec)
        log(f"{runs} pipelines created")
        scheduler = services.training.build_scheduler()
        probe = Probe(scheduler)
        probe.install()
        scheduler.start()  # what TrainingService.start_scheduler does, with the probe in
        if args.warm_workers:
            wait_warm_worker(os.getpid())
        try:
            submitted: dict[int, float] = {}
            began = time.time()
            for name in names:
                run = services.training.start(CALLER, name)
                submitted[run.id] = time.time()
            submit_s = time.time() - began
            log(f"{runs} runs submitted in {submit_s:.2f}s")
            wait_all(
                services,
                set(submitted),
                args.timeout,
                lambda: f"{len(probe.exited)} workers exited, max active {probe.max_active}",
            )
            wall_s = time.time() - began
        finally:
            scheduler.stop()
            time.sleep(0.2)
            probe.close()
        run_ids = list(submitted)
        finals = {
            run.id: run
            for run in services.training.list_runs(CALLER, limit=1000)
            if run.id in submitted
        }
        statuses = Counter(run.status.value for run in finals.values())
        failures = Counter(
            run.error for run in finals.values() if run.status is not RunStatus.COMPLETED
        )
        for error, count in failures.most_common(3):
            log(f"{count} runs: {error}")
        event_peak = max_overlap(run_event_intervals(services, run_ids))
        services.close()

    workers = [(probe.launched[k], probe.exited[k]) for k in probe.launched if k in probe.exited]
    idle_s, waited_s = idle_slot_seconds(submitted, probe, SLOTS)
    actual, ideal = packed_makespan(submitted, probe, SLOTS)
    overhead_ms = 1000 * idle_s / runs
    gaps = hand_over_gaps(submitted, probe)
    worker_peak = max_overlap(workers)
    last_exit = {run_id: t for (run_id, _), t in sorted(probe.exited.items())}
    noticed = [probe.finishing[r][0] - t for r, t in last_exit.items() if r in probe.finishing]
    completed = statuses.get(RunStatus.COMPLETED.value, 0)
    all_done = completed == runs and len(finals) == runs
    peak_ok = max(probe.max_active, worker_peak, event_peak) <= SLOTS
    emit(
        {
            "bench": "scheduler",
            "mode": "inproc",
            "runs": runs,
            "statuses": dict(statuses),
            "lost": runs - len(finals),
            "all_completed": all_done,
            "max_running": SLOTS,
            "max_active_seen": probe.max_active,
            "max_concurrent_workers": worker_peak,
            "max_concurrent_run_events": event_peak,
            "overhead_definition": "slot-seconds idle while runs waited / runs; a slot is "
            "busy from Executor.start to the worker's exit",
            "overhead_per_run_ms": rounded(overhead_ms, 1),
            "goal_ms": GOAL_MS,
            "goal_met": all_done and peak_ok and overhead_ms < GOAL_MS,
            "hand_over_median_ms": rounded(1000 * median(gaps), 1),
            "hand_overs": len(gaps),
            "register_median_ms": rounded(1000 * median(probe.registering), 1),
            "makespan_overhead_per_run_ms": rounded(1000 * (actual - ideal) / runs, 1),
            "tick_cpu_per_run_ms": rounded(1000 * probe.tick_cpu_s / runs, 2),
            "breakdown_median_ms": {
                "exit_to_finish": rounded(1000 * median(noticed), 1),
                "hand_over": rounded(
                    1000 * median([b - a for a, b in probe.finishing.values()]), 1
                ),
                "queue_listing": rounded(1000 * median(probe.listing), 1),  # non-empty
                "launch": rounded(1000 * median([b - a for a, b in probe.launching.values()]), 1),
            },
            "ticks": probe.ticks,
            "wall_s": rounded(wall_s, 1),
            "submit_s": rounded(submit_s, 2),
            "waited_s": rounded(waited_s, 1),
            "worker_median_s": rounded(median([b - a for a, b in workers])),
            "runs_per_s": rounded(runs / wall_s, 2),
            "rows": ROWS,
            "cpus": CPUS,
            "run_cpus": RUN_CPUS,
            "run_memory": args.memory,
            "warm_workers": args.warm_workers,
        }
    )


if __name__ == "__main__":
    main()
