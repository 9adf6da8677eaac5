"""What every part of `LocalClient` shares: the services over the local home, and who calls."""

from __future__ import annotations

from typing import Self

from modelhub.domain.auth import Caller, Role
from modelhub.services import Services, build_services
from modelhub.settings import Settings


class LocalHome:
    """The services built on `settings`' home, called as `actor`, with no server between."""

    def __init__(self, settings: Settings, actor: str) -> None:
        self.services: Services = build_services(settings)
        # Local mode trusts whoever can read the home folder: they could open the
        # database directly anyway. They act as an admin, under their own name.
        self.caller = Caller(name=actor, role=Role.ADMIN)
        self.registry = self.services.registry_for(self.caller)

    def close(self) -> None:
        self.services.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()
