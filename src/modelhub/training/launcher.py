"""A distributed job's group of workers: `python -m modelhub.training.launcher JOB_FILE`.

The local executor starts this for a job with `distributed.workers` N > 1, in its own
session. It asks to die with the server (PR_SET_PDEATHSIG, as a worker does), hosts the
group's rendezvous store, and starts N ranks with torch.multiprocessing, each running
the training worker's job (`modelhub.training.worker.run_job`) and joining the process
group through the store.

- Everything stays on this host: the store listens on 127.0.0.1 only, at a port the
  kernel picks (no port can clash), and gloo and NCCL use the loopback interface.
  (torchrun's own stores listen on every interface whatever address they are given,
  so it is not used: see `modelhub.training.distributed.loopback_store`.)
- The ranks are this process's children in this process's group and session, so a
  kill of the session ends every rank, and each rank dies with this process.
- When one rank dies, the others are ended at once (SIGTERM, SIGKILL after
  SHUTDOWN_SECONDS) and this process exits non-zero, so no rank waits in a collective
  for a peer that is gone. Restarting is the scheduler's: its retry starts the whole
  group again from the newest checkpoint, within the run's attempts.

Exit codes are a worker's: 0 when every rank finished; FAILED (3) when a rank failed
for a reason a retry will not change and the others failed the same way or were only
ended here (SIGTERM); 1 for a crash, including a rank killed by any other signal (its
peers' failures follow from its death, whatever they say).
"""

from __future__ import annotations

import json
import os
import signal
import sys
import traceback
from pathlib import Path

from modelhub.processes import die_with_parent
from modelhub.training.distributed import LOOPBACK, exit_now, loopback_store
from modelhub.training.worker import FAILED, run_job

CRASHED = 1
SHUTDOWN_SECONDS = 2.0
LOOPBACK_INTERFACE = "lo"


def rank_main(local_rank: int, job_file: str) -> None:
    """One rank, in a process torch.multiprocessing started: the worker's job, then exit."""
    die_with_parent(int(os.environ["MODELHUB_WORKER_PARENT"]))
    os.environ["RANK"] = os.environ["LOCAL_RANK"] = str(local_rank)
    try:
        code = run_job(Path(job_file))
    except BaseException:  # a crash: its traceback in the run log, its code non-zero
        traceback.print_exc()
        code = CRASHED
    exit_now(code)


def launch(job_file: Path) -> int:
    """Run the job's ranks to their end; the exit code the scheduler reads."""
    from torch.multiprocessing.spawn import ProcessException, start_processes

    job = json.loads(job_file.read_text())
    section = job["distributed"]
    workers = int(section["workers"])
    store, port = loopback_store()  # held until every rank is done
    os.environ |= {
        "MASTER_ADDR": LOOPBACK,
        "MASTER_PORT": str(port),
        "WORLD_SIZE": str(workers),
        "LOCAL_WORLD_SIZE": str(workers),
        "MODELHUB_WORKER_PARENT": str(os.getpid()),  # the ranks die with us
        "OMP_NUM_THREADS": str(max(1, int(job.get("threads", 1)))),
    }
    os.environ.setdefault("GLOO_SOCKET_IFNAME", LOOPBACK_INTERFACE)
    os.environ.setdefault("NCCL_SOCKET_IFNAME", LOOPBACK_INTERFACE)
    print(f"launching {workers} workers ({section.get('backend', 'gloo')})", flush=True)
    group = start_processes(  # type: ignore[no-untyped-call]
        rank_main, args=(str(job_file),), nprocs=workers, join=False, start_method="spawn"
    )
    try:
        while not group.join(grace_period=SHUTDOWN_SECONDS):
            pass
    except ProcessException:
        codes = {rank: process.exitcode for rank, process in enumerate(group.processes)}
        print(f"the worker group ended: exit codes by rank {codes}", file=sys.stderr, flush=True)
        return group_exit_code(list(codes.values()))
    finally:
        del store
    return 0


def group_exit_code(codes: list[int]) -> int:
    """The group's exit code from its ranks' (see the module)."""
    failures = [code for code in codes if code != 0]
    ended_here = -signal.SIGTERM
    if FAILED in failures and all(code in (FAILED, ended_here) for code in failures):
        return FAILED
    return CRASHED if failures else 0


def main(argv: list[str]) -> int:
    parent = int(os.environ.get("MODELHUB_WORKER_PARENT", os.getppid()))
    die_with_parent(parent)
    if len(argv) != 1:
        print("usage: python -m modelhub.training.launcher JOB_FILE", file=sys.stderr)
        return 2
    return launch(Path(argv[0]))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
