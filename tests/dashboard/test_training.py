"""The Training Pipelines tab against the real server: checking and creating a
pipeline from a spec, starting runs from the forms, a run's page reaching 100 % with
its curves and result, its live feed over SSE, cancel and resume, and what a viewer
and a request without the CSRF token are refused."""

from __future__ import annotations

import html
import json
import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from modelhub.client import Client
from tests.dashboard.conftest import Session, create_token, sign_in
from tests.integration.conftest import ServerProcess

DATASET = "trn-data"
PIPELINE = "trn-pipe"
RESULT_MODEL = "trn-clf"
SPEC = f"""
name: {PIPELINE}
type: pre_training
trainer: tabular_classifier
datasets: [{DATASET}]
max_epochs: 2
hyperparameters: {{batch_size: 8}}
result_model: {{name: {RESULT_MODEL}}}
"""
# Three problems the spec's schema finds at once, each under its field.
BAD_SPEC = """
name: trn-bad
type: pre_training
trainer: tabular_classifier
datasets: [trn-data]
max_epochs: 0
hyperparameters: {epochs: 3}
"""
# A spec that parses but names a dataset nobody registered.
MISSING_DATASET_SPEC = SPEC.replace(f"[{DATASET}]", "[trn-nobody]").replace(PIPELINE, "trn-lost")
DEADLINE_S = 90.0


def wait_for(condition: Callable[[], Any], what: str, deadline_s: float = DEADLINE_S) -> Any:
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        found = condition()
        if found:
            return found
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def api_run(server: ServerProcess, run_id: int) -> dict[str, Any]:
    with server.http(timeout=30) as http:
        answer = http.get(f"/api/v1/runs/{run_id}")
        assert answer.status_code == 200, answer.text
        return dict(answer.json())


def run_id_of(answer: httpx.Response) -> int:
    assert answer.status_code == 303, answer.text[:800]
    found = re.fullmatch(r"/training/runs/(\d+)", answer.headers["location"])
    assert found is not None, answer.headers["location"]
    return int(found.group(1))


def by_id(page: str, element_id: str) -> str:
    """The text of the element with `element_id` (the first level of markup stripped)."""
    found = re.search(rf'id="{element_id}"[^>]*>(.*?)</', page, re.S)
    assert found is not None, f"no #{element_id}"
    return html.unescape(found.group(1)).strip()


def chart_data(page: str, element_id: str) -> dict[str, Any]:
    chart = rf'<figure class="chart" id="{element_id}">.*?data-chart="([^"]*)"'
    found = re.search(chart, page, re.S)
    assert found is not None, f"no chart #{element_id}"
    return dict(json.loads(html.unescape(found.group(1))))


@pytest.fixture(scope="module")
def admin(admin_session: Session) -> Session:
    return admin_session


@pytest.fixture(scope="module")
def viewer(dashboard_server: ServerProcess) -> Iterator[Session]:
    session = sign_in(dashboard_server, create_token(dashboard_server, "trn-viewer", "viewer"))
    yield session
    session.http.close()


@pytest.fixture(scope="module")
def dataset(dashboard_server: ServerProcess, tmp_path_factory: pytest.TempPathFactory) -> str:
    csv = tmp_path_factory.mktemp("trn") / "trn-data.csv"
    csv.write_text("a,b,label\n" + "".join(f"{i},{-i},{i % 2}\n" for i in range(24)))
    with Client(dashboard_server.url, token=dashboard_server.token) as client:
        client.register_dataset(Path(csv), DATASET)
    return DATASET


@pytest.fixture(scope="module")
def finished_run(dashboard_server: ServerProcess, admin: Session, dataset: str) -> int:
    """A pipeline created and started from the spec form, run to its end."""
    run_id = run_id_of(admin.post("/training/pipelines", {"spec": SPEC, "start": "1"}))
    run = wait_for(
        lambda: (r := api_run(dashboard_server, run_id))["status"] in {"completed", "failed"} and r,
        f"run {run_id} to end",
    )
    assert run["status"] == "completed", run
    return run_id


def pipeline_exists(server: ServerProcess, name: str) -> bool:
    with server.http(timeout=30) as http:
        return http.get(f"/api/v1/pipelines/{name}").status_code == 200


