"""The extension points' parts, built-in and installed, with each plugin's status.

Listing loads every part (so a plugin that fails to import shows as failed, with
its error); loading is what `modelhub.plugins.Registry` does anyway on first use,
so listing changes nothing a later request would not.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from modelhub.domain.auth import Action, Caller
from modelhub.domain.plugins import Plugin, PluginState

if TYPE_CHECKING:
    from modelhub.plugins import Registry
    from modelhub.services.auth import AuthService


def registries() -> list[Registry[Any]]:
    """The five extension points, in the order `plugins list` shows them."""
    from modelhub.inspect.files import INSPECTORS
    from modelhub.serving.runtimes import RUNTIMES
    from modelhub.stores.artifacts.factory import ARTIFACT_STORES
    from modelhub.training.executor import EXECUTORS
    from modelhub.training.trainers import REGISTRY as TRAINERS

    return [RUNTIMES, TRAINERS, EXECUTORS, INSPECTORS, ARTIFACT_STORES]


class PluginService:
    def __init__(self, auth: AuthService) -> None:
        self.auth = auth

    def list_plugins(self, caller: Caller) -> list[Plugin]:
        """Every runtime, trainer, executor, inspector and artifact store, built-in
        ones first in each group, then installed plugins (failed and refused ones too)."""
        self.auth.authorize(caller, Action.PLUGINS_READ)
        return [
            Plugin(
                name=info.name,
                group=info.group,
                package=info.package,
                version=info.version,
                builtin=info.builtin,
                adds=info.adds,
                status=PluginState(info.status.value),
                error=info.error,
            )
            for registry in registries()
            for info in registry.describe()
        ]
