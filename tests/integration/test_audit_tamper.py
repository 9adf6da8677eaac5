"""Tampering done for real on the server's SQLite file: `audit verify` reports it.

The CLI exits 8 naming the problem; the API answers 200 with the verdict. Nothing
here is a traceback or a 500.
"""

from __future__ import annotations

import sqlite3
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from modelhub import Client
from tests.integration.conftest import Cli, ServerProcess, clean_env, make_server, running


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    server = make_server(tmp_path_factory.mktemp("audit-tamper"))
    with running(server):
        with Client(server.url, token=server.token) as admin:
            for name in ("ada", "bob", "cy"):
                admin.add_user(name, "viewer")
        yield server


def database(server: ServerProcess) -> sqlite3.Connection:
    return sqlite3.connect(server.home / "modelhub.db", isolation_level=None, timeout=30)


@pytest.fixture(autouse=True)
def pristine(srv: ServerProcess) -> Iterator[None]:
    """Each test tampers with the log; put it back as it was afterwards."""
    with database(srv) as db:
        events = db.execute("SELECT * FROM audit_events").fetchall()
        heads = db.execute("SELECT * FROM audit_head").fetchall()
    yield
    with database(srv) as db:
        db.execute("DELETE FROM audit_events")
        db.execute("DELETE FROM audit_head")
        db.executemany(f"INSERT INTO audit_events VALUES ({','.join('?' * 9)})", events)
        db.executemany("INSERT INTO audit_head VALUES (?, ?, ?)", heads)


def cli(server: ServerProcess, *args: str) -> subprocess.CompletedProcess[str]:
    env = clean_env(MODELHUB_URL=server.url, MODELHUB_TOKEN=server.token)
    return Cli("server", env, Path.cwd()).run("audit", "verify", *args, ok=False)


def api(server: ServerProcess, **params: str) -> dict[str, Any]:
    with server.http() as http:
        response = http.get("/api/v1/audit/verify", params=params)
    assert response.status_code == 200, response.text
    verdict: dict[str, Any] = response.json()
    return verdict


TAMPERING = {
    "head row deleted": (
        "DELETE FROM audit_head",
        "the audit_head row is missing: the end of the chain cannot be checked",
    ),
    "second head row": (
        "INSERT INTO audit_head VALUES (2, 99, '" + "f" * 64 + "')",
        "audit_head holds 2 row(s) (id 1, 2) where there is exactly one, id 1: "
        "a head was added or replaced",
    ),
    "details not JSON": (
        "UPDATE audit_events SET details = '{oops' WHERE id = 2",
        "event 2: its details are not JSON",
    ),
    "time unparsable": (
        "UPDATE audit_events SET at = 'soon' WHERE id = 2",
        "event 2: its time 'soon' does not parse",
    ),
}


@pytest.mark.parametrize("case", list(TAMPERING))
def test_tampering_is_reported_not_crashed_on(srv: ServerProcess, case: str) -> None:
    statement, problem = TAMPERING[case]
    with database(srv) as db:
        db.execute(statement)
    verdict = api(srv)
    assert verdict["intact"] is False and verdict["problems"] == [problem]
    result = cli(srv)
    assert result.returncode == 8, result.stderr
    assert result.stderr.strip() == f"error: audit log tampered with: {problem}"
    if case in ("details not JSON", "time unparsable"):
        with srv.http() as http:
            listed = http.get("/api/v1/audit").json()
        assert "`modelhub audit verify` names it" in listed["error"]["message"]


def test_a_kept_head_catches_a_truncated_tail_and_a_rewound_head(srv: ServerProcess) -> None:
    kept = api(srv)["head_hash"]  # what `audit verify` prints after "head:"
    with Client(srv.url, token=srv.token) as admin:
        admin.add_user("dan", "viewer")  # the log grows past the kept head: still fine
        assert admin.audit_verify(kept).intact
    with database(srv) as db:
        (last,) = db.execute("SELECT max(id) FROM audit_events").fetchone()
        db.execute("DELETE FROM audit_events WHERE id > ?", (last - 2,))
        (rewound,) = db.execute("SELECT hash FROM audit_events WHERE id = ?", (last - 2,))
        db.execute("UPDATE audit_head SET last_id = ?, last_hash = ?", (last - 2, rewound[0]))
    assert api(srv)["intact"] is True  # the shortened chain is consistent on its own
    problem = (
        f"the expected head {kept} is not in the chain: events up to it were deleted or "
        "rewritten since it was recorded"
    )
    assert api(srv, expect_head=kept)["problems"] == [problem]
    caught = cli(srv, "--expect-head", kept)
    assert caught.returncode == 8
    assert caught.stderr.strip() == f"error: audit log tampered with: {problem}"


def test_a_malformed_expected_head_is_invalid_input(srv: ServerProcess) -> None:
    with srv.http() as http:
        response = http.get("/api/v1/audit/verify", params={"expect_head": "not-a-hash"})
    assert response.status_code == 400
    assert response.json()["error"]["details"]["field"] == "expect_head"


def test_an_intact_log_prints_its_head(srv: ServerProcess) -> None:
    verdict = api(srv)
    result = cli(srv)
    assert result.returncode == 0, result.stderr
    assert f"head: {verdict['head_id']} {verdict['head_hash']}" in result.stdout
