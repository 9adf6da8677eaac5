"""The servers sharing one database: each registers itself, heartbeats, and is listed.

A server registers at start (name, the address others reach it at, capacity, PID)
and renews its row every `host_heartbeat_seconds`; a row older than
`host_dead_seconds` is a dead host. After each heartbeat the listeners run (the
deployment service re-places the deployments of dead hosts and serves what is
placed here). On SQLite there is one server: a second one is refused, changing
nothing, unless the first one's process is gone (a kill -9 leaves a fresh row).
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from modelhub.domain.auth import Action, Caller
from modelhub.domain.hosts import Host
from modelhub.services.auth import AuthService
from modelhub.settings import Settings
from modelhub.stores.metadata.base import MetadataStore

log = logging.getLogger(__name__)

Listener = Callable[[list[Host]], None]


def _now() -> datetime:
    return datetime.now(UTC)


def _pid_running(pid: int) -> bool:
    """Whether process `pid` runs here; a zombie (killed, not yet reaped) does not."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            if stat.read().rsplit(")", 1)[-1].split()[0] in ("Z", "X"):
                return False
    except OSError:
        pass  # no /proc (not Linux), or gone: ask the kernel
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class HostService:
    def __init__(
        self,
        settings: Settings,
        metadata: MetadataStore,
        auth: AuthService,
        capacity: Callable[[], tuple[float, int]],
        clock: Callable[[], datetime] = _now,
    ) -> None:
        self.settings = settings
        self.metadata = metadata
        self.auth = auth
        self.capacity = capacity
        self.clock = clock
        self.name = settings.host_name or f"{socket.gethostname()}:{settings.port}"
        bound = settings.host
        self.address = settings.host_address or (
            socket.gethostname() if bound in ("0.0.0.0", "::") else bound
        )
        self.dead_after = timedelta(seconds=settings.host_dead_seconds)
        self.single_server = metadata.url.startswith("sqlite")
        self.registered: Host | None = None
        self._listeners: list[Listener] = []
        self._known: list[Host] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- this server ----------------------------------------------------------------

    def register(self) -> Host:
        """Record this server in the hosts table (again after a restart).

        Raises Conflict, changing nothing, when the database is SQLite and another
        server runs on it."""
        now = self.clock()
        exclusive_after = None
        if self.single_server:
            exclusive_after = now - self.dead_after
            for other in self.metadata.list_hosts():
                # SQLite is one machine: a row whose process is gone is a killed server.
                mine = other.name == self.name and other.pid == os.getpid()
                if not mine and other.stopped_at is None and not _pid_running(other.pid):
                    self.metadata.host_stopped(other.name, now)
        cpus, memory = self.capacity()
        host = Host(
            name=self.name,
            address=self.address,
            port=self.settings.port,
            pid=os.getpid(),
            cpus=cpus,
            memory_bytes=memory,
            started_at=now,
            heartbeat_at=now,
        )
        self.registered = self.metadata.register_host(host, exclusive_after)
        self._known = self.metadata.list_hosts()
        return self.registered

    def on_heartbeat(self, listener: Listener) -> None:
        """Call `listener(hosts)` after every heartbeat, on the heartbeat thread."""
        self._listeners.append(listener)

    def start(self) -> None:
        """Register (unless done already) and heartbeat until `stop`."""
        if self.registered is None:
            self.register()
        self._stop.clear()
        self._thread = threading.Thread(target=self._beat, name="modelhub-hosts", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the heartbeat and mark this host stopped: its deployments move at once."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None
        if self.registered is not None:
            with contextlib.suppress(Exception):  # a database away at shutdown: it lapses
                self.metadata.host_stopped(self.name, self.clock())
            self.registered = None

    def beat(self) -> list[Host]:
        """One heartbeat: renew this host's row (registering again if it was lost), then
        run the listeners on the hosts as they stand. Returns them."""
        if not self.metadata.host_heartbeat(self.name, self.clock()):
            log.warning("host %s: its row was gone or stopped; registering again", self.name)
            self.register()
        hosts = self._judged(self.metadata.list_hosts())
        self._known = hosts
        for listener in self._listeners:
            try:
                listener(hosts)
            except Exception:
                log.exception("host heartbeat listener failed")
        return hosts

    def _beat(self) -> None:
        while not self._stop.wait(self.settings.host_heartbeat_seconds):
            try:
                self.beat()
            except Exception:  # the database away (restarting): try again next beat
                log.exception("host heartbeat failed")

    # -- every server -----------------------------------------------------------------

    def _judged(self, hosts: list[Host]) -> list[Host]:
        now = self.clock()
        return [h.model_copy(update={"alive": h.is_alive(now, self.dead_after)}) for h in hosts]

    def list_hosts(self, caller: Caller) -> list[Host]:
        """The servers sharing this database, their capacity and whether they live."""
        self.auth.authorize(caller, Action.HOSTS_READ)
        return self._judged(self.metadata.list_hosts())

    def known(self) -> list[Host]:
        """The hosts as of the last heartbeat (no query): for routing."""
        return self._known

    def live(self) -> list[Host]:
        """The live hosts, read now."""
        return [h for h in self._judged(self.metadata.list_hosts()) if h.alive]

    def others_alive(self) -> bool:
        """Whether another live server shares this database (and its artifact store)."""
        return any(h.name != self.name for h in self.live())

    def address_of(self, name: str | None) -> str | None:
        """The address of host `name` as last seen; None when unknown."""
        return next((h.address for h in self._known if h.name == name), None)
