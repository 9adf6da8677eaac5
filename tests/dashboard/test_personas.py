"""The personas tab against the shared dashboard server: a persona created and fed through
the API (labels, a duplicate, an e-mail address to blank) is listed with the version its
alias resolves to and shown with its counts and policy; the admin's "Dry run" says what
a cycle would do and "Learn now" records a cycle (skipped: too few held-out
interactions, so nothing trains); a viewer and a developer who does not own it are
offered neither, and their posts are refused. In Chromium the pages pass axe, log no
error and fit a phone; their screenshots are docs/img/dashboard-personas*.png.

A cycle that trained and was evaluated costs a real fine-tuning, so its row and the
accuracy chart are checked by rendering the page's template with such a record."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from html import unescape
from typing import Any

import pytest

from modelhub.client import Client, RegisterRequest
from modelhub.dashboard.render import TABS, TEMPLATES
from modelhub.dashboard.routes_personas import accuracy_chart
from modelhub.domain.auth import Action
from modelhub.domain.persona_pages import ModelInUse, PersonaPage
from modelhub.domain.personas import (
    Cycle,
    CycleStatus,
    CycleStep,
    Evaluation,
    Persona,
    PersonaCounts,
    PersonaPolicy,
    PersonaView,
)
from tests.dashboard.browser import PHONE, Tab, open_tab
from tests.dashboard.browser import sign_in as browser_sign_in
from tests.dashboard.conftest import Session, create_token, sign_in, write_safetensors
from tests.integration.conftest import ServerProcess

PERSONA = "per-ada"
MODEL = "per-intents"
CHAT = "per-chat"  # two versions: the persona's chat model is called as @latest, v2
POLICY = "holdout: 0.5\nmargin: 0.03\ntriggers: {new_labels: 500, schedule: 7d}\n"
INTERACTIONS = [
    {"id": "i1", "message": "hello there", "response": "greeting", "version": 1,
     "feedback": {"thumbs": "up"}},
    {"id": "i2", "message": "bye now", "response": "greeting", "version": 1,
     "feedback": {"correction": "farewell"}},
    {"id": "i3", "message": "write to ada@example.com", "response": "greeting", "version": 1,
     "feedback": {"label": "contact"}},
    {"id": "i4", "message": "good morning", "response": "greeting", "version": 1,
     "feedback": {"label": "greeting"}},
    {"id": "i5", "message": "is it raining", "response": "weather", "version": 1,
     "feedback": {"thumbs": "down"}},
    {"id": "i1", "message": "hello there", "response": "greeting", "version": 1,
     "feedback": {"thumbs": "up"}},
]  # fmt: skip


@pytest.fixture(scope="module")
def persona(
    dashboard_server: ServerProcess, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Any]:
    """The persona, its model (one version, so its alias resolves to v1) and its
    interactions, all through the API, as the admin."""
    weights = write_safetensors(tmp_path_factory.mktemp("per") / "w.safetensors")
    with Client(dashboard_server.url, token=dashboard_server.token) as client:
        client.register(RegisterRequest(name=MODEL, type="classification"), weights)
        for seed in (1, 2):
            chat = write_safetensors(weights.with_name(f"chat{seed}.safetensors"), seed)
            client.register(RegisterRequest(name=CHAT, type="generation"), chat)
    with dashboard_server.http(timeout=60) as http:
        made = http.post(
            "/api/v1/personas",
            json={"name": PERSONA, "model": MODEL, "chat_model": CHAT, "policy": POLICY},
        )
        assert made.status_code == 201, made.text
        fed = http.post(
            f"/api/v1/personas/{PERSONA}/interactions", json={"interactions": INTERACTIONS}
        )
        assert fed.status_code == 200, fed.text
        report = fed.json()
    assert (report["added"], report["duplicates"], report["scrubbed"]) == (5, 1, {"email": 1})
    found: dict[str, Any] = made.json()
    return found


@pytest.fixture(scope="module")
def viewer(dashboard_server: ServerProcess) -> Iterator[Session]:
    session = sign_in(dashboard_server, create_token(dashboard_server, "per-viewer", "viewer"))
    try:
        yield session
    finally:
        session.http.close()


@pytest.fixture(scope="module")
def developer(dashboard_server: ServerProcess) -> Iterator[Session]:
    token = create_token(dashboard_server, "per-dev", "developer")
    session = sign_in(dashboard_server, token)
    try:
        yield session
    finally:
        session.http.close()


def text(html: str) -> str:
    return " ".join(unescape(re.sub(r"<[^>]+>", " ", html)).split())


def test_the_list_shows_each_persona_with_its_models_and_figures(
    admin_session: Session, persona: dict[str, Any]
) -> None:
    page = admin_session.get("/personas")
    assert page.status_code == 200
    assert '<a href="/personas" aria-current="page">Personas</a>' in page.text
    row = re.search(rf'<tr data-persona="{PERSONA}">(.*?)</tr>', page.text, re.S)
    assert row is not None, "the persona is not listed"
    cells = row.group(1)
    assert f'<a href="/personas/{PERSONA}">{PERSONA}</a>' in cells
    assert f"<td>{persona['owner']}</td>" in cells
    assert f'<a href="/models/{MODEL}">{MODEL}@{PERSONA}</a>' in cells
    assert f'<a href="/models/{MODEL}/versions/1">v1</a>' in cells
    assert f'<a href="/models/{CHAT}">{CHAT}@latest</a>' in cells
    assert f'<a href="/models/{CHAT}/versions/2">v2</a>' in cells
    assert 'data-figure="interactions">5<' in cells
    assert 'data-figure="labelled">4<' in cells  # a thumbs down without a correction: none


def test_the_persona_page_shows_models_counts_and_policy(
    dashboard_server: ServerProcess, admin_session: Session, persona: dict[str, Any]
) -> None:
    page = admin_session.get(f"/personas/{PERSONA}")
    assert page.status_code == 200
    html = page.text
    models = text(html.split('id="persona-models">')[1].split("</dd>")[0])
    assert models == f"{MODEL}@{PERSONA} → v1 {CHAT}@latest → v2 (chat)"
    counts = dict(re.findall(r'data-count="(\w+)">([^<]*)<', html))
    with dashboard_server.http(timeout=30) as http:
        shown = http.get(f"/api/v1/personas/{PERSONA}").json()["counts"]
    assert {key: str(value) for key, value in shown.items()} == counts  # the API's figures
    assert counts["interactions"] == "5" and counts["labelled"] == "4"
    assert counts["duplicates"] == "1" and counts["scrubbed"] == "1"
    policy = text(html.split('id="policy"')[1].split("</section>")[0])
    assert "after 500 new labelled interactions; every 7d with new labels" in policy
    assert "50 % of interactions" in policy and "gain at least 3 points" in policy
    assert "the staging gate" in policy and "50 % of requests" in policy
    assert "learns once 10 preference pairs exist" in policy
    assert 'id="cycles-empty"' in html or 'id="cycles-table"' in html
    assert html.count("<h1") == 1


def test_dry_run_and_learn_now(
    dashboard_server: ServerProcess, admin_session: Session, persona: dict[str, Any]
) -> None:
    page = admin_session.get(f"/personas/{PERSONA}").text
    assert f'action="/personas/{PERSONA}/learn"' in page
    assert f'action="/personas/{PERSONA}/plan"' in page
    # Dry run: the fragment for htmx, the whole page with it without JavaScript.
    fragment = admin_session.post(f"/personas/{PERSONA}/plan", htmx=True)
    assert fragment.status_code == 200 and "<html" not in fragment.text
    would = re.search(r'id="plan-would">([^<]*)<', fragment.text)
    assert would is not None and would.group(1).startswith("skip: ")
    with dashboard_server.http(timeout=30) as http:
        planned = http.get(f"/api/v1/personas/{PERSONA}/learn").json()
    assert unescape(would.group(1)) == planned["would"]  # what the API's dry run says
    whole = admin_session.post(f"/personas/{PERSONA}/plan")
    assert whole.status_code == 200 and 'id="plan-would"' in whole.text and "<h1" in whole.text
    before = len(re.findall(r'<tr id="cycle-\d+"', page))
    # Learn now: a cycle is recorded (skipped, saying why), and the page shows it.
    learnt = admin_session.post(f"/personas/{PERSONA}/learn")
    number = before + 1
    assert learnt.status_code == 303
    assert learnt.headers["location"] == f"/personas/{PERSONA}#cycle-{number}"
    after = admin_session.get(f"/personas/{PERSONA}").text
    row = re.search(rf'<tr id="cycle-{number}" data-status="skipped">(.*?)</tr>', after, re.S)
    assert row is not None, "the new cycle is not in the history"
    assert "manual" in row.group(1) and "skipped: " in unescape(row.group(1))
    assert 'id="accuracy-chart-empty"' in after  # nothing was evaluated
    by_htmx = admin_session.post(f"/personas/{PERSONA}/learn", htmx=True)
    assert by_htmx.status_code == 204 and by_htmx.headers["hx-refresh"] == "true"
    listed = admin_session.get("/personas").text
    assert f'href="/personas/{PERSONA}#cycle-{number + 1}">#{number + 1}</a>' in listed


def test_who_may_not_learn_sees_no_actions_and_is_refused(
    dashboard_server: ServerProcess,
    viewer: Session,
    developer: Session,
    admin_session: Session,
    persona: dict[str, Any],
) -> None:
    with dashboard_server.http(timeout=30) as http:
        before = len(http.get(f"/api/v1/personas/{PERSONA}/history").json())
    for session in (viewer, developer):
        page = session.get(f"/personas/{PERSONA}")
        assert page.status_code == 200
        assert 'id="persona-actions"' not in page.text and ">Learn now<" not in page.text
    for path in (f"/personas/{PERSONA}/learn", f"/personas/{PERSONA}/plan"):
        forged = viewer.post(path)
        assert forged.status_code == 403
        assert "per-viewer (viewer) may not personas.learn" in forged.text
    # A developer may learn, but only on their own personas: the service's refusal.
    theirs = developer.post(f"/personas/{PERSONA}/learn", htmx=True)
    assert theirs.status_code == 403 and 'class="error"' in theirs.text
    assert f"may personas.learn only personas they own (owner: {persona['owner']})" in theirs.text
    no_csrf = admin_session.http.post(f"/personas/{PERSONA}/learn", data={})
    assert no_csrf.status_code == 403 and "CSRF" in no_csrf.text
    with dashboard_server.http(timeout=30) as http:
        denied = http.get(
            "/api/v1/audit", params={"actor": "per-viewer", "action": "auth.denied"}
        ).json()
        cycles = http.get(f"/api/v1/personas/{PERSONA}/history").json()
    assert any(e["target"] == f"POST /personas/{PERSONA}/learn" for e in denied)
    assert len(cycles) == before  # none of the refused posts started one


def test_unknown_persona(admin_session: Session, persona: dict[str, Any]) -> None:
    missing = admin_session.get("/personas/per-nobody")
    assert missing.status_code == 404 and "per-nobody" in missing.text
    assert admin_session.post("/personas/per-nobody/learn").status_code == 404


def test_a_cycles_dataset_has_its_page(
    dashboard_server: ServerProcess,
    viewer: Session,
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """The page a cycle's data links to, with a dataset registered as cycles register
    theirs (JSONL of text and label), seen by a viewer."""
    data = tmp_path_factory.mktemp("per-data") / "rows.jsonl"
    data.write_text('{"text": "hi", "label": "greeting"}\n{"text": "bye", "label": "farewell"}\n')
    with Client(dashboard_server.url, token=dashboard_server.token) as client:
        made = client.register_dataset(data, "per-data")
    page = viewer.get(f"/datasets/per-data/{made.version}")
    assert page.status_code == 200
    facts = text(page.text.split('id="dataset-facts"')[1].split("</dl>")[0])
    assert "Rows 2" in facts and f"sha256:{made.digest}" in facts and "jsonl" in facts
    assert viewer.get("/datasets/per-data/99").status_code == 404
    assert viewer.get("/datasets/per-data/0").status_code == 400


def render(template: str, **context: Any) -> str:
    return TEMPLATES.env.get_template(template).render(
        can=lambda _: False, csrf="x", caller=None, tabs=TABS, tab="personas",
        now=datetime.now(UTC), auth_on=True, Action=Action, **context,
    )  # fmt: skip


def test_the_empty_list_says_how_to_create_one() -> None:
    html = text(render("personas/list.html", summaries=[]))
    assert "No personas yet: create one with modelhub personas create NAME --model MODEL" in html


def evaluated_page() -> tuple[str, dict[str, Any]]:
    """The persona page rendered with a skipped cycle and two evaluated ones (promoted,
    then rejected), and the chart data it draws."""
    at = datetime(2026, 12, 1, tzinfo=UTC)
    steps = [
        CycleStep(step="governance", outcome="passed", at=at, details={"stage": "staging"}),
        CycleStep(step="canary", outcome="skipped", at=at,
                  details={"reason": "no running deployment serves it"}),
    ]  # fmt: skip
    evaluation = Evaluation(
        heldout=40, serving_accuracy=0.5, candidate_accuracy=0.875, candidate_only_right=15,
        serving_only_right=1, p_value=0.00026, margin=0.05, alpha=0.05, better=True,
    )  # fmt: skip
    cycles = [
        Cycle(id=1, persona="p", number=1, trigger="new_labels", status=CycleStatus.SKIPPED,
              watermark=3, started_at=at, decision="skipped: too few"),
        Cycle(id=2, persona="p", number=2, trigger="new_labels", status=CycleStatus.PROMOTED,
              serving_version=1, candidate_version=2, run_id=7, dataset="persona-p-train@1",
              heldout_dataset="persona-p-heldout@1", watermark=80, evaluation=evaluation,
              steps=steps, started_at=at, decision="promoted: candidate better"),
        Cycle(id=3, persona="p", number=3, trigger="manual", status=CycleStatus.REJECTED,
              serving_version=2, candidate_version=3, run_id=9, watermark=120,
              evaluation=evaluation.model_copy(update={
                  "serving_accuracy": 0.875, "candidate_accuracy": 0.8125, "better": False}),
              started_at=at, decision="rejected: the candidate is not better"),
    ]  # fmt: skip
    persona = Persona(
        name="p", model="m", alias="p", policy=PersonaPolicy(), owner="ada",
        created_at=at, updated_at=at,
    )  # fmt: skip
    counts = PersonaCounts(
        interactions=100, labelled=90, held_out=20, new_labelled=0, duplicates=2, scrubbed=1
    )
    found = PersonaPage(
        view=PersonaView(persona=persona, serving_version=2, counts=counts,
                         last_cycle=cycles[-1], cycles_by_status={"skipped": 1, "promoted": 1,
                                                             "rejected": 1}),
        models=[ModelInUse(role="intents", model="m", alias="p", version=2)],
        history=cycles, may_learn=False,
    )  # fmt: skip
    chart = accuracy_chart(cycles)
    html = render("personas/detail.html", view=found, persona=persona, plan=None, chart=chart)
    return html, chart


def test_an_evaluated_cycle_fills_its_row_and_the_chart() -> None:
    html, chart = evaluated_page()
    assert chart["x"] == [2, 3] and chart["time"] is False
    assert [s["values"] for s in chart["series"]] == [[50.0, 87.5], [87.5, 81.25]]
    drawn = re.search(r'id="accuracy-chart">.*?data-chart="([^"]*)"', html, re.S)
    assert drawn is not None and json.loads(unescape(drawn.group(1))) == chart
    row = html.split('<tr id="cycle-2" data-status="promoted">')[1].split("</tr>")[0]
    shown = text(row)
    for expected in (
        "persona-p-train@1", "held out: persona-p-heldout@1", "run 7", "50.0 % v1",
        "87.5 % v2", "better p = 0.00026 (\u03b1 0.05), 15 vs 1 discordant, 40 held out",
        "passed (staging)", "skipped no running deployment serves it", "promoted",
        "promoted: candidate better",
    ):  # fmt: skip
        assert expected in shown, (expected, shown)
    assert '<a href="/training/runs/7">run 7</a>' in row
    assert '<a href="/datasets/persona-p-train/1">persona-p-train@1</a>' in row
    assert '<a href="/datasets/persona-p-heldout/1">persona-p-heldout@1</a>' in row
    assert "1 promoted, 1 rejected, 1 skipped" in text(html)
    rejected = text(html.split('<tr id="cycle-3" data-status="rejected">')[1].split("</tr>")[0])
    assert "not better" in rejected and "87.5 % v2" in rejected and "81.2 % v3" in rejected


def checked(tab: Tab, shot: str) -> None:
    tab.page.wait_for_load_state("networkidle")
    assert tab.serious_accessibility_violations() == [], shot
    assert tab.errors == [], (shot, tab.errors)
    tab.screenshot(shot)


def test_in_the_browser(chromium: Any, dashboard_server: ServerProcess, persona: Any) -> None:
    """Dry run and learn from the page (htmx), then each page is checked and photographed
    at 1280 px and, dark, at 390 px, where nothing may scroll sideways."""
    tab = open_tab(chromium, dashboard_server.url)
    try:
        browser_sign_in(tab, dashboard_server.token, f"/personas/{PERSONA}")
        page = tab.page
        before = page.locator("#cycles-table tbody tr").count()
        page.get_by_role("button", name="Learn now").click()
        page.locator(f"#cycle-{before + 1}").wait_for()
        page.get_by_role("button", name="Dry run").click()
        page.locator("#plan-would").wait_for()
        assert page.locator("#plan-would").inner_text().startswith("skip: ")
        checked(tab, "personas")
        page.goto("/personas")
        checked(tab, "personas-list")
        # The accuracy chart, drawn by dashboard.js from an evaluated history: the page
        # rendered here is answered for a path of the server, whose scripts then load.
        html = evaluated_page()[0]
        page.route("**/personas-evaluated", lambda route: route.fulfill(body=html))
        page.goto("/personas-evaluated")
        page.locator("#accuracy-chart canvas").first.wait_for()
        checked(tab, "personas-chart")
    finally:
        tab.page.context.close()
    phone = open_tab(chromium, dashboard_server.url, viewport=PHONE, dark=True)
    try:
        browser_sign_in(phone, dashboard_server.token, f"/personas/{PERSONA}")
        for path, shot in ((f"/personas/{PERSONA}", "personas-phone"), ("/personas", None)):
            phone.page.goto(path)
            phone.page.wait_for_load_state("networkidle")
            width = phone.page.evaluate("() => document.documentElement.scrollWidth")
            assert width <= PHONE["width"], f"{path} scrolls sideways ({width} px)"
            assert phone.serious_accessibility_violations() == [], path
            if shot:
                phone.screenshot(shot)
        assert phone.errors == []
    finally:
        phone.page.context.close()
