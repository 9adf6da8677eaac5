"""The alert engine on a real server, through the CLI: a rule fires on the server's own
evaluation thread, its webhook gets a signed notification, ack and remove work, and
bad rules are refused with a clear line."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

from modelhub.client import ModelhubClient
from modelhub.domain.alerts import AlertRuleDraft, Comparison, Scope, ScopeKind
from modelhub.errors import Conflict, InvalidInput, NotFound
from modelhub.monitoring.alert_payload import SIGNATURE_HEADER, verify
from tests.integration.conftest import (
    Cli,
    ServerProcess,
    clean_env,
    either_client,
    make_server,
    running,
)
from tests.unit.services.alert_receiver import Receiver, receiver

SECRET = "integration-secret"
T = TypeVar("T")


@pytest.fixture(scope="module")
def hook() -> Iterator[Receiver]:
    with receiver() as started:
        yield started


@pytest.fixture(scope="module")
def alerting_server(
    tmp_path_factory: pytest.TempPathFactory, hook: Receiver
) -> Iterator[ServerProcess]:
    srv = make_server(
        tmp_path_factory.mktemp("alerts-server"),
        MODELHUB_ALERTS_EVALUATION_SECONDS="0.2",
        MODELHUB_ALERTS_DISPATCH_SECONDS="0.2",
        MODELHUB_ALERTS_WEBHOOK_SECRET=SECRET,
        MODELHUB_ALERTS_WEBHOOK_BACKOFF_SECONDS="0",
        MODELHUB_ALERTS_RESOLVE_AFTER_SECONDS="0",
    )
    with running(srv):
        yield srv


@pytest.fixture
def cli(alerting_server: ServerProcess, tmp_path: Path) -> Cli:
    env = clean_env(MODELHUB_URL=alerting_server.url, MODELHUB_TOKEN=alerting_server.token)
    return Cli("server", env, tmp_path)


def wait_for(what: str, probe: Callable[[], T | None], timeout: float = 30) -> T:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = probe()
        if found:
            return found
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def test_a_rule_fires_notifies_and_is_acknowledged(
    cli: Cli, alerting_server: ServerProcess, hook: Receiver
) -> None:
    rule = cli.json(
        "alerts", "rules", "add", "--platform", "--metric", "queued_runs", "--at-least", "0",
        "--severity", "info", "--name", "queue_watch", "--webhook", hook.url,
    )  # fmt: skip
    assert (rule["name"], rule["comparison"], rule["scope"]["kind"]) == (
        "queue_watch",
        "at_least",
        "platform",
    )
    with alerting_server.http() as http:
        listed = http.get("/api/v1/alerts/rules").json()
        builtin = [r["name"] for r in listed if r["builtin"]]
        assert builtin == ["nan_loss", "diverging_loss", "stalled"]
        assert rule["id"] in [r["id"] for r in listed]

        def firing() -> list[dict[str, Any]] | None:
            found = http.get("/api/v1/alerts", params={"firing": True}).json()
            return [a for a in found if a["rule"] == "queue_watch"] or None

        [alert] = wait_for("the rule to fire on the server", firing)
    sent = wait_for("the webhook notification", lambda: list(hook.received))[0]
    assert verify(sent.body, sent.headers[SIGNATURE_HEADER], SECRET)
    payload = json.loads(sent.body)
    assert payload["status"] == "firing" and payload["version"] == "4"
    assert payload["alerts"][0]["labels"]["alertname"] == "queue_watch"
    assert payload["externalURL"].startswith("http://127.0.0.1:")

    acked = cli.json("alerts", "ack", str(alert["id"]))
    assert acked["state"] == "firing" and acked["acknowledged_by"]
    shown = cli.json("alerts", "list", "--firing")
    assert [a["id"] for a in shown if a["rule"] == "queue_watch"] == [alert["id"]]

    with alerting_server.http() as http:
        assert http.delete(f"/api/v1/alerts/rules/{rule['id']}").status_code == 200
        resolved = wait_for(
            "the resolved notification",
            lambda: [r for r in hook.received if json.loads(r.body)["status"] == "resolved"],
        )
        assert len(resolved) == 1

        def both_recorded() -> list[dict[str, Any]] | None:
            # A delivery's row is written once the receiver has answered, so the receiver
            # may hold the notification a moment before the row exists.
            found = http.get(f"/api/v1/alerts/{alert['id']}/deliveries").json()
            return found if len(found) >= 2 else None

        deliveries = wait_for("the resolved delivery to be recorded", both_recorded)
    assert [(d["status"], d["outcome"]) for d in deliveries] == [
        ("firing", "ok"),
        ("resolved", "ok"),
    ]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--model", "ghost", "--metric", "p99_latency_ms", "--above", "50"], "'ghost'"),
        (["--platform", "--metric", "queued_runs", "--above", "1", "--for", "5x"], "for"),
        (
            ["--platform", "--metric", "queued_runs", "--above", "1", "--webhook", "ftp://h/x"],
            "not an http(s) URL",
        ),
        (["--platform", "--metric", "queued_runs", "--above", "1", "--below", "2"], "exactly one"),
    ],
)
def test_bad_rules_are_refused(cli: Cli, args: list[str], message: str) -> None:
    result = cli.run("alerts", "rules", "add", *args, ok=False)
    assert result.returncode != 0 and message in result.stderr, result.stderr


def test_the_api_refuses_an_unknown_comparison(alerting_server: ServerProcess) -> None:
    body = {
        "metric": "queued_runs",
        "comparison": "sideways",
        "threshold": 1,
        "scope": {"kind": "platform"},
    }
    with alerting_server.http() as http:
        answer = http.post("/api/v1/alerts/rules", json=body)
        assert answer.status_code in (400, 422)
        assert "comparison" in answer.json()["error"]["message"]
        names = [r["name"] for r in http.get("/api/v1/alerts/rules").json()]
    assert "queued_runs_above_1" not in names


@pytest.fixture(params=["http", "local"])
def client(
    request: pytest.FixtureRequest, alerting_server: ServerProcess, tmp_path: Path
) -> Iterator[ModelhubClient]:
    with either_client(request.param, alerting_server, tmp_path / "home") as opened:
        yield opened


def test_both_clients_add_list_and_remove_rules(client: ModelhubClient) -> None:
    scope = Scope(kind=ScopeKind.PLATFORM)
    draft = AlertRuleDraft(
        metric="queued_runs", comparison=">", threshold=100, scope=scope, name="deep_queue"
    )
    rule = client.add_alert_rule(draft)
    try:
        assert rule.comparison is Comparison.ABOVE and rule.id is not None
        assert "deep_queue" in [r.name for r in client.list_alert_rules()]
        with pytest.raises(Conflict, match="exists"):
            client.add_alert_rule(draft)
        unknown = draft.model_copy(update={"metric": "nope", "name": "x"})
        with pytest.raises(InvalidInput, match="unknown metric"):
            client.add_alert_rule(unknown)
        ghost = draft.model_copy(
            update={"metric": "error_rate", "scope": Scope(kind=ScopeKind.MODEL, target="ghost")}
        )
        with pytest.raises(NotFound, match="ghost"):
            client.add_alert_rule(ghost)
        metrics = {m.name: m.scopes for m in client.alert_metrics()}
        assert metrics["p99_latency_ms"] == [ScopeKind.DEPLOYMENT, ScopeKind.MODEL]
        with pytest.raises(NotFound):
            client.ack_alert(999_999)
        assert client.list_alerts(firing=True, subject="platform:none") == []
    finally:
        client.remove_alert_rule(rule.id or 0)
    assert "deep_queue" not in [r.name for r in client.list_alert_rules()]
