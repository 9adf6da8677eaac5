"""Access control over a real server: every route, every role, every bad token."""

from __future__ import annotations

import re
import sqlite3
import stat
import subprocess
import sys
import zlib
from collections.abc import Iterator, Sequence
from pathlib import Path

import httpx
import pytest
from fastapi.routing import APIRoute
from starlette.routing import BaseRoute

from modelhub.api.app import create_app
from modelhub.api.security import permission_of
from modelhub.client import Client, DeployRequest, RegisterRequest
from modelhub.domain.auth import PERMISSIONS, READ_ACTIONS, Action, Role
from modelhub.errors import Conflict, IllegalTransition, PermissionDenied
from modelhub.samples import write_mlp_safetensors
from modelhub.settings import Settings
from tests.integration.conftest import ServerProcess, clean_env, make_server, running

DOC_ROUTES = {"/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc"}
STATIC_MOUNT = "/static"  # the dashboard's scripts and styles: public files, no data
PATH_VALUES = {
    "name": "matrix-model",
    "selector": "1",
    "version": "1",
    "alias": "champion",
    "upload_id": "0" * 32,
    "path": "w.bin",
    "filename": "w.bin",
    "token_id": "0" * 16,
    "run_id": "1",  # no run exists on the matrix server: allowed callers get 404
    "rest": "infer",  # /v2/models/{name}/{rest}: nothing is deployed, allowed callers get 404
    "rule_id": "1",  # no alert rule, alert or budget exists either: allowed callers get 404
    "alert_id": "1",
    "budget_id": "1",
    "policy_version": "1",  # no policy was set on the matrix server: allowed callers get 404
}


def all_routes(routes: Sequence[BaseRoute]) -> Iterator[BaseRoute]:
    """Every route, looking inside included routers (FastAPI keeps them nested)."""
    for route in routes:
        included = getattr(route, "original_router", None)
        if included is not None:
            yield from all_routes(included.routes)
        else:
            yield route


def api_routes(tmp_path: Path) -> list[tuple[str, str, Action]]:
    """(method, concrete path, permission) for every route of the app, now and later."""
    app = create_app(Settings(home=tmp_path / "routes-home"))
    found = []
    for route in all_routes(app.routes):
        if not isinstance(route, APIRoute):
            continue
        permissions = [
            p for d in route.dependant.dependencies if (p := permission_of(d.call)) is not None
        ]
        assert len(permissions) == 1, f"{route.path} declares {permissions}"
        path = (
            route.path.replace("{path:path}", "{path}")
            .replace("{rest:path}", "{rest}")
            .format(**PATH_VALUES)
        )
        for method in sorted(route.methods):
            found.append((method, path, permissions[0]))
    return found


def test_every_route_declares_exactly_one_permission(tmp_path: Path) -> None:
    app = create_app(Settings(home=tmp_path / "home"))
    for route in all_routes(app.routes):
        if isinstance(route, APIRoute):
            declared = [permission_of(d.call) for d in route.dependant.dependencies]
            assert len([p for p in declared if p is not None]) == 1, route.path
        else:
            path = getattr(route, "path", None)
            assert path in DOC_ROUTES or path == STATIC_MOUNT, f"unguarded route {route}"
    assert len(api_routes(tmp_path)) >= 25


@pytest.fixture(scope="module")
def matrix_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    srv = make_server(tmp_path_factory.mktemp("matrix"), MODELHUB_AUTH_FAILURE_LIMIT="100000")
    with running(srv):
        yield srv


@pytest.fixture(scope="module")
def tokens(matrix_server: ServerProcess) -> dict[str, str]:
    """A write token for each role, a read-only admin token, and no token."""
    found = {"admin": matrix_server.token}
    with Client(matrix_server.url, token=matrix_server.token) as admin:
        for role in ("data_scientist", "developer", "viewer"):
            admin.add_user(f"u-{role}", role)
            found[role] = admin.create_token(f"u-{role}")[1]
        found["admin-read"] = admin.create_token(scope="read")[1]
    return found


