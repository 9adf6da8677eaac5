"""The Model Registry tab against a real server: the models table, a model, a version,
and each action (register, import, stage, alias, download) with its bad inputs."""

from __future__ import annotations

import hashlib
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from modelhub.client import Client
from modelhub.services.registry import RegisterRequest
from tests.dashboard.conftest import Session, create_token, sign_in, write_safetensors
from tests.integration.conftest import ServerProcess

MODELS = 60
ROW_LINK = re.compile(r'<td><a href="/models/(reg-list-\d+)">')


@pytest.fixture(scope="module")
def weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_safetensors(tmp_path_factory.mktemp("reg-weights") / "model.safetensors")


@pytest.fixture(scope="module")
def seeded(dashboard_server: ServerProcess, weights: Path) -> list[str]:
    """60 models through the API: types and tags alternate; reg-list-007 has 3 versions."""
    names = [f"reg-list-{i:03d}" for i in range(MODELS)]
    with Client(dashboard_server.url, token=dashboard_server.token) as client:
        for i, name in enumerate(names):
            request = RegisterRequest(
                name=name,
                type="classification" if i % 2 else "embedding_model",
                description=f"listing model {i}",
                tags={"team": "odd" if i % 2 else "even"},
                metrics={"accuracy": 0.9},
            )
            client.register(request, weights)
        for _ in range(2):
            client.register(RegisterRequest(name="reg-list-007"), weights)
    return names


@pytest.fixture(scope="module")
def viewer(dashboard_server: ServerProcess) -> Iterator[Session]:
    session = sign_in(dashboard_server, create_token(dashboard_server, "reg-viewer", "viewer"))
    try:
        yield session
    finally:
        session.http.close()


def api_get(server: ServerProcess, path: str, **params: object) -> httpx.Response:
    with server.http(timeout=30) as http:
        return http.get(path, params=params)


def rows(html: str) -> list[str]:
    return ROW_LINK.findall(html)


# -- the models table ---------------------------------------------------------------


def test_the_table_pages_fifty_models_and_counts_them_all(
    admin_session: Session, seeded: list[str]
) -> None:
    first = admin_session.get("/models", params={"q": "reg-list-"})
    assert first.status_code == 200
    assert rows(first.text) == seeded[:50]
    assert "Page 1 of 2 · 60 in all" in first.text
    assert 'href="/models?q=reg-list-&amp;page=2" rel="next"' in first.text
    second = admin_session.get("/models", params={"q": "reg-list-", "page": 2})
    assert rows(second.text) == seeded[50:]
    assert 'rel="prev"' in second.text and 'rel="next"' not in second.text


def test_the_table_filters_by_type_tag_and_stage(admin_session: Session, seeded: list[str]) -> None:
    by_type = admin_session.get("/models", params={"q": "reg-list-", "type": "embedding_model"})
    assert rows(by_type.text) == seeded[0::2]
    by_tag = admin_session.get("/models", params={"q": "reg-list-", "tag": "team=odd"})
    assert rows(by_tag.text) == seeded[1::2]
    none = admin_session.get("/models", params={"q": "reg-list-", "stage": "production"})
    assert rows(none.text) == [] and "No model matches these filters" in none.text
    bad = admin_session.get("/models", params={"type": "spaceship"})
    assert bad.status_code == 400 and "spaceship" in bad.text


def test_the_table_shows_each_models_figures(admin_session: Session, seeded: list[str]) -> None:
    page = admin_session.get("/models", params={"q": "reg-list-007"}).text
    assert rows(page) == ["reg-list-007"]
    row = page[page.index('href="/models/reg-list-007"') :]
    row = row[: row.index("</tr>")]
    assert "classification" in row and "safetensors" in row
    assert 'href="/models/reg-list-007/versions/3">v3</a>' in row
    assert '<span class="badge development">development</span>' in row
    assert "team=odd" in row
    assert re.search(r"\d+ B</td>", row)  # the latest version's size, for people
    assert "just now" in row


