"""modelhub: register, version, train, serve, watch and govern AI models."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    from modelhub.client import Client

__all__ = ["Client", "__version__"]


def __getattr__(name: str) -> Any:
    # Keep `import modelhub` light: the client pulls in httpx only when asked for.
    if name == "Client":
        from modelhub.client import Client

        return Client
    raise AttributeError(name)
