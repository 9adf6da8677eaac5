"""The dashboard's monitoring views: the platform's figures and every live deployment's
headline figures; one model's report over a chosen window; acknowledging an alert."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response

from modelhub.dashboard.errors import TAG
from modelhub.dashboard.render import is_htmx, page, refresh
from modelhub.dashboard.session import PageReader, page_requires
from modelhub.domain.auth import Action, Caller
from modelhub.domain.limits import PositiveInt64
from modelhub.domain.monitor_report import MinutePoint
from modelhub.errors import InvalidInput
from modelhub.services import Services

router = APIRouter(tags=[TAG], include_in_schema=False)

AlertAcknowledger = Annotated[Caller, Depends(page_requires(Action.ALERTS_ACK))]
WINDOWS = ("1h", "6h", "24h", "7d")
DEFAULT_WINDOW = "24h"
HEADLINE_WINDOW = "1h"  # the overview table's requests, errors and p99
PLATFORM_WINDOW = "24h"  # as GET /api/v1/monitoring/platform by default
REFRESH_SECONDS = 30


def _services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


def check_window(window: str) -> str:
    if window not in WINDOWS:
        raise InvalidInput(
            f"window must be one of {', '.join(WINDOWS)}, not {window[:24]!r}",
            {"field": "window", "value": window[:24]},
        )
    return window


def _x(points: list[MinutePoint]) -> list[float]:
    return [point.at.timestamp() for point in points]


def charts(points: list[MinutePoint]) -> dict[str, dict[str, Any]]:
    """The report's points as the three charts' data (ui.chart). A point is a minute
    (an hour over 7 days), or a few merged where the window holds many: throughput is
    the requests of each point, not a rate over an interval the points do not keep."""
    x = _x(points)
    return {
        "latency": {
            "x": x,
            "series": [
                {"label": "p50 ms", "values": [p.p50_ms for p in points]},
                {"label": "p99 ms", "values": [p.p99_ms for p in points]},
            ],
        },
        "throughput": {
            "x": x,
            "series": [{"label": "requests", "values": [p.requests for p in points]}],
        },
        "errors": {
            "x": x,
            "series": [
                {"label": "errors", "values": [p.errors for p in points]},
                {
                    "label": "error %",
                    "values": [100 * p.errors / p.requests if p.requests else None for p in points],
                },
            ],
        },
    }


@router.get("/monitoring", response_class=HTMLResponse)
def monitoring(request: Request, caller: PageReader) -> HTMLResponse:
    services = _services(request)
    firing = services.alerts.list_alerts(caller, firing_only=True)
    return page(
        request,
        "monitoring/index.html",
        caller,
        tab="monitoring",
        platform=services.cost.platform_figures_for(caller, PLATFORM_WINDOW),
        platform_window=PLATFORM_WINDOW,
        headlines=services.monitor.headlines(caller, HEADLINE_WINDOW),
        headline_window=HEADLINE_WINDOW,
        firing=firing,
        open_alerts={alert.id: alert for alert in firing},
    )


@router.get("/monitoring/{name}", response_class=HTMLResponse)
def model_monitoring(
    request: Request, name: str, caller: PageReader, window: str = DEFAULT_WINDOW
) -> HTMLResponse:
    services = _services(request)
    report = services.monitor.report(caller, name, check_window(window))
    open_alerts = {a.id: a for a in services.alerts.list_alerts(caller, firing_only=True)}
    costs = [services.cost.deployment_cost_for(caller, d.name, window) for d in report.deployments]
    live = sum(
        record.requests
        for d in report.deployments
        for record in services.deployments.usage(caller, d.name)
    )
    points = report.performance.series if report.performance else []
    context: dict[str, Any] = {
        "name": name,
        "window": window,
        "windows": WINDOWS,
        "report": report,
        "charts": charts(points),
        "points": len(points),
        "open_alerts": open_alerts,
        "costs": costs,
        "live_requests": live,
        "refresh_seconds": REFRESH_SECONDS,
    }
    template = "monitoring/_model_figures.html" if is_htmx(request) else "monitoring/model.html"
    return page(request, template, caller, tab="monitoring", **context)


@router.post("/monitoring/alerts/{alert_id}/ack")
def acknowledge(request: Request, alert_id: PositiveInt64, caller: AlertAcknowledger) -> Response:
    _services(request).alerts.acknowledge(caller, alert_id)
    return refresh(request)
