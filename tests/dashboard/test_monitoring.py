"""The monitoring tab against the shared dashboard server: a deployed model receives
real requests (some bad), an alert rule on it fires, and the pages show the traffic,
its charts, the platform's figures and the alert, which a writer acknowledges and a
viewer may not. Roll-ups reach the history once their minute ends, so the checks of
counted traffic poll with a deadline."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from html import unescape
from typing import Any

import httpx
import numpy as np
import pytest

from modelhub.client import Client, RegisterRequest
from tests.dashboard.conftest import Session, create_token, sign_in
from tests.integration.conftest import ServerProcess
from tests.integration.serving_helpers import deploy, oip_body, wait_for, write_model_a

MODEL = "mon-model"
DEPLOYMENT = "mon-serving"
GOOD, BAD = 12, 3
# Minutes are handed over when they end (a minute by default), then polled.
COUNTED_WITHIN = 100.0


@dataclass(frozen=True)
class Seeded:
    rule_id: int
    endpoint: str


@pytest.fixture(scope="module")
def seeded(
    dashboard_server: ServerProcess, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Seeded]:
    """The model, a rule that fires at the engine's next evaluation (any traffic, even
    none, is at most 1e9 requests per second), the deployment and its traffic."""
    folder = write_model_a(tmp_path_factory.mktemp("mon") / "model")
    with Client(dashboard_server.url, token=dashboard_server.token) as client:
        client.register(RegisterRequest(name=MODEL, type="classification"), folder)
    with dashboard_server.http(timeout=120) as http:
        rule = http.post(
            "/api/v1/alerts/rules",
            json={
                "metric": "requests_per_second",
                "comparison": "at_most",
                "threshold": 1e9,
                "scope": {"kind": "model", "target": MODEL},
                "name": "mon_always",
            },
        )
        assert rule.status_code == 201, rule.text
        try:
            deployed = deploy(http, model=f"{MODEL}@1", name=DEPLOYMENT)
            assert deployed["status"] == "running", deployed
            url = f"{deployed['endpoint']}/v2/models/{DEPLOYMENT}/infer"
            for _ in range(GOOD):
                reply = httpx.post(
                    url, json=oip_body(np.ones((1, 32))), timeout=30, trust_env=False
                )
                assert reply.status_code == 200, reply.text
            for _ in range(BAD):
                reply = httpx.post(url, json={"inputs": []}, timeout=30, trust_env=False)
                assert reply.status_code == 400
            yield Seeded(rule_id=int(rule.json()["id"]), endpoint=str(deployed["endpoint"]))
        finally:
            http.post(f"/api/v1/deployments/{DEPLOYMENT}/stop")
            http.delete(f"/api/v1/alerts/rules/{rule.json()['id']}")


@pytest.fixture(scope="module")
def viewer(dashboard_server: ServerProcess) -> Iterator[Session]:
    session = sign_in(dashboard_server, create_token(dashboard_server, "mon-viewer", "viewer"))
    try:
        yield session
    finally:
        session.http.close()


def figure(html: str, element_id: str) -> str:
    found = re.search(rf'id="{element_id}" data-value="([^"]*)"', html)
    assert found is not None, f"no #{element_id} in the page"
    return found.group(1)


def chart(html: str, element_id: str) -> dict[str, Any]:
    found = re.search(
        rf'<figure class="chart" id="{element_id}">.*?data-chart="([^"]*)"', html, re.S
    )
    assert found is not None, f"no chart #{element_id}"
    data: dict[str, Any] = json.loads(unescape(found.group(1)))
    return data


@pytest.fixture(scope="module")
def counted(admin_session: Session, seeded: Seeded) -> str:
    """The model's page (last hour) once every request sent is counted."""

    def page() -> str | None:
        answer = admin_session.get(f"/monitoring/{MODEL}", params={"window": "1h"})
        assert answer.status_code == 200, answer.text[:500]
        shown = int(figure(answer.text, "requests-total"))
        assert shown <= GOOD + BAD
        return answer.text if shown == GOOD + BAD else None

    found: str = wait_for(page, timeout=COUNTED_WITHIN, interval=1.0)
    return found


def test_live_requests_show_at_once(admin_session: Session, seeded: Seeded) -> None:
    """The replicas' own counters, polled every few seconds: no minute to wait for."""

    def shown() -> bool:
        answer = admin_session.get(f"/monitoring/{MODEL}")
        return int(figure(answer.text, "requests-live")) == GOOD + BAD

    wait_for(shown, timeout=30, interval=0.5)


def test_model_page_shows_the_traffic_and_its_charts(counted: str) -> None:
    latency = chart(counted, "latency-chart")
    throughput = chart(counted, "throughput-chart")
    errors = chart(counted, "errors-chart")
    assert latency["x"], "the latency chart has no points"
    assert [s["label"] for s in latency["series"]] == ["p50 ms", "p99 ms"]
    assert all(v is not None and v > 0 for v in latency["series"][1]["values"])
    assert throughput["x"] == latency["x"]
    assert sum(throughput["series"][0]["values"]) == GOOD + BAD
    assert sum(errors["series"][0]["values"]) == BAD
    assert 'id="error-rate">20.0 %<' in counted
    # The window selector: a GET form that works without JavaScript.
    form = re.search(
        r'<form method="get" action="/monitoring/mon-model"[^>]*id="window-form"', counted
    )
    assert form is not None
    assert '<label for="window">' in counted
    assert '<option value="1h" selected>' in counted
    for window in ("6h", "24h", "7d"):
        assert f'<option value="{window}">' in counted
    assert 'hx-trigger="every 30s"' in counted
    assert "<h2" in counted and counted.count("<h1") == 1


