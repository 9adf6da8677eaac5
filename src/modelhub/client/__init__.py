"""Python clients: `Client` over HTTP, `LocalClient` in-process; the same methods."""

from __future__ import annotations

from modelhub.client.http import Client

__all__ = ["Client"]
