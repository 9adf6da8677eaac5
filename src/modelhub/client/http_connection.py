"""The connection every part of `modelhub.Client` shares: one pooled httpx client."""

from __future__ import annotations

from typing import Any, Self

import httpx
from pydantic_core import to_jsonable_python

from modelhub.client.credentials import DEFAULT_URL, resolve_token
from modelhub.client.errors import raise_for_error
from modelhub.errors import Unavailable
from modelhub.settings import Settings


class HttpConnection:
    """Talk to a running modelhub server.

    `transport` lets tests and embedders inject an httpx transport (an ASGI app, a
    mock network); by default it is a pooled HTTP connection.
    """

    def __init__(
        self,
        url: str | None = None,
        token: str | None = None,
        timeout: float = 300.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        if url is None or token is None:
            # Unset: the same places the CLI looks (MODELHUB_URL, MODELHUB_TOKEN, home).
            settings = Settings()
            url = url or settings.url or DEFAULT_URL
            token = token or resolve_token(settings)
        headers = {"authorization": f"Bearer {token}"} if token else {}
        self.url = url.rstrip("/")
        self._http = httpx.Client(
            base_url=self.url, headers=headers, timeout=timeout, transport=transport
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def _request(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.TransportError as exc:
            raise Unavailable(f"cannot reach modelhub at {self.url}: {exc}") from exc
        raise_for_error(response)
        return response.json()


def request_body(request: object, *leave_out: str) -> dict[str, Any]:
    """A service request model as the API's JSON body: unset (None) fields left to its defaults."""
    fields: dict[str, Any] = to_jsonable_python(request)
    return {k: v for k, v in fields.items() if v is not None and k not in leave_out}
