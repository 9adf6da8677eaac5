"""The training scheduler: admits queued runs, watches them, retries and finishes them.

One loop (`Scheduler.tick`) and one finisher thread, all state that matters in the
metadata store, so a restarted scheduler picks up where the last one stopped:

- capacity (`capacity`): what this host offers (cpus, memory, GPUs found without
  importing torch) and what the running workers leave free;
- admission and backoff (`admission`): queued runs in order of effective priority
  (level plus aging, FIFO within a level), started while their declared cpus,
  memory and gpus fit and fewer than `max_running` workers run; a crashed run
  waits out an exponential backoff as `pending`;
- watching (`watching`): the worker's metrics, progress and checkpoint files in the
  run folder become metrics, progress, ETA, events and alerts (the rules of
  `modelhub.domain.alert_rules`) in the store; the memory limit is enforced;
- checkpoint upload (`checkpoints`): checkpoints are copied into the artifact store,
  and back into a run folder that lost them;
- finishing (`finishing`): a worker that exited with a result frees its slot at
  once and its run is `finishing` while the finisher registers the result
  (`on_result`); a crash is retried, resuming from the newest checkpoint; a
  trainer's own error fails the run with its reason.

Ownership is a lease. Each scheduler start has its own owner id (host, pid and a
random instance id, so a restarted server on the same host with a recycled or
not-yet-reaped pid is still someone else). Claiming a run sets its owner and a lease
expiry; every `heartbeat_seconds` the scheduler extends the lease of the runs it
holds (running and finishing) and sweeps for runs whose lease ran out (`recover`):
running ones it queues again with a compare-and-set, so of several servers on one
database exactly one takes each; finishing ones it finishes, registering their
result once. Workers die with the scheduler's process (PDEATHSIG), so after a kill
-9 of the server nothing trains unseen, and its runs resume from their newest
checkpoint within `lease_seconds`, whatever the timing of the restart. A scheduler
that finds it lost a lease (its heartbeat stalled past the expiry) kills its worker
and leaves the run to its new owner; every move it makes on a run requires that it
still holds it (`moves`).
"""

from modelhub.training.scheduler.capacity import Capacity, count_gpus, host_capacity
from modelhub.training.scheduler.finishing import RegisteredHook, ResultHook
from modelhub.training.scheduler.loop import PrepareHook, Scheduler, SchedulerConfig
from modelhub.training.scheduler.watching import Active

__all__ = [
    "Active",
    "Capacity",
    "PrepareHook",
    "RegisteredHook",
    "ResultHook",
    "Scheduler",
    "SchedulerConfig",
    "count_gpus",
    "host_capacity",
]
