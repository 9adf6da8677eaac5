"""The FastAPI application factory: the composition root of the server."""

from __future__ import annotations

import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

from fastapi import FastAPI, Request, Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from modelhub import __version__
from modelhub.api import (
    routes_alerts,
    routes_audit,
    routes_auth,
    routes_canary,
    routes_cost,
    routes_datasets,
    routes_deployments,
    routes_drift,
    routes_governance_bias,
    routes_governance_compliance,
    routes_governance_explain,
    routes_governance_lineage,
    routes_governance_workflow,
    routes_history,
    routes_hosts,
    routes_inference,
    routes_interop,
    routes_models,
    routes_optimisation,
    routes_overview,
    routes_personas,
    routes_pipeline_optimization,
    routes_plugins,
    routes_pools,
    routes_predictions,
    routes_report,
    routes_training,
    routes_tuning,
    routes_uploads,
)
from modelhub.api.errors import install_error_handlers
from modelhub.api.persona_metrics import PersonaCollector
from modelhub.api.platform_metrics import PlatformFiguresCollector
from modelhub.api.security import FailureLimiter, Public
from modelhub.api.serving_metrics import ServingCollector
from modelhub.dashboard.router import mount_dashboard
from modelhub.domain import context
from modelhub.services import Services, build_services
from modelhub.services.fastpath import FastPathService
from modelhub.services.inference import InferenceService
from modelhub.settings import Settings

if TYPE_CHECKING:
    from modelhub.serving.launcher import ReplicaLauncher


def create_app(
    settings: Settings | None = None,
    services: Services | None = None,
    replica_launcher: ReplicaLauncher | None = None,
) -> FastAPI:
    """The API app. `replica_launcher`: the one `modelhub server` starts before it
    imports the app, so that its warm spare imports torch while the server boots; the
    replica supervisor takes it over."""
    settings = settings or (services.settings if services else Settings())

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await walk_every_route(app)
        owned = services is None
        live = services or build_services(settings)
        # Registered first: a second server on one SQLite database stops here.
        live.hosts.start()
        # Nothing is in flight yet: whatever a crash left half-written goes now.
        live.platform.clean_leftovers(others_running=live.hosts.others_alive())
        if settings.auth:
            announce_first_token(live)
        app.state.services = live
        # One per server: its route cache, balancer counts and pooled connections.
        inference = app.state.inference = InferenceService(live.deployments)
        fast_path = app.state.fast_path = FastPathService(settings, live.auth, live.deployments)
        live.history.start_cleanup()
        if settings.train_scheduler:
            live.training.start_scheduler()
            live.tuning.start()  # drives studies whose trials that scheduler runs
        if settings.alerts_engine:
            live.alerts.start()
        if settings.serve_supervisor:
            live.predictions.start()  # ingests what the replicas' prediction logs close
            live.deployments.start_serving(replica_launcher)
            fast_path.start()  # the data-plane listener, when data_plane_port is set
        elif replica_launcher is not None:
            replica_launcher.close()
        if settings.canary_analysis:
            live.canary.start()
        live.cost.start()
        if settings.persona_learning:
            live.personas.start()
        try:
            yield
        finally:
            live.personas.stop()
            live.cost.stop()
            live.canary.stop()
            await inference.close()
            fast_path.stop()
            if settings.serve_supervisor:
                live.deployments.stop_serving()
                live.predictions.stop()  # after the replicas: their last files go in too
            live.tuning.stop()
            live.training.stop_scheduler()
            live.alerts.stop()
            live.history.stop_cleanup()
            live.hosts.stop()
            if owned:
                live.close()

    app = FastAPI(
        title="modelhub",
        version=__version__,
        description="Register, version, train, serve, watch and govern AI models.",
        lifespan=lifespan,
    )
    app.state.auth_limiter = FailureLimiter(
        settings.auth_failure_limit, settings.auth_failure_window_seconds
    )
    install_error_handlers(app)
    _install_request_context(app)
    for module in (
        routes_models,
        routes_interop,
        routes_uploads,
        routes_datasets,
        routes_training,
        routes_tuning,
        routes_deployments,
        routes_canary,
        routes_history,
        routes_inference,
        routes_auth,
        routes_audit,
        routes_alerts,
        routes_drift,
        routes_report,
        routes_cost,
        routes_predictions,
        routes_governance_lineage,
        routes_governance_compliance,
        routes_governance_workflow,
        routes_governance_explain,
        routes_governance_bias,
        routes_overview,
        routes_optimisation,
        routes_pipeline_optimization,
        routes_hosts,
        routes_pools,
        routes_personas,
        routes_plugins,
    ):
        app.include_router(module.router)

    mount_dashboard(app)

    @app.get("/healthz", tags=["health"])
    def healthz(_: Public) -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", tags=["health"])
    def readyz(request: Request, _: Public) -> dict[str, str]:
        live: Services = request.app.state.services
        return {"status": "ready", "database": live.platform.readiness()}

    return app


