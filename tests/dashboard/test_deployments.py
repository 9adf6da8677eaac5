"""The deployments tab against the shared real server: one real tabular model deployed
through the dashboard's form, seen on the list and its page, a prediction sent from
"try it", scaled up and down, refused inputs, a viewer who is offered nothing and whose
forged posts are refused, and the deployment stopped from its page at the end."""

from __future__ import annotations

import html
import json
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from modelhub.client import Client, RegisterRequest
from tests.dashboard.conftest import Session, create_token, sign_in
from tests.integration.conftest import ServerProcess
from tests.integration.serving_helpers import write_model_a

MODEL = "dep-intents"
NAME = "dep-intents-dev"
ACTIONS = ("scale", "update", "promote", "rollback", "stop")


def deployment(server: ServerProcess, name: str = NAME) -> dict[str, Any]:
    with server.http(timeout=30) as http:
        answer = http.get(f"/api/v1/deployments/{name}")
        assert answer.status_code == 200, answer.text
        found: dict[str, Any] = answer.json()["deployment"]
        return found


def wait_until(check: Any, what: str, timeout: float = 60.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"{what}: not within {timeout}s")


def serving(server: ServerProcess, replicas: int) -> dict[str, Any] | None:
    """The deployment once it runs `replicas` replicas, each ready, and no more."""
    found = deployment(server)
    assert found["status"] != "failed", found["error"]
    ready = [h for h in found["health"] if h["ready"]]
    if found["status"] == "running" and len(found["health"]) == len(ready) == replicas:
        return found
    return None


