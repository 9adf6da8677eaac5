"""Sending one alert notification to one webhook: signed, retried with back-off,
every attempt recorded.

A 2xx answer is delivered. A connection error, a timeout, a 5xx, 408 or 429 is
retried after `backoff * 2^(attempt-1)` seconds, up to `attempts` tries; any
other 4xx is the receiver refusing the payload, so it fails at once. Redirects are
not followed (a webhook must not be able to point the server elsewhere).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx

from modelhub.domain.alerts import Alert
from modelhub.monitoring.alert_payload import (
    SIGNATURE_HEADER,
    alertmanager_payload,
    encode,
    signature,
)
from modelhub.stores.metadata.base import MetadataStore

RETRIED_STATUSES = frozenset({408, 429})
MAX_ERROR = 500


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 5
    backoff_seconds: float = 1.0
    timeout_seconds: float = 5.0

    def wait(self, attempt: int) -> float:
        """Seconds to wait after failed attempt number `attempt` (1-based)."""
        return float(self.backoff_seconds * 2 ** (attempt - 1))


def shown_url(url: str) -> str:
    """The URL without its query (which may carry a receiver's token), for subjects."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}{parts.path}"[:180]


class WebhookSender:
    def __init__(
        self,
        metadata: MetadataStore,
        policy: RetryPolicy,
        secret: str | None,
        external_url: str,
        sleep: Callable[[float], object] = time.sleep,
        stopped: Callable[[], bool] = lambda: False,
    ) -> None:
        self.metadata = metadata
        self.policy = policy
        self.secret = secret
        self.external_url = external_url
        self.sleep = sleep
        self.stopped = stopped  # the server is stopping: no more retries
        self._client = httpx.Client(timeout=policy.timeout_seconds, follow_redirects=False)

    def close(self) -> None:
        self._client.close()

    def send(self, alert: Alert, url: str, receiver: str) -> tuple[bool, str | None]:
        """Deliver `alert`'s current state to `url`; (delivered, last error)."""
        payload = alertmanager_payload(alert, receiver=receiver, external_url=self.external_url)
        body = encode(payload)
        headers = {"Content-Type": "application/json", "User-Agent": "modelhub-alerts"}
        if self.secret:
            headers[SIGNATURE_HEADER] = signature(body, self.secret)
        error: str | None = None
        for attempt in range(1, self.policy.attempts + 1):
            code: int | None = None
            try:
                answer = self._client.post(url, content=body, headers=headers)
                code = answer.status_code
                error = None if 200 <= code < 300 else f"HTTP {code}"
            except (httpx.HTTPError, httpx.InvalidURL) as exc:
                error = f"{type(exc).__name__}: {exc}"[:MAX_ERROR]
            last = attempt == self.policy.attempts
            retryable = code is None or code >= 500 or code in RETRIED_STATUSES
            outcome = "ok" if error is None else ("retry" if retryable and not last else "failed")
            self.metadata.record_delivery(
                alert.id, url, alert.state, attempt, outcome, status_code=code, error=error
            )
            if outcome != "retry":
                return outcome == "ok", error
            self.sleep(self.policy.wait(attempt))
            if self.stopped():
                break
        return False, error