def announce_first_token(services: Services) -> None:
    """On the first start, make the admin and say once where its token is."""
    token_file = services.settings.admin_token_file
    token = services.auth.bootstrap(token_file)
    if token is not None:
        print(
            f"modelhub: created the first admin; its token (shown once) is\n  {token}\n"
            f"and is saved, readable only by you, in {token_file}",
            file=sys.stderr,
            flush=True,
        )


class RequestContext:
    """Request ids, Server-Timing and Prometheus metrics, as plain ASGI middleware.

    Plain ASGI rather than @app.middleware("http"): that wrapper runs every request
    in an extra task and copies streamed bodies through a queue, which a chunked
    1 GiB upload pays for on every chunk.
    """

    def __init__(self, app: ASGIApp, registry: CollectorRegistry) -> None:
        self.app = app
        self.registry = registry
        self.requests = Counter(
            "modelhub_http_requests",
            "HTTP requests answered by the control plane.",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "modelhub_http_request_duration_seconds",
            "Time to answer an HTTP request of the control plane.",
            ["method", "route"],
            registry=self.registry,
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        request_id = context.accept_request_id(dict(scope["headers"]).get(b"x-request-id"))
        context.request_id.set(request_id)
        tally = context.QueryTally()
        context.query_tally.set(tally)
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = list(message.get("headers", []))
                headers.append((b"x-request-id", request_id.encode("ascii")))
                headers.append((b"server-timing", server_timing(start, tally)))
                message["headers"] = headers
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            route = getattr(scope.get("route"), "path", "unmatched")
            method = scope["method"]
            self.latency.labels(method, route).observe(time.perf_counter() - start)
            self.requests.labels(method, route, str(status)).inc()


def server_timing(start: float, tally: context.QueryTally) -> bytes:
    """The Server-Timing header: time to the first byte of the answer, and the metadata
    queries it took (count and time), readable in a browser's network panel."""
    total = (time.perf_counter() - start) * 1000
    return (
        f'app;dur={total:.1f}, db;dur={tally.seconds * 1000:.1f};desc="{tally.count} queries"'
    ).encode("ascii")


def _install_request_context(app: FastAPI) -> None:
    registry = CollectorRegistry()
    registry.register(ServingCollector(app.state))
    registry.register(PlatformFiguresCollector(app.state))
    registry.register(PersonaCollector(app.state))
    app.add_middleware(RequestContext, registry=registry)

    @app.get("/metrics", tags=["health"], include_in_schema=False)
    def metrics(_: Public) -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)


async def walk_every_route(app: FastAPI) -> None:
    """FastAPI prepares an included router's routes on the first request that walks
    it. One request that matches no route walks them all, here, before the server
    listens: otherwise the first callers after a start wait for it (about a second,
    several on a loaded machine), which a client takes for a hang."""

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def discard(message: Message) -> None:
        return None

    path = "/.no-route"  # no route has this path
    scope: Scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [],
        "client": ("127.0.0.1", 0),
        "server": ("127.0.0.1", 0),
    }
    await app.router(scope, receive, discard)