def test_trn_check_lists_every_spec_problem_under_its_field_and_creates_nothing(
    dashboard_server: ServerProcess, admin: Session, dataset: str
) -> None:
    answer = admin.post("/training/check", {"spec": BAD_SPEC}, htmx=True)
    assert answer.status_code == 200, answer.text
    fields = re.findall(r'<li data-field="([^"]+)">', answer.text)
    assert sorted(fields) == ["hyperparameters.epochs", "max_epochs", "result_model"]
    assert "The spec has 3 problems" in answer.text
    missing = admin.post("/training/check", {"spec": MISSING_DATASET_SPEC}, htmx=True)
    problem = r'<li data-field="datasets\[0\]"><code>[^<]*</code>: ([^<]*)</li>'
    found = re.search(problem, missing.text)
    assert found is not None and "trn-nobody" in html.unescape(found.group(1)), missing.text
    created = admin.post("/training/pipelines", {"spec": BAD_SPEC})
    assert created.status_code == 422
    assert re.search(r'<li data-field="max_epochs">', created.text)
    assert 'id="f-spec"' in created.text and "trn-bad" in created.text  # the spec kept
    assert not pipeline_exists(dashboard_server, "trn-bad")
    assert not pipeline_exists(dashboard_server, "trn-lost")


def test_trn_check_of_a_good_spec_shows_the_estimate_and_stores_nothing(
    dashboard_server: ServerProcess, admin: Session, dataset: str
) -> None:
    spec = SPEC.replace(PIPELINE, "trn-checked")
    answer = admin.post("/training/check", {"spec": spec}, htmx=True)
    assert answer.status_code == 200, answer.text
    assert "The spec is valid" in answer.text and "data-field" not in answer.text
    for figure in ("Memory", "Device", "Time", "Cost", "Storage", "Engine", "Start"):
        assert f"<dt>{figure}</dt>" in answer.text
    assert "<dt>Engine</dt><dd>local</dd>" in answer.text
    assert not pipeline_exists(dashboard_server, "trn-checked")


def test_trn_the_start_page_offers_both_ways_to_start(admin: Session, finished_run: int) -> None:
    page = admin.get("/training/start")
    assert page.status_code == 200
    text = page.text
    assert '<form id="start-form"' in text and 'action="/training/start"' in text
    assert '<label for="f-pipeline">Pipeline</label>' in text
    assert f'<option value="{PIPELINE}">' in text
    assert '<form id="spec-form"' in text and '<label for="f-spec">Spec</label>' in text
    assert 'hx-post="/training/check"' in text and 'id="spec-check"' in text
    assert 'name="start" value="1"' in text and "Create and start" in text


def test_trn_create_pipeline_from_the_form_shows_its_page(
    dashboard_server: ServerProcess, admin: Session, dataset: str
) -> None:
    spec = SPEC.replace(PIPELINE, "trn-made")
    answer = admin.post("/training/pipelines", {"spec": spec})
    assert answer.status_code == 303
    assert answer.headers["location"] == "/training/pipelines/trn-made"
    page = admin.get("/training/pipelines/trn-made")
    assert page.status_code == 200
    assert "<h1>trn-made</h1>" in page.text and "trainer: tabular_classifier" in page.text
    assert "Estimate of one run" in page.text and "<dt>Memory</dt>" in page.text
    assert 'action="/training/pipelines/trn-made/runs"' in page.text
    assert pipeline_exists(dashboard_server, "trn-made")


def test_trn_a_run_started_from_the_form_reaches_100_percent_with_curves_and_result(
    dashboard_server: ServerProcess, admin: Session, finished_run: int
) -> None:
    page = admin.get(f"/training/runs/{finished_run}")
    assert page.status_code == 200
    text = page.text
    assert f"<h1>Run {finished_run}</h1>" in text
    assert by_id(text, "run-status") == "completed"
    assert by_id(text, "run-percent") == "100 %"
    loss = chart_data(text, "loss-curve")
    assert loss["x"] and any(v is not None for s in loss["series"] for v in s["values"])
    accuracy = chart_data(text, "accuracy-curve")
    assert [s["label"] for s in accuracy["series"]] == ["val_accuracy"]
    version = api_run(dashboard_server, finished_run)["result_version"]
    assert f'id="run-result" href="/models/{RESULT_MODEL}/versions/{version}"' in text
    assert 'id="run-checkpoints"' in text and 'id="run-cost"' in text
    assert 'id="run-log"' in text and "/static/training.js" in text
    assert ">Cancel</button>" not in text and ">Resume</button>" not in text  # completed


def test_trn_the_tab_lists_the_pipeline_and_its_runs_filtered_by_status(
    admin: Session, finished_run: int
) -> None:
    page = admin.get("/training")
    assert page.status_code == 200
    text = page.text
    link = rf'<a href="/training/pipelines/{PIPELINE}">{PIPELINE}</a>(.*?)</tr>'
    row = re.search(link, text, re.S)
    assert row is not None and "tabular_classifier" in row.group(1) and "completed" in row.group(1)
    assert f'<a href="/training/runs/{finished_run}">{finished_run}</a>' in text
    assert f'href="/models/{RESULT_MODEL}/versions/' in text
    failed = admin.get("/training?status=failed")
    assert f'<a href="/training/runs/{finished_run}">' not in failed.text
    completed = admin.get("/training?status=completed")
    assert f'<a href="/training/runs/{finished_run}">' in completed.text
    engines = re.search(r'<table id="engines".*?<tbody>(.*?)</tbody>', text, re.S)
    assert engines is not None
    [local] = re.findall(r"<tr>(.*?)</tr>", engines.group(1), re.S)
    assert "<td>local</td>" in local and "online" in local and "100 %" in local  # success


