"""What the metadata store keeps of the servers sharing it, and where deployments run."""

from __future__ import annotations

import abc
from datetime import datetime

from modelhub.domain.hosts import Host


class HostStore(abc.ABC):
    @abc.abstractmethod
    def register_host(self, host: Host, exclusive_after: datetime | None = None) -> Host:
        """Record `host` (a restart under the same name takes its row over).

        With `exclusive_after`, raise Conflict, changing nothing, when another host
        not stopped has a heartbeat at or after that time: the check and the write
        are one transaction, so of two servers starting at once one is refused."""

    @abc.abstractmethod
    def host_heartbeat(self, name: str, at: datetime) -> bool:
        """Note that `name` lives at `at`; False when its row is gone or stopped."""

    @abc.abstractmethod
    def host_stopped(self, name: str, at: datetime) -> None:
        """`name` stopped cleanly at `at` (its deployments may move at once)."""

    @abc.abstractmethod
    def list_hosts(self) -> list[Host]:
        """Every host on record, by name, each with the number of live deployments
        placed on it (alive is left False: the service judges it)."""

    @abc.abstractmethod
    def place_deployment(self, name: str, host: str, expected: str | None) -> bool:
        """Place deployment `name` on `host` while it is still placed on `expected`
        (a compare-and-set: of two servers moving it, one wins); its replica health
        on record is cleared, and its endpoint too when it leaves another host.
        Whether this call moved it."""