def test_the_table_sorts_by_versions_and_name_both_ways(
    admin_session: Session, seeded: list[str]
) -> None:
    by_versions = admin_session.get(
        "/models", params={"q": "reg-list-", "sort": "versions", "order": "desc"}
    )
    assert rows(by_versions.text)[0] == "reg-list-007"
    assert 'aria-sort="descending"' in by_versions.text
    by_name = admin_session.get(
        "/models", params={"q": "reg-list-", "sort": "name", "order": "desc"}
    )
    assert rows(by_name.text)[:2] == ["reg-list-059", "reg-list-058"]
    bad = admin_session.get("/models", params={"sort": "colour"})
    assert bad.status_code == 400 and "unknown sort" in bad.text


def test_htmx_gets_the_table_alone(admin_session: Session, seeded: list[str]) -> None:
    answer = admin_session.get(
        "/models",
        params={"q": "reg-list-01"},
        headers={"hx-request": "true", "hx-target": "models-table"},
    )
    assert answer.status_code == 200
    assert answer.text.lstrip().startswith('<div id="models-table">')
    assert "<html" not in answer.text
    assert rows(answer.text) == [f"reg-list-01{i}" for i in range(10)]


def test_the_filter_form_works_without_and_with_htmx(admin_session: Session) -> None:
    page = admin_session.get("/models").text
    form = page[page.index('<form class="toolbar registry-filters"') :]
    form = form[: form.index("</form>")]
    assert 'method="get" action="/models"' in form
    assert 'hx-get="/models" hx-target="#models-table"' in form and 'hx-push-url="true"' in form
    for field in ("q", "type", "framework", "stage", "tag"):
        assert f'name="{field}"' in form


# -- a model and a version ----------------------------------------------------------


def test_the_model_page_lists_its_versions(admin_session: Session, seeded: list[str]) -> None:
    page = admin_session.get("/models/reg-list-007")
    assert page.status_code == 200
    assert page.text.count("<h1>") == 1 and "<h1>reg-list-007</h1>" in page.text
    assert "listing model 7" in page.text and "classification" in page.text
    for number in (1, 2, 3):
        assert f'href="/models/reg-list-007/versions/{number}">v{number}</a>' in page.text
    assert "accuracy 0.9" in page.text
    assert 'latest → <a href="/models/reg-list-007/versions/3">v3</a>' in page.text
    assert admin_session.get("/models/reg-no-such-model").status_code == 404


def test_the_version_page_shows_inspection_files_card_and_governance(
    admin_session: Session, seeded: list[str], weights: Path
) -> None:
    page = admin_session.get("/models/reg-list-007/versions/3")
    assert page.status_code == 200
    html = page.text
    assert "<h1>reg-list-007 v3</h1>" in html and html.count("<h1>") == 1
    inspection = html[html.index('id="inspection"') : html.index('id="metrics"')]
    assert "<dd>safetensors</dd>" in inspection
    assert '<span title="40">40</span>' in inspection  # 8x4 weights and 8 biases
    assert "<dt>Precision</dt><dd>fp32</dd>" in inspection
    digest = hashlib.sha256(weights.read_bytes()).hexdigest()
    assert f'<code class="reg-digest">{digest}</code>' in html
    assert 'href="/models/reg-list-007/versions/3/files/model.safetensors"' in html
    assert "layer.weight" in html or "Signature" in html
    assert 'id="model-card"' in html and "<h3>" in html  # the card, under the page's headings
    assert 'href="/governance/reg-list-007/3"' in html
    assert "Production gate" in html
    for form in ('id="deploy-form"', 'id="stage-form"', 'id="alias-form"'):
        assert form in html
    deploy = html[html.index('id="deploy-form"') :]
    deploy = deploy[: deploy.index("</form>")]
    assert 'action="/deployments"' in deploy
    assert 'id="f-deployment" name="deployment" type="text" value="reg-list-007"' in deploy
    assert 'name="model" value="reg-list-007"' in deploy and 'name="version" value="3"' in deploy
    assert '<option value="production"' in deploy and '<option value="staging"' in deploy
    assert 'id="f-replicas" name="replicas" type="number" value="1"' in deploy
    assert ">Deploy</button>" in deploy
    assert admin_session.get("/models/reg-list-007/versions/99").status_code == 404


