"""The address of a Ray cluster, as the settings give it: `auto`, `ray://host:port`, `host:port`.

Parsed once (when the settings are read), so that a typo is refused at start-up
with the forms that work, and the executor knows where to probe before it hands
the address to `ray.init`, which on an address where nothing answers waits for
minutes.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from typing import Literal

from modelhub.errors import InvalidInput

CLIENT_SCHEME = "ray://"
DEFAULT_CLIENT_PORT = 10001
DEFAULT_GCS_PORT = 6379
_HOST = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9.-]{0,251}[A-Za-z0-9])?$")
FORMS = "auto, ray://head:10001 (Ray Client) or head:6379 (a node of the cluster)"


@dataclass(frozen=True)
class RayAddress:
    """`kind` auto: the cluster this host belongs to (Ray finds it); client: Ray Client
    at host:port, usable from any host; gcs: the cluster's GCS, from one of its nodes."""

    kind: Literal["auto", "client", "gcs"]
    host: str | None = None
    port: int | None = None

    @property
    def text(self) -> str:
        """The address as `ray.init` takes it."""
        if self.kind == "auto":
            return "auto"
        host = f"[{self.host}]" if self.host and ":" in self.host else self.host
        prefix = CLIENT_SCHEME if self.kind == "client" else ""
        return f"{prefix}{host}:{self.port}"


def parse_ray_address(text: str) -> RayAddress:
    """The address `text` names; InvalidInput naming the accepted forms otherwise."""
    value = text.strip()
    if value == "auto":
        return RayAddress("auto")
    kind: Literal["client", "gcs"] = "gcs"
    rest = value
    if value.startswith(CLIENT_SCHEME):
        kind, rest = "client", value.removeprefix(CLIENT_SCHEME)
    host, port = _host_and_port(rest)
    if host is None:
        raise InvalidInput(
            f"{text!r} is not a Ray address; use {FORMS}", {"field": "train_ray_address"}
        )
    if port is None:
        port = DEFAULT_CLIENT_PORT if kind == "client" else DEFAULT_GCS_PORT
    if not 1 <= port <= 65535:
        raise InvalidInput(f"{text!r}: port {port} is not 1-65535", {"field": "train_ray_address"})
    return RayAddress(kind, host, port)


def _host_and_port(rest: str) -> tuple[str | None, int | None]:
    """(host, port) of `host`, `host:port`, `[v6]` or `[v6]:port`; host None when malformed."""
    if rest.startswith("["):
        close = rest.find("]")
        if close < 0:
            return None, None
        host, after = rest[1:close], rest[close + 1 :]
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            return None, None
        if after and not after.startswith(":"):
            return None, None
        port_text = after[1:] if after else None
    else:
        host, _, port_text = rest.partition(":")
        port_text = port_text if ":" in rest else None
        if not _HOST.match(host):
            return None, None
    if port_text is None:
        return host, None
    if not port_text.isdigit() or len(port_text) > 5:
        return None, None
    return host, int(port_text)
