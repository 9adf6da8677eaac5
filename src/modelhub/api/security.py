"""Authentication and authorization for every route, declared per route.

Each route depends on exactly one `requires(action)`; a test walks the app and
fails on any route without one. Failed authentication is counted per client
address; once an address fails too often its further failures are answered 429,
but a request with a valid token is never refused for anyone's failures.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import Depends, Request
from starlette.concurrency import run_in_threadpool

from modelhub.domain.auth import Action, Caller, Role
from modelhub.errors import RateLimited, Unauthenticated
from modelhub.services import Services

ANONYMOUS = Caller(name="anonymous", role=Role.VIEWER, scopes=frozenset())
# With auth switched off (loopback experiments only) every caller acts as this.
UNAUTHENTICATED_ADMIN = Caller(name="anonymous", role=Role.ADMIN)


class FailureLimiter:
    """Counts failed authentications per client over a sliding window."""

    def __init__(self, limit: int, window_seconds: float) -> None:
        self.limit = limit
        self.window = window_seconds
        self._failures: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def _recent(self, client: str, now: float) -> deque[float]:
        times = self._failures.setdefault(client, deque())
        while times and now - times[0] > self.window:
            times.popleft()
        return times

    def retry_after(self, client: str) -> float | None:
        """Seconds until this client may try again, or None if it may now."""
        now = time.monotonic()
        with self._lock:
            times = self._recent(client, now)
            if len(times) < self.limit:
                return None
            return self.window - (now - times[0])

    def fail(self, client: str) -> None:
        now = time.monotonic()
        with self._lock:
            self._recent(client, now).append(now)
            if len(self._failures) > 10_000:  # forget idle clients, bounded memory
                for key in [k for k, v in self._failures.items() if not v][:5_000]:
                    del self._failures[key]


def bearer_token(request: Request) -> str | None:
    """The token of an `Authorization: Bearer` header; "" for another scheme, None for none."""
    header = request.headers.get("authorization")
    if header is None:
        return None
    scheme, _, credentials = header.partition(" ")
    return credentials.strip() if scheme.lower() == "bearer" else ""


def requires(action: Action) -> Callable[[Request], Awaitable[Caller]]:
    """The dependency that admits a request to a route guarded by `action`."""

    async def admit(request: Request) -> Caller:
        return admit_request(request, action, bearer_token(request))

    admit.permission = action  # type: ignore[attr-defined]
    return admit


def admit_request(request: Request, action: Action, credential: str | None) -> Caller:
    """Authenticate `credential` (a bearer token, or the dashboard's session cookie) and
    authorize `action`: the one admission both the API and the dashboard go through."""
    services: Services = request.app.state.services
    if action == Action.PUBLIC:
        return ANONYMOUS
    if not services.settings.auth:
        return UNAUTHENTICATED_ADMIN
    limiter: FailureLimiter = request.app.state.auth_limiter
    client = request.client.host if request.client else "unknown"
    try:
        caller = services.auth.authenticate(credential)
    except Unauthenticated:
        # Only failures are held back: a client that fails too often gets 429
        # for each further failure, while a valid token from the same address
        # (behind one proxy or NAT, someone else's) always goes through.
        wait = limiter.retry_after(client)
        if wait is not None:
            raise RateLimited(
                f"too many failed authentications; try again in {wait:.0f}s",
                {"retry_after": round(wait)},
            ) from None
        limiter.fail(client)
        raise
    request.state.caller = caller  # names the actor if a later check refuses
    services.auth.authorize(caller, action)
    return caller


async def record_denial(request: Request, reason: str) -> None:
    """Audit a refused request; the one place every 401 and 403 passes through."""
    services: Services = request.app.state.services
    caller: Caller | None = getattr(request.state, "caller", None)
    actor = caller.name if caller else "anonymous"
    target = f"{request.method} {request.url.path}"
    await run_in_threadpool(services.auth.record_denial, actor, target, reason)


def permission_of(dependency: Any) -> Action | None:
    return getattr(dependency, "permission", None)


Public = Annotated[Caller, Depends(requires(Action.PUBLIC))]
Reader = Annotated[Caller, Depends(requires(Action.MODELS_READ))]
Registrar = Annotated[Caller, Depends(requires(Action.MODELS_REGISTER))]
Updater = Annotated[Caller, Depends(requires(Action.MODELS_UPDATE))]
Stager = Annotated[Caller, Depends(requires(Action.MODELS_STAGE))]
Approver = Annotated[Caller, Depends(requires(Action.MODELS_APPROVE))]
Deleter = Annotated[Caller, Depends(requires(Action.MODELS_DELETE))]
Collector = Annotated[Caller, Depends(requires(Action.ARTIFACTS_GC))]
DatasetReader = Annotated[Caller, Depends(requires(Action.DATASETS_READ))]
DatasetRegistrar = Annotated[Caller, Depends(requires(Action.DATASETS_REGISTER))]
Self = Annotated[Caller, Depends(requires(Action.AUTH_SELF))]
TokenManager = Annotated[Caller, Depends(requires(Action.TOKENS_MANAGE))]
UserManager = Annotated[Caller, Depends(requires(Action.USERS_MANAGE))]
AuditReader = Annotated[Caller, Depends(requires(Action.AUDIT_READ))]
TrainingReader = Annotated[Caller, Depends(requires(Action.TRAINING_READ))]
PipelineWriter = Annotated[Caller, Depends(requires(Action.PIPELINES_WRITE))]
RunStarter = Annotated[Caller, Depends(requires(Action.RUNS_START))]
RunManager = Annotated[Caller, Depends(requires(Action.RUNS_MANAGE))]
DeploymentReader = Annotated[Caller, Depends(requires(Action.DEPLOYMENTS_READ))]
DeploymentWriter = Annotated[Caller, Depends(requires(Action.DEPLOYMENTS_WRITE))]
InferenceCaller = Annotated[Caller, Depends(requires(Action.INFERENCE))]