def test_trn_the_run_events_route_streams_the_runs_feed_to_the_session(
    dashboard_server: ServerProcess, admin: Session, finished_run: int
) -> None:
    kinds, statuses = [], []
    url = f"/training/runs/{finished_run}/events"
    with admin.http.stream("GET", url, timeout=30) as stream:
        assert stream.status_code == 200
        assert stream.headers["content-type"].startswith("text/event-stream")
        for line in stream.iter_lines():
            if line.startswith("event: "):
                kinds.append(line.removeprefix("event: "))
            if line.startswith("data: ") and kinds[-1] == "status":
                statuses.append(json.loads(line.removeprefix("data: "))["data"]["status"])
    assert "progress" in kinds and "metrics" in kinds and "log" in kinds
    assert statuses[0] == "queued" and statuses[-1] == "completed"  # the stream ends there
    with httpx.Client(base_url=dashboard_server.url, timeout=30) as anonymous:
        assert anonymous.get(url).status_code == 401


def test_trn_cancel_and_resume_from_the_run_page(
    dashboard_server: ServerProcess, admin: Session, finished_run: int
) -> None:
    run_id = run_id_of(admin.post(f"/training/pipelines/{PIPELINE}/runs"))
    assert ">Cancel</button>" in admin.get(f"/training/runs/{run_id}").text
    assert run_id_of(admin.post(f"/training/runs/{run_id}/cancel")) == run_id
    wait_for(lambda: api_run(dashboard_server, run_id)["status"] == "cancelled", "the cancel")
    page = admin.get(f"/training/runs/{run_id}").text
    assert by_id(page, "run-status") == "cancelled" and ">Resume</button>" in page
    assert run_id_of(admin.post(f"/training/runs/{run_id}/resume")) == run_id
    assert api_run(dashboard_server, run_id)["status"] in {"queued", "running", "finishing"}
    admin.post(f"/training/runs/{run_id}/cancel")  # leave nothing running behind
    finished = admin.post(f"/training/runs/{finished_run}/cancel")
    assert finished.status_code == 409
    assert f"run {finished_run} is completed; there is nothing to cancel" in finished.text
    again = admin.post(f"/training/runs/{finished_run}/resume", htmx=True)
    assert again.status_code == 409 and "cannot become queued" in again.text


def test_trn_an_unknown_pipeline_or_run_is_the_services_not_found(admin: Session) -> None:
    assert admin.get("/training/pipelines/trn-nope").status_code == 404
    started = admin.post("/training/start", {"pipeline": "trn-nope"})
    assert started.status_code == 404 and "trn-nope" in started.text
    assert admin.get("/training/runs/999999").status_code == 404


def test_trn_a_viewer_sees_no_controls_and_a_forged_post_is_refused_and_audited(
    dashboard_server: ServerProcess, viewer: Session, finished_run: int
) -> None:
    tab = viewer.get("/training").text
    assert 'href="/training/start"' not in tab
    pipeline = viewer.get(f"/training/pipelines/{PIPELINE}").text
    assert "Start run" not in pipeline
    run = viewer.get(f"/training/runs/{finished_run}").text
    assert "run-status" in run and "/cancel" not in run and "/resume" not in run
    assert viewer.get("/training/start").status_code == 403
    forged = [
        viewer.post(f"/training/runs/{finished_run}/resume"),
        viewer.post("/training/pipelines", {"spec": SPEC.replace(PIPELINE, "trn-forged")}),
        viewer.post(f"/training/pipelines/{PIPELINE}/runs"),
        viewer.post("/training/check", {"spec": SPEC}, htmx=True),
    ]
    assert [answer.status_code for answer in forged] == [403, 403, 403, 403]
    assert not pipeline_exists(dashboard_server, "trn-forged")
    with Client(dashboard_server.url, token=dashboard_server.token) as client:
        denied = client.audit_events(actor="trn-viewer", action="auth.denied", limit=50)
    assert len(denied) >= 4


def test_trn_a_post_without_the_csrf_token_is_refused(
    dashboard_server: ServerProcess, admin: Session, dataset: str
) -> None:
    spec = SPEC.replace(PIPELINE, "trn-no-csrf")
    answer = admin.http.post("/training/pipelines", data={"spec": spec})
    assert answer.status_code == 403 and "CSRF" in answer.text
    assert admin.http.post("/training/start", data={"pipeline": PIPELINE}).status_code == 403
    assert not pipeline_exists(dashboard_server, "trn-no-csrf")
