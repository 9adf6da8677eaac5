"""Where deployments run when several servers share one database.

Each deployment is placed on one host (recorded on the deployment); that host's
replica supervisor alone serves it. A new deployment goes to the live host with the
most free capacity. After every heartbeat each server moves the live deployments of
dead hosts (and any not placed yet) to a live host, each move a compare-and-set so
that of two servers moving one deployment one wins, and then serves what is placed
on it: it launches what it does not run yet and retires what it runs that is no
longer placed on it, or no longer live.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from modelhub.domain.deployments import LIVE, Deployment
from modelhub.domain.hosts import Host, Placed, choose_host
from modelhub.errors import NotFound

if TYPE_CHECKING:
    from modelhub.services.hosts import HostService
    from modelhub.services.rollouts import Rollouts
    from modelhub.stores.metadata.base import MetadataStore

log = logging.getLogger(__name__)


def _placed(deployments: list[Deployment]) -> list[Placed]:
    return [Placed(d.host, d.resources, d.replicas) for d in deployments]


class Placement:
    def __init__(self, metadata: MetadataStore, rollouts: Rollouts, hosts: HostService) -> None:
        self.metadata = metadata
        self.rollouts = rollouts
        self.hosts = hosts

    @property
    def me(self) -> str:
        return self.hosts.name

    def _live_deployments(self) -> list[Deployment]:
        return [d for d in self.metadata.list_deployments() if d.status in LIVE]

    def choose(self, resources: dict[str, object], replicas: int) -> str | None:
        """The host a new deployment goes to: the live one with most room, this one
        when it is serving and none is listed yet; None in local mode with none live."""
        live = self.hosts.live()
        if not live and self.rollouts.serving:
            return self.me
        placed = _placed(self._live_deployments())
        return choose_host(live, placed, Placed(None, dict(resources), replicas))

    def is_mine(self, name: str) -> bool:
        """Whether this server serves deployment `name` (placed here, or not placed)."""
        try:
            host = self.metadata.get_deployment(name).host
        except NotFound:
            return True  # the job itself says what is missing
        return host is None or host == self.me

    def claim_at_start(self) -> list[Deployment]:
        """At start: take the live deployments placed nowhere, or (on SQLite, one server)
        anywhere else; the live deployments placed here, to launch."""
        mine = []
        for deployment in self._live_deployments():
            host = deployment.host
            if host != self.me and (host is None or self.hosts.single_server):
                if not self.metadata.place_deployment(deployment.name, self.me, host):
                    continue
                deployment = self.metadata.get_deployment(deployment.name)
            if deployment.host == self.me:
                mine.append(deployment)
        return mine

    def reconcile(self, hosts: list[Host]) -> None:
        """Move the deployments of dead hosts, then serve what is placed here."""
        alive = [h for h in hosts if h.alive]
        names = {h.name for h in alive}
        live = self._live_deployments()
        placed = _placed(live)
        moved = False
        for deployment in live:
            if deployment.host in names or deployment.host == self.me:
                continue
            wanted = Placed(None, deployment.resources, deployment.replicas)
            target = choose_host(alive, placed, wanted)
            if target is None:
                continue
            moved = True  # by us, or by another server that won the move
            if self.metadata.place_deployment(deployment.name, target, deployment.host):
                log.warning(
                    "deployment %s: host %s is dead; placed on %s",
                    deployment.name,
                    deployment.host,
                    target,
                )
                placed.append(Placed(target, deployment.resources, deployment.replicas))
        supervisor = self.rollouts.supervisor
        if supervisor is None:
            return
        if moved:  # read again only when some placement changed under us
            live = self._live_deployments()
        by_name = {d.name: d for d in live if d.host == self.me}
        here = set(by_name)
        served = set(self.rollouts.served_here())
        for name in sorted(here):
            if self.rollouts.busy(name):
                continue
            record = by_name[name]
            if name not in served:
                self.rollouts.submit(name, self.rollouts.launch)
            elif (
                record.pool is None
                and record.autoscale is None
                and supervisor.size(name) != record.replicas
            ):
                self.rollouts.submit(name, self.rollouts.scale)  # scaled through another server
        for name in sorted(served):
            if name not in here and not self.rollouts.busy(name):
                log.warning("deployment %s is no longer placed here; retiring its replicas", name)
                self.rollouts.stop(name)