@pytest.fixture(scope="module")
def deployed(
    dashboard_server: ServerProcess,
    admin_session: Session,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[str]:
    """dep-intents@1, deployed to development through the Deploy form (one replica),
    stopped however the module ends so no replica process outlives it."""
    root = tmp_path_factory.mktemp("dep-model")
    with Client(dashboard_server.url, dashboard_server.token) as client:
        client.register(
            RegisterRequest(name=MODEL, type="classification"), write_model_a(root / "a1")
        )
        client.register(RegisterRequest(name=MODEL), write_model_a(root / "a2", seed=1))
    try:
        answer = admin_session.post(
            "/deployments",
            {
                "deployment": NAME,
                "model": MODEL,
                "version": "1",
                "environment": "development",
                "replicas": "1",
            },
        )
        assert answer.status_code == 303, answer.text[:500]
        assert answer.headers["location"] == f"/deployments/{NAME}"
        wait_until(lambda: serving(dashboard_server, 1), "one ready replica", 90)
        yield NAME
    finally:
        with dashboard_server.http(timeout=60) as http:
            found = http.get(f"/api/v1/deployments/{NAME}")
            if found.status_code == 200 and found.json()["deployment"]["status"] != "stopped":
                assert http.post(f"/api/v1/deployments/{NAME}/stop").status_code == 200


@pytest.fixture(scope="module")
def viewer(dashboard_server: ServerProcess) -> Iterator[Session]:
    session = sign_in(dashboard_server, create_token(dashboard_server, "dep-vera", "viewer"))
    try:
        yield session
    finally:
        session.http.close()


def error_of(answer: httpx.Response) -> str:
    found = re.search(r'<p class="error" role="alert" data-code="[^"]*">([^<]*)</p>', answer.text)
    assert found is not None, answer.text[:800]
    return found.group(1)


def test_the_list_shows_the_deployment_with_its_replicas_and_traffic(
    admin_session: Session, deployed: str
) -> None:
    page = admin_session.get("/deployments")
    assert page.status_code == 200
    assert page.text.count("<h1>") == 1
    row = re.search(rf'<tr data-deployment="{deployed}">(.*?)</tr>', page.text, re.S)
    assert row is not None, page.text[:2000]
    cells = row.group(1)
    assert f'href="/deployments/{deployed}"' in cells
    assert f'href="/models/{MODEL}/versions/1">{MODEL}@1</a>' in cells
    assert "dep-running" in cells and "development" in cells
    assert '<td class="num replicas">1/1</td>' in cells
    assert "v1 100%" in cells
    # Filtered by another environment, it is not listed; by its own, it is.
    assert (
        f'data-deployment="{deployed}"'
        not in admin_session.get("/deployments?environment=production").text
    )
    assert (
        f'data-deployment="{deployed}"'
        in admin_session.get("/deployments?environment=development").text
    )
    assert admin_session.get("/deployments?environment=moon").status_code == 400


def test_the_page_shows_status_replicas_and_the_actions(
    admin_session: Session, dashboard_server: ServerProcess, deployed: str
) -> None:
    page = admin_session.get(f"/deployments/{deployed}")
    assert page.status_code == 200
    assert f"<h1>{deployed}</h1>" in page.text and page.text.count("<h1>") == 1
    replica = deployment(dashboard_server)["health"][0]
    table = re.search(r'<table id="replicas-table">(.*?)</table>', page.text, re.S)
    assert table is not None
    cells = table.group(1)
    assert f">{replica['pid']}</td>" in cells and f">{replica['port']}</td>" in cells
    assert " ago</td>" in cells or "just now</td>" in cells  # when the replica started
    assert 'hx-trigger="every 5s"' in page.text
    assert 'min="1" max="64"' in page.text  # the scale form bounds what a browser sends
    for action in ("scale", "update", "stop"):
        assert f'action="/deployments/{deployed}/{action}"' in page.text, action
    # No canary in place, nothing to promote; v1 never changed, nothing to roll back to.
    assert f"/deployments/{deployed}/promote" not in page.text
    assert f"/deployments/{deployed}/rollback" not in page.text
    status = admin_session.get(f"/deployments/{deployed}/status")
    assert status.status_code == 200 and "<html" not in status.text
    assert 'id="replicas-table"' in status.text
    assert admin_session.get("/deployments/dep-nothing").status_code == 404


def test_try_it_is_prefilled_from_the_signature_and_answers_with_latency(
    admin_session: Session, deployed: str
) -> None:
    page = admin_session.get(f"/deployments/{deployed}")
    form = re.search(r'<form[^>]*id="try-it".*?</form>', page.text, re.S)
    assert form is not None
    assert '<label for="f-input">Input</label>' in form.group(0)
    textarea = r'<textarea id="f-input" name="input"[^>]*>(.*?)</textarea>'
    box = re.search(textarea, form.group(0), re.S)
    assert box is not None
    example = json.loads(html.unescape(box.group(1)))
    (tensor,) = example["inputs"]
    assert (tensor["name"], tensor["datatype"], tensor["shape"]) == ("input", "FP32", [1, 32])
    assert tensor["data"] == [0] * 32

    answer = admin_session.post(
        f"/deployments/{deployed}/try", {"input": json.dumps(example)}, htmx=True
    )
    assert answer.status_code == 200, answer.text[:800]
    latency = re.search(r'<span class="latency">([\d.]+) ms</span>', answer.text)
    assert latency is not None and float(latency.group(1)) > 0
    shown = re.search(r"<pre[^>]*>(.*?)</pre>", answer.text, re.S)
    assert shown is not None
    reply = json.loads(html.unescape(shown.group(1)))
    assert {o["name"] for o in reply["outputs"]} == {"logits", "probabilities", "label"}
    assert reply["model_name"] == deployed

    # A plain post (no JavaScript) answers the whole page with the result in its box.
    plain = admin_session.post(f"/deployments/{deployed}/try", {"input": json.dumps(example)})
    assert plain.status_code == 200
    result = re.search(r'<div id="try-it-result".*?</div>', plain.text, re.S)
    assert result is not None and 'class="latency"' in result.group(0)


def test_bad_try_it_input_shows_the_replicas_error(admin_session: Session, deployed: str) -> None:
    malformed = admin_session.post(
        f"/deployments/{deployed}/try", {"input": '{"inputs": ['}, htmx=True
    )
    assert malformed.status_code == 400
    assert "JSON" in malformed.text and 'class="latency"' in malformed.text
    wrong = {"inputs": [{"name": "input", "shape": [1, 31], "datatype": "FP32", "data": [0] * 31}]}
    shape = admin_session.post(
        f"/deployments/{deployed}/try", {"input": json.dumps(wrong)}, htmx=True
    )
    assert shape.status_code == 400 and "shape" in shape.text
    # The text kinds go to the OpenAI-style routes, whose model checks what it serves.
    for kind_name, wanted in (("completions", "a text generation"), ("embeddings", "an embedding")):
        text = admin_session.post(
            f"/deployments/{deployed}/try", {"input": "Hello", "kind": kind_name}, htmx=True
        )
        assert text.status_code == 400 and f"not {wanted} model" in text.text, text.text[:500]
    kind = admin_session.post(
        f"/deployments/{deployed}/try", {"input": "x", "kind": "poem"}, htmx=True
    )
    assert kind.status_code == 400 and "unknown kind" in error_of(kind)


def test_scale_up_and_back_down(
    admin_session: Session, dashboard_server: ServerProcess, deployed: str
) -> None:
    up = admin_session.post(f"/deployments/{deployed}/scale", {"replicas": "2"}, htmx=True)
    assert up.status_code == 204 and up.headers["hx-redirect"] == f"/deployments/{deployed}"
    wait_until(lambda: serving(dashboard_server, 2), "two ready replicas", 60)
    page = admin_session.get("/deployments")
    assert '<td class="num replicas">2/2</td>' in page.text
    down = admin_session.post(f"/deployments/{deployed}/scale", {"replicas": "1"})
    assert down.status_code == 303
    wait_until(lambda: serving(dashboard_server, 1), "back to one replica", 60)


def traffic_is(server: ServerProcess, shares: list[tuple[int, int]], status: str) -> bool:
    found = deployment(server)
    assert found["status"] != "failed", found["error"]
    now = [(share["version"], share["percent"]) for share in found["traffic"]]
    return bool(found["status"] == status and now == shares)


def test_a_canary_rolled_back_then_one_analysed_and_promoted(
    admin_session: Session, dashboard_server: ServerProcess, deployed: str
) -> None:
    url = f"/deployments/{deployed}"
    update = admin_session.post(f"{url}/update", {"version": "2", "canary_percent": "30"})
    assert update.status_code == 303
    wait_until(lambda: traffic_is(dashboard_server, [(1, 70), (2, 30)], "updating"), "canary")
    page = admin_session.get(url).text
    assert 'v2 30% <span class="hint">canary</span>' in page
    assert 'id="canary-analysis"' in page and "Manual" in page
    for action in ("promote", "rollback"):
        assert f'action="{url}/{action}"' in page, action
    assert f'action="{url}/update"' not in page  # one rollout at a time
    assert admin_session.post(f"{url}/rollback", htmx=True).status_code == 204
    wait_until(lambda: traffic_is(dashboard_server, [(1, 100)], "running"), "rolled back")

    analysed = admin_session.post(
        f"{url}/update", {"version": "2", "canary_percent": "20", "analysis": "true"}, htmx=True
    )
    assert analysed.status_code == 204, analysed.text
    wait_until(lambda: traffic_is(dashboard_server, [(1, 80), (2, 20)], "updating"), "canary")
    assert deployment(dashboard_server)["rollout"]["analysis"]["mode"] == "auto"
    assert "Automated: after" in admin_session.get(f"{url}/status").text
    assert admin_session.post(f"{url}/promote").status_code == 303
    wait_until(lambda: traffic_is(dashboard_server, [(2, 100)], "running"), "promoted")
    assert f'href="/models/{MODEL}/versions/2">{MODEL}@2</a>' in admin_session.get(url).text


def test_refused_inputs_say_why_and_change_nothing(
    admin_session: Session, dashboard_server: ServerProcess, deployed: str
) -> None:
    before = deployment(dashboard_server)
    for replicas in ("0", "65"):
        answer = admin_session.post(
            f"/deployments/{deployed}/scale", {"replicas": replicas}, htmx=True
        )
        assert answer.status_code == 400
        assert "replicas must be between 1 and 64" in error_of(answer)
    missing = admin_session.post(f"/deployments/{deployed}/update", {"version": "9"}, htmx=True)
    assert missing.status_code == 404 and "9" in error_of(missing)
    alone = admin_session.post(
        f"/deployments/{deployed}/update", {"version": "1", "analysis": "true"}, htmx=True
    )
    assert alone.status_code == 400 and "canary share" in error_of(alone)
    promote = admin_session.post(f"/deployments/{deployed}/promote", htmx=True)
    assert promote.status_code == 409 and "no canary" in error_of(promote)
    # The production gate refuses the unapproved version through the Deploy form too.
    gated = admin_session.post(
        "/deployments",
        {"deployment": "dep-prod", "model": MODEL, "version": "1", "environment": "production"},
    )
    assert gated.status_code == 409 and "not approved" in error_of(gated)
    taken = admin_session.post(
        "/deployments", {"deployment": deployed, "model": MODEL, "version": "1"}, htmx=True
    )
    assert taken.status_code == 409 and deployed in error_of(taken)
    after = deployment(dashboard_server)
    assert (after["replicas"], after["traffic"], after["status"]) == (
        before["replicas"],
        before["traffic"],
        "running",
    )
    with dashboard_server.http(timeout=30) as http:
        assert http.get("/api/v1/deployments/dep-prod").status_code == 404


def test_a_viewer_is_offered_nothing_and_forged_posts_are_refused(
    viewer: Session, dashboard_server: ServerProcess, deployed: str
) -> None:
    page = viewer.get(f"/deployments/{deployed}")
    assert page.status_code == 200 and f"<h1>{deployed}</h1>" in page.text
    for action in ACTIONS:
        assert f"/deployments/{deployed}/{action}" not in page.text, action
    assert 'id="try-it"' in page.text  # every role may send inference requests
    for action in ACTIONS:
        forged = viewer.post(f"/deployments/{deployed}/{action}", {"replicas": "3"})
        assert forged.status_code == 403, action
    forged_deploy = viewer.post(
        "/deployments", {"deployment": "dep-forged", "model": MODEL, "version": "1"}
    )
    assert forged_deploy.status_code == 403
    assert deployment(dashboard_server)["status"] == "running"
    with dashboard_server.http(timeout=30) as http:
        events = http.get(
            "/api/v1/audit", params={"action": "auth.denied", "actor": "dep-vera"}
        ).json()
    assert events, "the refusals were not audited"


def test_a_post_without_the_csrf_token_is_refused(
    admin_session: Session, dashboard_server: ServerProcess, deployed: str
) -> None:
    bare = admin_session.http.post(f"/deployments/{deployed}/scale", data={"replicas": "3"})
    assert bare.status_code == 403 and "CSRF" in bare.text
    bare_stop = admin_session.http.post(f"/deployments/{deployed}/stop")
    assert bare_stop.status_code == 403
    assert deployment(dashboard_server)["status"] == "running"


def test_stop_from_the_page_then_stopping_again_is_refused(
    admin_session: Session, dashboard_server: ServerProcess, deployed: str
) -> None:
    stopped = admin_session.post(f"/deployments/{deployed}/stop")
    assert stopped.status_code == 303
    found = deployment(dashboard_server)
    assert found["status"] == "stopped" and found["health"] == []
    again = admin_session.post(f"/deployments/{deployed}/stop", htmx=True)
    assert again.status_code == 409 and "already stopped" in error_of(again)
    page = admin_session.get(f"/deployments/{deployed}")
    assert "dep-stopped" in page.text and 'hx-trigger="every 5s"' not in page.text
    assert f'data-deployment="{deployed}"' not in admin_session.get("/deployments").text
    assert f'data-deployment="{deployed}"' in admin_session.get("/deployments?stopped=true").text


def test_nothing_is_left_running(dashboard_server: ServerProcess, deployed: str) -> None:
    with dashboard_server.http(timeout=30) as http:
        live = http.get("/api/v1/deployments").json()
    assert [d["name"] for d in live if d["name"].startswith("dep-")] == []
    assert Path(dashboard_server.home).is_dir()