def expected_allowed(who: str, action: Action) -> bool:
    if action == Action.PUBLIC:
        return True
    if who == "anonymous":
        return False
    if who == "admin-read":
        return action in READ_ACTIONS
    return Role(who) in PERMISSIONS[action]


def send(http: httpx.Client, method: str, path: str, token: str | None) -> httpx.Response:
    headers = {"authorization": f"Bearer {token}"} if token else {}
    body: dict[str, object] | bytes = b"x" if path.startswith("/api/v1/uploads/") else {}
    if path == "/api/v1/auth/tokens":
        body = {"scope": "read"}  # what every token, a read-only one too, may ask for
    if isinstance(body, bytes):
        return http.request(method, path, content=body, headers=headers)
    if method in ("GET", "DELETE"):
        return http.request(method, path, headers=headers)
    return http.request(method, path, json=body, headers=headers)


@pytest.mark.parametrize(
    "who", ["anonymous", "viewer", "developer", "data_scientist", "admin", "admin-read"]
)
def test_permission_matrix(
    who: str, matrix_server: ServerProcess, tokens: dict[str, str], tmp_path: Path
) -> None:
    token = tokens.get(who)
    problems = []
    with httpx.Client(base_url=matrix_server.url) as http:
        for method, path, action in api_routes(tmp_path):
            status = send(http, method, path, token).status_code
            if expected_allowed(who, action):
                ok = status not in (401, 403, 429)
            else:
                ok = status == (401 if who == "anonymous" else 403)
            if not ok:
                problems.append(f"{who} {method} {path} ({action.value}) -> {status}")
    assert problems == []


def test_viewer_changes_nothing(matrix_server: ServerProcess, tmp_path: Path) -> None:
    weights = write_mlp_safetensors(tmp_path / "w.safetensors")
    with Client(matrix_server.url, token=matrix_server.token) as admin:
        admin.register(RegisterRequest(name="matrix-model", type="custom"), weights)
        admin.add_user("v2", "viewer")
        viewer_token = admin.create_token("v2")[1]
        before = admin.versions("matrix-model")
        # Everything but reading, and the viewer's own tokens, is closed to them.
        closed = [
            (method, path)
            for method, path, action in api_routes(tmp_path)
            if action not in READ_ACTIONS and Role.VIEWER not in PERMISSIONS[action]
        ]
        with httpx.Client(base_url=matrix_server.url) as http:
            for method, path in closed:
                assert send(http, method, path, viewer_token).status_code == 403, path
        assert admin.versions("matrix-model") == before
        denials = admin.audit_events(actor="v2", action="auth.denied", limit=1000)
        assert len(denials) == len(closed)
        assert all(e.request_id for e in denials)


OWNED_SPEC = """
name: owned-pipe
type: pre_training
trainer: tabular_classifier
datasets: [owned-data]
max_epochs: {epochs}
result_model: {{name: owned-pipe-clf}}
"""


def owned_csv(tmp_path: Path, rows: int) -> Path:
    csv = tmp_path / f"owned-{rows}.csv"
    csv.write_text("a,b,label\n" + "".join(f"{i},{-i},{i % 2}\n" for i in range(rows)))
    return csv