def test_a_stage_change_and_an_alias_land_in_the_registry(
    dashboard_server: ServerProcess, admin_session: Session, seeded: list[str]
) -> None:
    moved = admin_session.post("/models/reg-list-003/versions/1/stage", {"stage": "staging"})
    assert moved.status_code == 303
    assert moved.headers["location"] == "/models/reg-list-003/versions/1"
    version = api_get(dashboard_server, "/api/v1/models/reg-list-003/versions/1").json()
    assert version["stage"] == "staging"
    aliased = admin_session.post("/models/reg-list-003/versions/1/alias", {"alias": "champion"})
    assert aliased.status_code == 303
    named = api_get(dashboard_server, "/api/v1/models/reg-list-003/versions/champion")
    assert named.json()["version"] == 1
    assert "@champion" in admin_session.get("/models/reg-list-003/versions/1").text
    assert "champion → " in admin_session.get("/models/reg-list-003").text


def test_the_production_gate_answers_with_the_policys_message(
    dashboard_server: ServerProcess, admin_session: Session, seeded: list[str]
) -> None:
    staged = admin_session.post("/models/reg-list-005/versions/1/stage", {"stage": "staging"})
    assert staged.status_code == 303
    refused = admin_session.post(
        "/models/reg-list-005/versions/1/stage", {"stage": "production"}, htmx=True
    )
    assert refused.status_code == 409
    assert 'data-code="illegal_transition"' in refused.text and "production" in refused.text
    with dashboard_server.http(timeout=30) as http:
        api = http.post(
            "/api/v1/models/reg-list-005/versions/1/stage", json={"stage": "production"}
        )
    assert api.status_code == 409
    assert api.json()["error"]["message"] in refused.text.replace("&#39;", "'")
    stage = api_get(dashboard_server, "/api/v1/models/reg-list-005/versions/1").json()["stage"]
    assert stage == "staging"


def test_download_streams_the_stored_file(
    admin_session: Session, seeded: list[str], weights: Path
) -> None:
    answer = admin_session.get("/models/reg-list-002/versions/1/files/model.safetensors")
    assert answer.status_code == 200
    expected = hashlib.sha256(weights.read_bytes()).hexdigest()
    assert hashlib.sha256(answer.content).hexdigest() == expected
    assert answer.headers["x-content-sha256"] == expected
    assert "attachment" in answer.headers["content-disposition"]
    missing = admin_session.get("/models/reg-list-002/versions/1/files/nothing.bin")
    assert missing.status_code == 404
    escaping = admin_session.get("/models/reg-list-002/versions/1/files/a/%2e%2e/%2e%2e/x")
    assert escaping.status_code == 400 and "unsafe file path" in escaping.text


# -- register and import --------------------------------------------------------------


def test_the_register_form_has_its_fields(admin_session: Session) -> None:
    page = admin_session.get("/models/register").text
    assert 'id="register-form"' in page and 'enctype="multipart/form-data"' in page
    for ident, label in (
        ("f-name", "Name"),
        ("f-type", "Type"),
        ("f-description", "Description"),
        ("f-license", "License"),
        ("f-tags", "Tags"),
        ("f-files", "Model files"),
        ("f-folder", "Or a folder"),
    ):
        assert f'<label for="{ident}">{label}</label>' in page
    assert 'type="file" multiple' in page and "webkitdirectory" in page
    assert '<option value="classification"' in page
    assert ">Register</button>" in page


