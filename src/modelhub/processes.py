"""Child processes that must die with this one: forked from one thread, killed by Linux.

Training workers and serving replicas both ask for PR_SET_PDEATHSIG, so a server
killed with SIGKILL leaves no process behind.
"""

from __future__ import annotations

import ctypes
import os
import queue
import signal
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, TypeVar

T = TypeVar("T")
PR_SET_PDEATHSIG = 1


def die_with_parent(parent: int) -> None:
    """Ask Linux to SIGKILL this process when its parent goes (best effort elsewhere)."""
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):
        return
    if os.getppid() != parent:  # the parent went before prctl took effect
        os._exit(1)


class Spawner:
    """Starts every worker process from one long-lived thread.

    Linux sends a child its parent-death signal when the *thread* that forked it
    ends, not the process. Workers forked from short-lived threads would die
    with them, so all forks happen here, on a thread that lasts as long as the
    executor.
    """

    def __init__(self) -> None:
        self._jobs: queue.Queue[tuple[Callable[[], Any], Future[Any]] | None] = queue.Queue()
        self._thread = threading.Thread(target=self._serve, name="modelhub-spawner", daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while (job := self._jobs.get()) is not None:
            make, future = job
            try:
                future.set_result(make())
            except BaseException as exc:  # handed to the caller, who raises it
                future.set_exception(exc)

    def call(self, make: Callable[[], T]) -> Future[T]:
        future: Future[T] = Future()
        self._jobs.put((make, future))
        return future

    def close(self) -> None:
        self._jobs.put(None)
        self._thread.join()