def test_only_owners_data_scientists_and_admins_add_versions(
    matrix_server: ServerProcess, tokens: dict[str, str], tmp_path: Path
) -> None:
    with Client(matrix_server.url, token=matrix_server.token) as admin:
        admin.add_user("dev-b", "developer")
        intruder_token = admin.create_token("dev-b")[1]
    with Client(matrix_server.url, token=tokens["developer"]) as owner:
        owner.register_dataset(owned_csv(tmp_path, 20), "owned-data")
        owner.create_pipeline(OWNED_SPEC.format(epochs=1))
    with Client(matrix_server.url, token=intruder_token) as intruder:
        refused = r"dev-b may pipelines\.write only pipelines they own \(owner: u-developer\)"
        with pytest.raises(PermissionDenied, match=refused):
            intruder.create_pipeline(OWNED_SPEC.format(epochs=500))
        refused = r"dev-b may datasets\.register only datasets they own \(owner: u-developer\)"
        with pytest.raises(PermissionDenied, match=refused):
            intruder.register_dataset(owned_csv(tmp_path, 30), "owned-data")
        kept = intruder.get_pipeline("owned-pipe")
        assert (kept.version, kept.spec["max_epochs"], kept.updated_by) == (1, 1, "u-developer")
        assert [d.version for d in intruder.list_datasets("owned-data")] == [1]
    with Client(matrix_server.url, token=tokens["data_scientist"]) as ds:
        saved, _ = ds.create_pipeline(OWNED_SPEC.format(epochs=2))
        assert (saved.version, saved.created_by, saved.updated_by) == (
            2,
            "u-developer",
            "u-data_scientist",
        )
        added = ds.register_dataset(owned_csv(tmp_path, 30), "owned-data")
        assert (added.version, added.created_by) == (2, "u-data_scientist")
    with Client(matrix_server.url, token=tokens["developer"]) as owner:
        assert owner.create_pipeline(OWNED_SPEC.format(epochs=3))[0].updated_by == "u-developer"
        assert owner.register_dataset(owned_csv(tmp_path, 40), "owned-data").version == 3
    with Client(matrix_server.url, token=matrix_server.token) as admin:
        saves = admin.audit_events(action="pipelines.save", target="owned-pipe", limit=10)
        assert sorted(e.actor for e in saves) == ["u-data_scientist", "u-developer", "u-developer"]
        denied = admin.audit_events(actor="dev-b", action="auth.denied", limit=10)
        assert len(denied) == 2


def test_a_deployment_cannot_answer_for_another_users_model(
    matrix_server: ServerProcess, tokens: dict[str, str], tmp_path: Path
) -> None:
    weights = write_mlp_safetensors(tmp_path / "w.safetensors")
    with Client(matrix_server.url, token=matrix_server.token) as admin:
        admin.add_user("squatter", "developer")
        squatter_token = admin.create_token("squatter")[1]
    with Client(matrix_server.url, token=tokens["developer"]) as owner:
        owner.register(RegisterRequest(name="victim-model", type="custom"), weights)
    with Client(matrix_server.url, token=squatter_token) as squatter:
        squatter.register(RegisterRequest(name="squatter-model", type="custom"), weights)
        with pytest.raises(Conflict, match="'victim-model' is the name of another model"):
            squatter.deploy(DeployRequest(ref="squatter-model@1", name="victim-model"))
        assert squatter.list_deployments(include_stopped=True) == []


@pytest.mark.parametrize("name", ["anonymous", "system"])
def test_reserved_actor_names_are_not_user_names(matrix_server: ServerProcess, name: str) -> None:
    with httpx.Client(base_url=matrix_server.url) as http:
        response = http.post(
            "/api/v1/auth/users",
            json={"name": name, "role": "admin"},
            headers={"authorization": f"Bearer {matrix_server.token}"},
        )
    assert response.status_code == 400
    assert f"user name {name!r} is reserved" in response.json()["error"]["message"]


SERVER_REQUEST_ID = re.compile(r"[0-9a-f]{16}")


@pytest.mark.parametrize(
    "sent",
    [b"x" * 65, b"tab\tinside", b"caf\xc3\xa9", b"\xff\xfe", b"-leading-dash", b"a;b=c"],
    ids=["too-long", "tab", "utf8", "latin1", "leading-dash", "separators"],
)
def test_a_hostile_request_id_is_replaced_by_the_servers(
    matrix_server: ServerProcess, sent: bytes
) -> None:
    user = f"rid-{zlib.crc32(sent):08x}"
    with httpx.Client(base_url=matrix_server.url) as http:
        response = http.post(
            "/api/v1/auth/users",
            json={"name": user, "role": "viewer"},
            headers={"authorization": f"Bearer {matrix_server.token}", "x-request-id": sent},
        )
    assert response.status_code == 201, response.text
    given = response.headers["x-request-id"]
    assert SERVER_REQUEST_ID.fullmatch(given), given
    with Client(matrix_server.url, token=matrix_server.token) as admin:
        event = admin.audit_events(action="users.add", target=user, limit=1)[0]
    assert event.request_id == given