def test_registering_through_the_form_lands_a_version(
    dashboard_server: ServerProcess, admin_session: Session, weights: Path
) -> None:
    answer = admin_session.post(
        "/models/register",
        {
            "name": "reg-form",
            "type": "classification",
            "description": "from the form",
            "license": "apache-2.0",
            "tags": "team=forms, lang=en",
        },
        files=[("files", ("model.safetensors", weights.read_bytes(), "application/octet-stream"))],
    )
    assert answer.status_code == 303, answer.text[:500]
    assert answer.headers["location"] == "/models/reg-form/versions/1"
    model = api_get(dashboard_server, "/api/v1/models/reg-form").json()
    assert model["tags"] == {"lang": "en", "team": "forms"} and model["license"] == "apache-2.0"
    assert admin_session.get("/models/reg-form/versions/1").status_code == 200


def test_registering_a_folder_keeps_its_relative_paths(
    dashboard_server: ServerProcess, admin_session: Session, weights: Path
) -> None:
    files = [
        ("folder", ("tiny/model.safetensors", weights.read_bytes(), "application/octet-stream")),
        ("folder", ("tiny/extra/notes.txt", b"notes", "text/plain")),
    ]
    answer = admin_session.post(
        "/models/register", {"name": "reg-folder", "type": "custom"}, files=files
    )
    assert answer.status_code == 303, answer.text[:500]
    version = api_get(dashboard_server, "/api/v1/models/reg-folder/versions/1").json()
    assert sorted(f["path"] for f in version["files"]) == ["extra/notes.txt", "model.safetensors"]


def test_a_file_that_is_not_a_model_is_refused_with_the_clis_message(
    dashboard_server: ServerProcess, admin_session: Session
) -> None:
    junk = [("files", ("notes.txt", b"not a model at all", "text/plain"))]
    fields = {"name": "reg-junk", "type": "custom"}
    plain = admin_session.post("/models/register", fields, files=junk)
    assert plain.status_code == 400
    assert 'id="register-form"' in plain.text and 'role="alert"' in plain.text
    assert 'value="reg-junk"' in plain.text  # the form keeps what was typed
    htmx = admin_session.post("/models/register", fields, files=junk, htmx=True)
    assert htmx.status_code == 400 and "<html" not in htmx.text
    message = re.search(r'role="alert"[^>]*>([^<]+)<', htmx.text)
    assert message is not None and message.group(1) in plain.text
    assert api_get(dashboard_server, "/api/v1/models/reg-junk").status_code == 404


def test_a_bad_name_or_no_file_is_refused_and_nothing_is_registered(
    dashboard_server: ServerProcess, admin_session: Session, weights: Path
) -> None:
    upload = [("files", ("model.safetensors", weights.read_bytes(), "application/octet-stream"))]
    bad_name = admin_session.post(
        "/models/register", {"name": "Reg Bad!", "type": "custom"}, files=upload
    )
    assert bad_name.status_code == 400 and "Reg Bad!" in bad_name.text
    no_file = admin_session.post("/models/register", {"name": "reg-nofile", "type": "custom"})
    assert no_file.status_code == 400 and "choose a model file" in no_file.text
    assert api_get(dashboard_server, "/api/v1/models/reg-nofile").status_code == 404


def test_import_by_path_inside_the_import_folder(
    dashboard_server: ServerProcess, admin_session: Session, weights: Path
) -> None:
    folder = dashboard_server.home / "imports"
    folder.mkdir(exist_ok=True)
    source = shutil.copy(weights, folder / "reg-imported.safetensors")
    page = admin_session.get("/models/import").text
    assert 'id="import-form"' in page and '<label for="f-path">Path on the server</label>' in page
    assert str(folder) in page and ">Import</button>" in page
    answer = admin_session.post(
        "/models/import", {"path": str(source), "name": "reg-imported", "type": "classification"}
    )
    assert answer.status_code == 303, answer.text[:500]
    assert answer.headers["location"] == "/models/reg-imported/versions/1"
    version = api_get(dashboard_server, "/api/v1/models/reg-imported/versions/1").json()
    assert version["digest"] == hashlib.sha256(weights.read_bytes()).hexdigest()
    assert Path(source).exists()  # copied, never moved


