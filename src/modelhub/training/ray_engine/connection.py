"""This process's connection to the Ray cluster: made once, checked quickly, never hung on.

`ray.init` on an address where nothing answers retries for minutes (twelve, with Ray
2.55, on a closed port), and a process connects to one cluster at most. So before
calling it we open a TCP connection to the address (a closed port or an unknown
host is a clear reason in milliseconds), then run `ray.init` on a thread and give
it `timeout` seconds. A failure is remembered for `timeout` seconds: a scheduler
asking every tick does not probe every tick.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from modelhub.domain.ray_address import RayAddress
from modelhub.errors import Unavailable

T = TypeVar("T")
NAMESPACE = "modelhub"
# Ray ends a driver process (exit 1) 60 s after it loses the cluster's GCS. The driver
# here is the modelhub server, which must outlive a cluster outage: it waits for the
# GCS instead, and calls that need the cluster meanwhile are bounded (`bounded`).
GCS_RECONNECT_SECONDS = str(365 * 24 * 3600)

_lock = threading.Lock()
_connected: dict[str, Any] = {"address": None, "users": 0}


def ray_missing() -> str | None:
    """Why Ray cannot be used here (not installed, or broken), or None when it can."""
    try:
        import ray  # noqa: F401
    except ImportError as exc:
        return f"Ray is not installed ({exc}); pip install 'modelhub[ray]'"
    return None


@dataclass
class RayConnection:
    address: RayAddress
    timeout: float = 10.0
    _failure: Unavailable | None = None
    _failed_at: float = 0.0
    _connecting: threading.Thread | None = None
    _error: BaseException | None = None
    _mine: bool = False
    _asking: threading.Thread | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def ensure(self) -> None:
        """Connect this process to the cluster if it is not; Unavailable with the
        reason when the cluster cannot be reached."""
        with self._lock:
            if self._mine and _connected["address"] == self.address.text:
                import ray

                if ray.is_initialized():
                    return
                self._release()
            if self._failure is not None and time.monotonic() - self._failed_at < self.timeout:
                raise self._failure
            try:
                self._connect()
            except Unavailable as failure:
                self._failure, self._failed_at = failure, time.monotonic()
                raise
            self._failure = None

    def unreachable(self, reason: str) -> Unavailable:
        return Unavailable(
            f"the Ray cluster at {self.address.text} cannot be reached: {reason}",
            {"engine": "ray", "address": self.address.text},
        )

    def _connect(self) -> None:
        if self.address.host is not None and self.address.port is not None:
            try:
                socket.create_connection(
                    (self.address.host, self.address.port), timeout=self.timeout
                ).close()
            except OSError as exc:
                raise self.unreachable(exc.strerror or str(exc)) from None
        with _lock:
            if _connected["address"] not in (None, self.address.text):
                raise self.unreachable(
                    f"this process is connected to the Ray cluster at {_connected['address']}"
                )
            if _connected["address"] is None:
                self._init_within_timeout()
                _connected["address"] = self.address.text
            _connected["users"] += 1
            self._mine = True

    def _init_within_timeout(self) -> None:
        if self._connecting is None or not self._connecting.is_alive():
            self._error = None
            self._connecting = threading.Thread(
                target=self._init, name="modelhub-ray-connect", daemon=True
            )
            self._connecting.start()
        self._connecting.join(self.timeout)
        if self._connecting.is_alive():
            raise self.unreachable(f"it did not answer within {self.timeout:g} s")
        if self._error is not None:
            raise self.unreachable(str(self._error).strip().splitlines()[0])

    def _init(self) -> None:
        import os

        os.environ.setdefault("RAY_gcs_rpc_server_reconnect_timeout_s", GCS_RECONNECT_SECONDS)
        import ray

        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # Ray's FutureWarnings are not ours to raise
                ray.init(
                    address=self.address.text,
                    namespace=NAMESPACE,
                    log_to_driver=False,
                    logging_level=logging.WARNING,
                    ignore_reinit_error=True,
                )
        except BaseException as exc:  # handed to the thread that waits for us
            self._error = exc

    def bounded(self, ask: Callable[[], T]) -> T:
        """`ask()`'s answer, or Unavailable when the cluster does not answer within the
        timeout (a GCS that went away makes Ray's calls wait for it). One question is
        in flight at a time: while an earlier one still waits, this one is not asked."""
        with self._lock:
            if self._asking is not None and self._asking.is_alive():
                raise self.unreachable("an earlier question to it is still unanswered")
            answer: dict[str, Any] = {}

            def run() -> None:
                try:
                    answer["value"] = ask()
                except BaseException as exc:  # handed to the waiting thread
                    answer["error"] = exc

            self._asking = threading.Thread(target=run, name="modelhub-ray-ask", daemon=True)
            self._asking.start()
            asking = self._asking
        asking.join(self.timeout)
        if asking.is_alive():
            raise self.unreachable(f"it did not answer within {self.timeout:g} s")
        if "error" in answer:
            raise answer["error"]
        value: T = answer["value"]
        return value

    def close(self) -> None:
        """Leave the cluster (the last user of the process's connection disconnects);
        detached actors keep running."""
        with self._lock:
            self._release()

    def _release(self) -> None:
        if not self._mine:
            return
        self._mine = False
        with _lock:
            _connected["users"] -= 1
            if _connected["users"] > 0:
                return
            _connected["address"] = None
        import ray

        ray.shutdown()