def test_a_plain_request_id_is_kept(matrix_server: ServerProcess) -> None:
    with httpx.Client(base_url=matrix_server.url) as http:
        response = http.post(
            "/api/v1/auth/users",
            json={"name": "rid-kept", "role": "viewer"},
            headers={
                "authorization": f"Bearer {matrix_server.token}",
                "x-request-id": "deploy-42.a:b_c",
            },
        )
    assert response.headers["x-request-id"] == "deploy-42.a:b_c"
    with Client(matrix_server.url, token=matrix_server.token) as admin:
        event = admin.audit_events(action="users.add", target="rid-kept", limit=1)[0]
    assert event.request_id == "deploy-42.a:b_c"


def test_nobody_approves_their_own_version(
    matrix_server: ServerProcess, tokens: dict[str, str], tmp_path: Path
) -> None:
    weights = write_mlp_safetensors(tmp_path / "w.safetensors")
    with Client(matrix_server.url, token=tokens["data_scientist"]) as ds:
        ds.register(RegisterRequest(name="ds-own-model", type="custom"), weights)
        ds.set_stage("ds-own-model", 1, "staging")
        with pytest.raises(PermissionDenied, match="nobody approves a version they created") as exc:
            ds.approve("ds-own-model", 1, "mine, and good")
        assert exc.value.details["rule"] == "no_self_approval"
        assert ds.get("ds-own-model@1").approval.value == "pending"
        with pytest.raises(IllegalTransition, match="approved before production"):
            ds.set_stage("ds-own-model", 1, "production")
    with Client(matrix_server.url, token=matrix_server.token) as admin:
        assert admin.approve("ds-own-model", 1, "reviewed").approval.value == "approved"
        admin.register(RegisterRequest(name="admin-own-model", type="custom"), weights)
        admin.set_stage("admin-own-model", 1, "staging")
        with pytest.raises(PermissionDenied, match="nobody approves a version they created"):
            admin.approve("admin-own-model", 1)
        forced = admin.set_stage("admin-own-model", 1, "production", force=True)
        assert (forced.stage.value, forced.approval.value) == ("production", "pending")
        event = admin.audit_events(action="models.stage", target="admin-own-model@1", limit=1)[0]
        assert (event.actor, event.details["override"]) == ("admin", "approval was pending")
        reasons = [
            e.details["reason"]
            for e in admin.audit_events(action="auth.denied", limit=1000)
            if e.actor in ("admin", "u-data_scientist")
        ]
        assert sum("nobody approves a version they created" in r for r in reasons) == 2


BAD_TOKEN = "invalid, expired or revoked token"