def test_other_windows_and_the_live_fragment(admin_session: Session, counted: str) -> None:
    week = admin_session.get(f"/monitoring/{MODEL}", params={"window": "7d"})
    assert week.status_code == 200
    assert int(figure(week.text, "requests-total")) == GOOD + BAD
    assert '<option value="7d" selected>' in week.text
    fragment = admin_session.get(f"/monitoring/{MODEL}", headers={"hx-request": "true"})
    assert fragment.status_code == 200
    assert fragment.text.lstrip().startswith('<div id="monitor-figures"')
    assert "<html" not in fragment.text and 'id="latency-chart"' in fragment.text


def test_overview_lists_the_deployment_with_its_figures(
    admin_session: Session, counted: str
) -> None:
    page = admin_session.get("/monitoring")
    assert page.status_code == 200
    row = re.search(rf'<tr data-deployment="{DEPLOYMENT}">(.*?)</tr>', page.text, re.S)
    assert row is not None, "the deployment is not listed"
    cells = row.group(1)
    assert f'<a href="/monitoring/{MODEL}">{MODEL}</a>' in cells
    assert f'data-figure="requests">{GOOD + BAD}<' in cells
    assert 'data-figure="errors">20.0 %<' in cells
    p99 = re.search(r'data-figure="p99">([^<]*)<', cells)
    assert p99 is not None and p99.group(1).endswith("ms"), cells
    # The platform's success figures, as GET /api/v1/monitoring/platform gives them.
    for element in ("platform-success", "platform-queue-wait", "platform-uptime"):
        assert f'id="{element}"' in page.text


@pytest.fixture(scope="module")
def alert_id(dashboard_server: ServerProcess, seeded: Seeded) -> int:
    """The rule's alert, once the engine fired it."""
    with dashboard_server.http(timeout=30) as http:

        def fired() -> int | None:
            found = http.get(
                "/api/v1/alerts", params={"firing": "true", "subject": f"model:{MODEL}"}
            ).json()
            return next((int(a["id"]) for a in found if a["rule"] == "mon_always"), None)

        found: int = wait_for(fired, timeout=COUNTED_WITHIN, interval=0.5)
        return found


def test_a_viewer_sees_the_alert_but_may_not_acknowledge_it(
    dashboard_server: ServerProcess, viewer: Session, alert_id: int
) -> None:
    for path in ("/monitoring", f"/monitoring/{MODEL}"):
        page = viewer.get(path)
        assert page.status_code == 200
        assert f'id="alert-{alert_id}"' in page.text
        assert f"/monitoring/alerts/{alert_id}/ack" not in page.text
        assert ">Acknowledge<" not in page.text
    forged = viewer.post(f"/monitoring/alerts/{alert_id}/ack")
    assert forged.status_code == 403
    with dashboard_server.http(timeout=30) as http:
        events = http.get(
            "/api/v1/audit", params={"actor": "mon-viewer", "action": "auth.denied"}
        ).json()
        still = http.get(f"/api/v1/alerts/{alert_id}").json()
    assert any(e["target"] == f"POST /monitoring/alerts/{alert_id}/ack" for e in events)
    assert still["acknowledged_by"] is None


def test_a_writer_acknowledges_the_alert(
    dashboard_server: ServerProcess, admin_session: Session, alert_id: int
) -> None:
    page = admin_session.get("/monitoring")
    assert f'action="/monitoring/alerts/{alert_id}/ack"' in page.text
    without_csrf = admin_session.http.post(f"/monitoring/alerts/{alert_id}/ack", data={})
    assert without_csrf.status_code == 403
    done = admin_session.http.post(
        f"/monitoring/alerts/{alert_id}/ack",
        data={"csrf": admin_session.csrf},
        headers={"referer": f"{dashboard_server.url}/monitoring/{MODEL}"},
    )
    assert done.status_code == 303 and done.headers["location"] == f"/monitoring/{MODEL}"
    with dashboard_server.http(timeout=30) as http:
        acknowledged = http.get(f"/api/v1/alerts/{alert_id}").json()
    assert acknowledged["acknowledged_by"] is not None
    shown = admin_session.get(f"/monitoring/{MODEL}").text
    row = re.search(rf'id="alert-{alert_id}">(.*?)</tr>', shown, re.S)
    assert row is not None and f"by {acknowledged['acknowledged_by']}" in row.group(1)
    assert f"/monitoring/alerts/{alert_id}/ack" not in row.group(1)
    by_htmx = admin_session.post(f"/monitoring/alerts/{alert_id}/ack", htmx=True)
    assert by_htmx.status_code == 204 and by_htmx.headers["hx-refresh"] == "true"


def test_bad_input(admin_session: Session, seeded: Seeded) -> None:
    unknown = admin_session.get("/monitoring/mon-nothing-here")
    assert unknown.status_code == 404 and "mon-nothing-here" in unknown.text
    bad_window = admin_session.get(f"/monitoring/{MODEL}", params={"window": "2h"})
    assert bad_window.status_code == 400
    assert "window must be one of 1h, 6h, 24h, 7d" in bad_window.text
    no_alert = admin_session.post("/monitoring/alerts/999999999/ack")
    assert no_alert.status_code == 404
    by_htmx = admin_session.get(
        f"/monitoring/{MODEL}", params={"window": "forever"}, headers={"hx-request": "true"}
    )
    assert by_htmx.status_code == 400 and 'class="error"' in by_htmx.text
    assert "<html" not in by_htmx.text
