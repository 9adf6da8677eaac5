"""The server's error JSON turned back into the same ModelhubError it was raised as."""

from __future__ import annotations

import httpx

from modelhub.errors import ModelhubError, error_from_dict


def raise_for_error(response: httpx.Response) -> None:
    if response.status_code < 400:
        return
    try:
        payload = response.json()["error"]
    except (ValueError, KeyError, TypeError):
        raise ModelhubError(
            f"server answered {response.status_code}: {response.text[:200]}"
        ) from None
    raise error_from_dict(payload)