def test_bad_tokens_are_401_alike_and_audited(server: ServerProcess) -> None:
    with Client(server.url, token=server.token) as admin:
        admin.add_user("alice", "data_scientist")
        _, revoked = admin.create_token("alice")
        revoked_id = revoked.split("_")[1]
        admin.revoke_token(revoked_id)
        _, reader = admin.create_token("alice", scope="read")
        admin.add_user("gone", "developer")
        _, disabled = admin.create_token("gone")
        admin.update_user("gone", disabled=True)
        secret = server.token.split("_")[2]
    # An expired token: tests/unit/services/test_auth_tokens.py moves the auth clock.
    cases = {
        "malformed": "not-a-token",
        "unknown id": f"mh_{'f' * 16}_{secret}",
        "wrong secret": f"mh_{server.token.split('_')[1]}_{'A' * 43}",
        "revoked": revoked,
        "disabled user": disabled,
    }
    with httpx.Client(base_url=server.url) as http:
        missing = http.get("/api/v1/models")
        assert missing.status_code == 401 and "authentication required" in missing.text
        not_bearer = http.get("/api/v1/models", headers={"authorization": f"Basic {server.token}"})
        assert not_bearer.status_code == 401
        for case, token in cases.items():
            response = http.get("/api/v1/models", headers={"authorization": f"Bearer {token}"})
            assert response.status_code == 401, case
            assert response.json()["error"] == {
                "code": "unauthenticated",
                "message": BAD_TOKEN,
                "details": {},
            }, case
        as_reader = {"authorization": f"Bearer {reader}"}
        wrong_scope = http.post("/api/v1/uploads", headers=as_reader)
        assert wrong_scope.status_code == 403 and "read-only token" in wrong_scope.text
        # A read-only token neither mints tokens (not even read ones) nor revokes them.
        for scope in ("read", "write"):
            minted = http.post("/api/v1/auth/tokens", json={"scope": scope}, headers=as_reader)
            assert minted.status_code == 403 and "read-only token" in minted.text
        reader_id = reader.split("_")[1]
        unrevoked = http.delete(f"/api/v1/auth/tokens/{reader_id}", headers=as_reader)
        assert unrevoked.status_code == 403
        huge = http.post(
            "/api/v1/auth/tokens", json={"expires": "9999999d"}, headers=server.headers
        )
        assert huge.status_code == 400 and huge.json()["error"]["details"]["field"] == "expires"
    with Client(server.url, token=server.token) as admin:
        denied = admin.audit_events(action="auth.denied", limit=100)
    assert len(denied) == 2 + len(cases) + 1 + 3
    assert {e.actor for e in denied} == {"anonymous", "alice"}


def test_failed_authentication_is_rate_limited(tmp_path: Path) -> None:
    srv = make_server(tmp_path, MODELHUB_AUTH_FAILURE_LIMIT="5")
    srv.start()
    try:
        with httpx.Client(base_url=srv.url) as http:
            good = {"authorization": f"Bearer {srv.token}"}
            assert http.get("/api/v1/models", headers=good).status_code == 200
            bad = {"authorization": "Bearer mh_0000000000000000_nope"}
            # No proxy is trusted by default: naming another address on each try
            # neither escapes the limit nor aims it at someone else.
            codes = [
                http.get(
                    "/api/v1/models", headers={**bad, "x-forwarded-for": f"203.0.113.{i}"}
                ).status_code
                for i in range(8)
            ]
            assert codes[:5] == [401] * 5 and codes[5:] == [429] * 3
            limited = http.get("/api/v1/models", headers=bad)
            assert limited.json()["error"]["code"] == "rate_limited"
            assert 1 <= int(limited.headers["retry-after"]) <= 60
            assert http.get("/api/v1/models").status_code == 429
            # Only failures are held back: the admin's token still works from the
            # same address, and so does a token the server has never seen before.
            assert http.get("/api/v1/models", headers=good).status_code == 200
            fresh = http.post("/api/v1/auth/tokens", json={}, headers=good)
            assert fresh.status_code == 201, fresh.text
            new = {"authorization": f"Bearer {fresh.json()['token']}"}
            assert http.get("/api/v1/auth/whoami", headers=new).json()["name"] == "admin"
            # ... while the next bad try from that address is still refused.
            assert http.get("/api/v1/models", headers=bad).status_code == 429
    finally:
        srv.stop()