def test_import_outside_the_import_folder_is_refused(
    dashboard_server: ServerProcess, admin_session: Session, weights: Path, tmp_path: Path
) -> None:
    outside = shutil.copy(weights, tmp_path / "elsewhere.safetensors")
    folder = dashboard_server.home / "imports"
    folder.mkdir(exist_ok=True)
    sneaky = folder / "reg-link.safetensors"
    sneaky.unlink(missing_ok=True)
    sneaky.symlink_to(outside)  # a link inside that points outside counts as outside
    for path in (str(outside), str(sneaky), f"{folder}/../admin.token"):
        answer = admin_session.post(
            "/models/import", {"path": path, "name": "reg-outside", "type": "custom"}
        )
        assert answer.status_code == 400, path
        assert "outside the folders this server imports from" in answer.text
        assert str(folder) in answer.text
    assert api_get(dashboard_server, "/api/v1/models/reg-outside").status_code == 404


# -- who may do what ----------------------------------------------------------------


def test_a_viewer_sees_no_controls_and_a_forged_post_is_refused_and_audited(
    dashboard_server: ServerProcess, viewer: Session, seeded: list[str]
) -> None:
    listing = viewer.get("/models").text
    assert 'href="/models/register"' not in listing and 'href="/models/import"' not in listing
    page = viewer.get("/models/reg-list-004/versions/1")
    assert page.status_code == 200
    for control in ('id="deploy-form"', 'id="stage-form"', 'id="alias-form"'):
        assert control not in page.text
    assert viewer.get("/models/register").status_code == 403
    forged = viewer.post("/models/reg-list-004/versions/1/stage", {"stage": "staging"})
    assert forged.status_code == 403
    assert (
        viewer.post("/models/import", {"path": "/etc/passwd", "name": "reg-x"}).status_code == 403
    )
    stage = api_get(dashboard_server, "/api/v1/models/reg-list-004/versions/1").json()["stage"]
    assert stage == "development"
    events = api_get(
        dashboard_server, "/api/v1/audit", actor="reg-viewer", action="auth.denied"
    ).json()
    assert len(events) >= 3


def test_a_post_without_the_csrf_token_is_refused(
    dashboard_server: ServerProcess, admin_session: Session, seeded: list[str]
) -> None:
    answer = admin_session.http.post(
        "/models/reg-list-006/versions/1/stage", data={"stage": "staging"}
    )
    assert answer.status_code == 403 and "CSRF" in answer.text
    stage = api_get(dashboard_server, "/api/v1/models/reg-list-006/versions/1").json()["stage"]
    assert stage == "development"


def test_the_api_imports_by_path_through_the_same_service(
    dashboard_server: ServerProcess, weights: Path, tmp_path: Path
) -> None:
    folder = dashboard_server.home / "imports"
    folder.mkdir(exist_ok=True)
    source = shutil.copy(weights, folder / "reg-api-import.safetensors")
    with dashboard_server.http(timeout=30) as http:
        made = http.post(
            "/api/v1/models/import",
            json={"name": "reg-api-import", "type": "classification", "path": str(source)},
        )
        assert made.status_code == 201, made.text
        assert made.json()["version"] == 1
        outside = shutil.copy(weights, tmp_path / "x.safetensors")
        refused = http.post(
            "/api/v1/models/import",
            json={"name": "reg-api-outside", "type": "custom", "path": str(outside)},
        )
    assert refused.status_code == 400
    assert "outside the folders" in refused.json()["error"]["message"]
