"""Whose `X-Forwarded-For` to believe: the one rule both planes' uvicorn follow.

uvicorn trusts the header from 127.0.0.1 unless told otherwise, so any local
client (or anything a loopback proxy passes through) could name any address as
its own: aim the failed-authentication limit at someone else, or escape it by
changing the header on every request. Here the header counts only when the peer
is a proxy named in MODELHUB_TRUSTED_PROXIES; by default nobody is.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def proxy_options(trusted: Sequence[str]) -> dict[str, Any]:
    """Keyword arguments for `uvicorn.Config`/`uvicorn.run` that trust exactly `trusted`."""
    if not trusted:
        return {"proxy_headers": False, "forwarded_allow_ips": ""}
    return {"proxy_headers": True, "forwarded_allow_ips": list(trusted)}