def test_forwarded_for_names_the_client_only_behind_a_trusted_proxy(tmp_path: Path) -> None:
    srv = make_server(
        tmp_path, MODELHUB_AUTH_FAILURE_LIMIT="2", MODELHUB_TRUSTED_PROXIES="127.0.0.1"
    )
    bad = {"authorization": "Bearer mh_0000000000000000_nope"}
    with running(srv), httpx.Client(base_url=srv.url) as http:

        def status(client: str) -> int:
            headers = {**bad, "x-forwarded-for": client}
            return http.get("/api/v1/models", headers=headers).status_code

        assert [status("198.51.100.7") for _ in range(3)] == [401, 401, 429]
        # The proxy (127.0.0.1) is trusted: another client behind it is not held back.
        assert status("198.51.100.8") == 401
        assert http.get("/api/v1/models", headers=bad).status_code == 401


def test_first_start_writes_the_admin_token_once(tmp_path: Path) -> None:
    srv = make_server(tmp_path)
    srv.start()
    srv.stop()
    token_file = srv.home / "admin.token"
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
    first = token_file.read_text()
    assert "created the first admin" in srv.log.read_text()
    srv.start()
    srv.stop()
    assert token_file.read_text() == first
    assert srv.log.read_text().count("created the first admin") == 1
    with sqlite3.connect(srv.home / "modelhub.db") as db:
        stored = [row[0] for row in db.execute("SELECT secret_hash FROM tokens")]
    assert stored and first.split("_")[2].strip() not in "".join(stored)


def test_developers_change_only_their_own_models(server: ServerProcess, tmp_path: Path) -> None:
    weights = write_mlp_safetensors(tmp_path / "w.safetensors")
    with Client(server.url, token=server.token) as admin:
        admin.register(RegisterRequest(name="admins-model", type="custom"), weights)
        admin.add_user("dev", "developer")
        admin.add_user("ds", "data_scientist")
        dev_token, ds_token = admin.create_token("dev")[1], admin.create_token("ds")[1]
    with Client(server.url, token=dev_token) as dev:
        assert (
            dev.register(RegisterRequest(name="devs-model", type="custom"), weights).created_by
            == "dev"
        )
        dev.set_alias("devs-model", "champion", 1)
        dev.set_stage("devs-model", 1, "staging")
        with pytest.raises(PermissionDenied, match="only models they own"):
            dev.set_alias("admins-model", "champion", 1)
        with pytest.raises(PermissionDenied, match="only models they own"):
            dev.register(RegisterRequest(name="admins-model"), weights)
        with pytest.raises(PermissionDenied, match=r"may not models\.approve"):
            dev.approve("devs-model", 1)
        with pytest.raises(PermissionDenied, match=r"may not models\.trust"):
            dev.register(RegisterRequest(name="devs-model", trust=True), weights)
    with Client(server.url, token=ds_token) as ds:
        ds.set_alias("admins-model", "candidate", 1)
        ds.approve("devs-model", 1, "looks good")
        with pytest.raises(PermissionDenied, match=r"may not models\.override_gate"):
            ds.set_stage("admins-model", 1, "production", force=True)
    with Client(server.url, token=server.token) as admin:
        admin.set_stage("admins-model", 1, "staging")
        forced = admin.set_stage("admins-model", 1, "production", force=True)
        assert forced.stage.value == "production" and forced.approval.value == "pending"
        event = admin.audit_events(action="models.stage", target="admins-model@1", limit=1)[0]
        assert event.details["override"] == "approval was pending"
        # Refusals made past the route check (ownership, trust, the gate) are audited too.
        reasons = [e.details["reason"] for e in admin.audit_events(action="auth.denied")]
        assert sum("only models they own" in r for r in reasons) == 2
        assert any("may not models.trust" in r for r in reasons)
        assert any("may not models.override_gate" in r for r in reasons)


SCRIPT_SPEC = """
name: {name}
type: pre_training
trainer: script
script: {{path: train.py}}
datasets: [blobs]
result_model: {{name: {name}-model}}
"""
SCRIPT_FILES = {"train.py": b"def train(ctx):\n    return {}\n"}
RUN_SPEC = """
name: {name}
type: pre_training
trainer: tabular_classifier
datasets: [blobs]
max_epochs: {epochs}
hyperparameters: {{batch_size: 1}}
result_model: {{name: {name}-clf}}
"""


def test_developers_manage_only_their_own_runs(server: ServerProcess, tmp_path: Path) -> None:
    csv = tmp_path / "blobs.csv"
    csv.write_text("a,b,label\n" + "".join(f"{i},{-i},{i % 2}\n" for i in range(40)))
    with Client(server.url, token=server.token) as admin:
        admin.register_dataset(csv, "blobs")
        admin.create_pipeline(RUN_SPEC.format(name="admins", epochs=1))
        admins_run = admin.start_run("admins")
        admin.create_pipeline(SCRIPT_SPEC.format(name="scripted"), SCRIPT_FILES)
        admin.add_user("dev", "developer")
        admin.add_user("vera", "viewer")
        dev_token, viewer_token = admin.create_token("dev")[1], admin.create_token("vera")[1]
    with Client(server.url, token=viewer_token) as viewer:
        assert viewer.get_run(admins_run.id).created_by == "admin"
        with pytest.raises(PermissionDenied, match=r"may not runs\.manage"):
            viewer.cancel_run(admins_run.id)
        with pytest.raises(PermissionDenied, match=r"may not runs\.start"):
            viewer.start_run("admins")
    with Client(server.url, token=dev_token) as dev:
        with pytest.raises(
            PermissionDenied, match=r"runs\.manage only runs they own \(owner: admin"
        ):
            dev.cancel_run(admins_run.id)
        with pytest.raises(PermissionDenied, match=r"runs\.manage only runs they own"):
            dev.resume_run(admins_run.id)
        # A script runs as the server: saving or starting one needs code.run.
        with pytest.raises(PermissionDenied, match=r"may not code\.run"):
            dev.create_pipeline(SCRIPT_SPEC.format(name="dev-script"), SCRIPT_FILES)
        with pytest.raises(PermissionDenied, match=r"may not code\.run"):
            dev.start_run("scripted")
        dev.create_pipeline(RUN_SPEC.format(name="devs", epochs=1000))
        own = dev.start_run("devs")
        assert own.created_by == "dev"
        assert dev.cancel_run(own.id).cancel_requested
        assert [e.data["status"] for e in dev.run_events(own.id) if e.kind == "status"][-1] == (
            "cancelled"
        )


def test_no_auth_on_a_public_address_is_refused(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "modelhub", "server", "--no-auth", "--host", "0.0.0.0"],
        env=clean_env(MODELHUB_HOME=str(tmp_path / "home")),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "refusing to serve 0.0.0.0 without authentication" in result.stderr


def test_audit_verify_names_the_tampered_event(tmp_path: Path) -> None:
    env = clean_env(MODELHUB_HOME=str(tmp_path / "home"))
    weights = write_mlp_safetensors(tmp_path / "w.safetensors")

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "modelhub", *args], env=env, capture_output=True, text=True
        )

    for name in ("a", "b", "c"):
        assert (
            cli("models", "register", str(weights), "--name", name, "--type", "custom").returncode
            == 0
        )
    assert cli("audit", "verify").returncode == 0
    db = tmp_path / "home" / "modelhub.db"
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE audit_events SET actor = 'someone-else' WHERE id = 2")
    broken = cli("audit", "verify")
    assert broken.returncode == 8
    assert broken.stderr.strip() == (
        "error: audit log tampered with: event 2 does not match its hash: it was edited"
    )


def test_the_client_finds_url_and_token_like_the_cli(
    server: ServerProcess, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("MODELHUB_URL", server.url)
    monkeypatch.setenv("MODELHUB_HOME", str(tmp_path / "elsewhere"))
    monkeypatch.setenv("MODELHUB_TOKEN", server.token)
    with Client() as client:
        assert client.whoami().name == "admin"
    monkeypatch.delenv("MODELHUB_TOKEN")
    monkeypatch.setenv("MODELHUB_HOME", str(server.home))  # falls back to admin.token there
    with Client() as client:
        assert client.whoami().name == "admin"
