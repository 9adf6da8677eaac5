"""Monitoring end to end on one real server with generated traffic, as a user meets it.

A tabular classifier (4 features) is registered, given a drift reference with
`modelhub monitor reference`, deployed with every request logged, and sent traffic
straight to its replica: in-distribution rows, then rows whose feature f2 is shifted
by three standard deviations, and a few malformed requests that fail. Feedback labels
for the logged request ids follow (three in four agree with the answer). Then, through
the CLI and the client, `monitor NAME --json` must show the exact request and error
counts, latency percentiles, accuracy 0.75 from the feedback, a drift verdict naming f2
read from the live prediction log, trends against the previous window, cost, and a
retrain recommendation; `--report` writes one self-contained page; an error-rate rule
fires and reaches a signed webhook on 127.0.0.1; `monitor --platform` answers.

The roll-up period, the prediction log's file and ingest periods, and the alert
engine's evaluation period are all under a second, so nothing waits for a minute.
"""

from __future__ import annotations

import io
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from modelhub.client import Client, RegisterRequest
from modelhub.domain.alerts import AlertRuleDraft, Comparison, Scope, ScopeKind
from modelhub.domain.monitor_report import MonitorReport
from modelhub.monitoring.alert_payload import SIGNATURE_HEADER, verify
from tests.integration.conftest import Cli, ServerProcess, clean_env, make_server, running
from tests.integration.serving_helpers import deploy, oip_body, wait_for
from tests.unit.services.alert_receiver import Received, Receiver, receiver

FEATURES = ["f0", "f1", "f2", "f3"]
CLASSES = ["low", "mid", "high"]
IN_DISTRIBUTION = 120
SHIFTED = 120
MALFORMED = 6
SHIFT = 3.0  # standard deviations, on f2 only
SECRET = "end-to-end-secret"


def write_tabular(folder: Path) -> Path:
    """A small MLP saved as the tabular trainer saves it (features, classes, scaling)."""
    import torch

    from modelhub.networks import tabular

    folder.mkdir(parents=True)
    torch.manual_seed(0)
    model = tabular.build_model(len(FEATURES), [8], len(CLASSES))
    tabular.write_output(
        folder, model, FEATURES, "label", CLASSES, [8], np.zeros(len(FEATURES)), np.ones(4)
    )
    return folder


def write_csv(path: Path, rows: np.ndarray) -> Path:
    lines = [",".join(FEATURES)] + [",".join(f"{v:.6g}" for v in row) for row in rows]
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture(scope="module")
def hook() -> Iterator[Receiver]:
    with receiver() as started:
        yield started


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    import torch

    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("monitoring-e2e")
    server = make_server(
        root,
        MODELHUB_MONITORING_ROLLUP_SECONDS="1",
        MODELHUB_PREDICTION_LOG_FILE_SECONDS="0.3",
        MODELHUB_PREDICTION_INGEST_SECONDS="0.2",
        MODELHUB_SERVE_HEALTH_SECONDS="0.2",
        MODELHUB_SERVE_USAGE_SECONDS="0.3",
        MODELHUB_ALERTS_EVALUATION_SECONDS="0.2",
        MODELHUB_ALERTS_DISPATCH_SECONDS="0.2",
        MODELHUB_ALERTS_WEBHOOK_SECRET=SECRET,
        MODELHUB_ALERTS_WEBHOOK_BACKOFF_SECONDS="0",
    )
    with running(server):
        with Client(server.url, server.token) as client:
            client.register(
                RegisterRequest(name="churn", type="classification"), write_tabular(root / "m")
            )
        yield server


@pytest.fixture(scope="module")
def cli(srv: ServerProcess, tmp_path_factory: pytest.TempPathFactory) -> Cli:
    cwd = tmp_path_factory.mktemp("cli")
    return Cli("server", clean_env(MODELHUB_URL=srv.url, MODELHUB_TOKEN=srv.token), cwd)


def send(endpoint: str, rows: np.ndarray, prefix: str) -> dict[str, str]:
    """One request per row under our own ids: each id's predicted label."""
    answers: dict[str, str] = {}
    with httpx.Client(timeout=30) as client:
        for i, row in enumerate(rows):
            body = oip_body(row[None, :]) | {"id": f"{prefix}-{i}"}
            reply = client.post(f"{endpoint}/v2/models/churn-prod/infer", json=body)
            assert reply.status_code == 200, reply.text
            outputs = {o["name"]: o for o in reply.json()["outputs"]}
            answers[f"{prefix}-{i}"] = outputs["label"]["data"][0]
    return answers


def send_malformed(endpoint: str) -> None:
    """Rows of 3 values for a model of 4 features: each request fails as bad input."""
    with httpx.Client(timeout=30) as client:
        for _ in range(MALFORMED):
            body = oip_body(np.zeros((1, 3), np.float32))
            reply = client.post(f"{endpoint}/v2/models/churn-prod/infer", json=body)
            assert reply.status_code == 400, reply.text


@pytest.fixture(scope="module")
def traffic(srv: ServerProcess, cli: Cli, hook: Receiver) -> dict[str, str]:
    """The reference, the deployment, the alert rule, the traffic and the feedback."""
    rng = np.random.default_rng(2026)
    reference = write_csv(cli.cwd / "eval.csv", rng.normal(size=(500, 4)))
    made = cli.json("monitor", "reference", "churn@1", "--data", str(reference))
    assert (made["status"], made["rows"], made["source"]) == ("ready", 500, "eval.csv")
    with Client(srv.url, srv.token) as client:
        rule = client.add_alert_rule(
            AlertRuleDraft(
                metric="error_rate",
                comparison=Comparison.ABOVE,
                threshold=0.01,
                scope=Scope(kind=ScopeKind.MODEL, target="churn"),
                name="churn_errors",
                webhooks=[hook.url],
            )
        )
    assert rule.severity == "warning"
    with srv.http(timeout=60) as http:
        deployed = deploy(http, model="churn@1", name="churn-prod", prediction_log={"rate": 1.0})
    endpoint = deployed["endpoint"]
    shifted = rng.normal(size=(SHIFTED, 4))
    shifted[:, 2] += SHIFT
    answers = send(endpoint, rng.normal(size=(IN_DISTRIBUTION, 4)), "in")
    answers |= send(endpoint, shifted, "shifted")
    send_malformed(endpoint)

    with srv.http(timeout=60) as http:

        def all_logged() -> bool:
            found = http.get(
                "/api/v1/models/churn/predictions", params={"limit": 1000, "since": "1h"}
            ).json()
            return {p["request_id"] for p in found} >= set(answers)

        wait_for(all_logged, timeout=30)
    # Three labels in four agree with the answer; two ids were never logged.
    lines = [
        {"request_id": rid, "label": label if i % 4 else next(c for c in CLASSES if c != label)}
        for i, (rid, label) in enumerate(answers.items())
    ] + [
        {"request_id": "never-logged-1", "label": "low"},
        {"request_id": "never-2", "label": "mid"},
    ]
    labels = cli.cwd / "labels.jsonl"
    labels.write_text("\n".join(json.dumps(line) for line in lines) + "\n")
    outcome = cli.json("feedback", "churn", "--file", str(labels))
    assert (outcome["stored"], outcome["unknown"]) == (len(answers), 2)
    return answers


@pytest.fixture(scope="module")
def report(srv: ServerProcess, traffic: dict[str, str]) -> MonitorReport:
    """The report once the replica's roll-ups hold every request sent."""
    total = len(traffic) + MALFORMED

    def complete() -> MonitorReport | None:
        with Client(srv.url, srv.token) as client:
            found = client.monitor("churn", since="1h")
        counted = found.performance.requests if found.performance else 0
        assert counted <= total, f"{counted} requests counted, {total} sent"
        return found if counted == total and found.cost is not None else None

    found: MonitorReport = wait_for(complete, timeout=30, interval=0.3)
    return found


@pytest.fixture(scope="module")
def shown(cli: Cli, report: MonitorReport) -> dict[str, Any]:
    """`modelhub monitor churn --since 1h --json --report page.html`, run once."""
    found: dict[str, Any] = cli.json("monitor", "churn", "--since", "1h", "--report", "page.html")
    return found


def test_the_report_shows_what_the_traffic_did(
    traffic: dict[str, str], shown: dict[str, Any]
) -> None:
    performance = shown["performance"]
    assert performance["requests"] == len(traffic) + MALFORMED == 246
    assert performance["errors"] == MALFORMED
    assert performance["error_rate"] == pytest.approx(MALFORMED / 246)
    assert performance["errors_by_kind"] == {"invalid_input": MALFORMED}
    assert performance["rows"] >= len(traffic)
    assert 0 < performance["p50_ms"] <= performance["p95_ms"] <= performance["p99_ms"]
    assert [v["version"] for v in performance["versions"]] == [1]

    accuracy = shown["accuracy"]
    assert accuracy["metric"] == "accuracy" and accuracy["value"] == pytest.approx(0.75)
    assert accuracy["labelled"] == len(traffic) and accuracy["predictions"] >= len(traffic)

    drift = shown["drift"]
    assert drift["version"] == 1 and drift["drifted"] and drift["drifted_features"] == ["f2"]
    verdicts = {f["feature"]: f for f in drift["features"]}
    assert set(FEATURES) <= set(verdicts)
    assert verdicts["f2"]["drifted"] and verdicts["f2"]["test"]
    assert not any(verdicts[f]["drifted"] for f in ("f0", "f1", "f3"))

    # Against the previous hour, when the model had no traffic and no storage yet.
    trends = {t["metric"]: t for t in shown["trends"]}
    assert (trends["requests"]["current"], trends["requests"]["previous"]) == (246, 0)
    assert trends["requests"]["direction"] == "up"
    assert trends["error_rate"]["direction"] == "up" and trends["error_rate"]["better"] is False
    assert trends["p99_ms"]["direction"] == trends["accuracy"]["direction"] == "new"
    assert trends["cost"]["previous"] == 0

    cost = shown["cost"]
    assert cost["currency"] == "USD" and cost["total"] > 0 and cost["previous_total"] == 0
    assert cost["per_1000_requests"] == pytest.approx(cost["total"] / 246 * 1000)
    retrain = [r for r in shown["recommendations"] if r["kind"] == "retrain"]
    assert len(retrain) == 1 and "f2" in retrain[0]["seen"]
    assert not [r for r in shown["recommendations"] if r["kind"] == "set_reference"]
    assert [d["name"] for d in shown["deployments"]] == ["churn-prod"]
    parts = {p["part"] for p in shown["health"]["parts"]}
    assert "drift" in parts and shown["health"]["score"] < 100


def test_the_html_report_is_one_self_contained_page(cli: Cli, shown: dict[str, Any]) -> None:
    page = (cli.cwd / "page.html").read_text()
    assert page.startswith("<!DOCTYPE html>") and "<h1>churn</h1>" in page
    assert "<svg" in page and "f2" in page and "retrain" in page
    # Nothing fetched from elsewhere: no external script, style sheet or image.
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", page)


def test_the_error_rate_rule_fires_and_reaches_the_webhook_signed(
    srv: ServerProcess, hook: Receiver, report: MonitorReport
) -> None:
    def notified() -> list[Received]:
        return [r for r in list(hook.received) if b"churn_errors" in r.body]

    first = wait_for(notified, timeout=30)[0]
    assert verify(first.body, first.headers[SIGNATURE_HEADER], SECRET)
    payload = json.loads(first.body)
    assert payload["status"] == "firing"
    (sent,) = payload["alerts"]
    assert sent["labels"]["alertname"] == "churn_errors"
    assert sent["labels"]["severity"] == "warning"
    with Client(srv.url, srv.token) as client:
        firing = [a for a in client.list_alerts(firing=True) if a.subject == "model:churn"]
        assert [a.rule for a in firing] == ["churn_errors"]
        deliveries = client.alert_deliveries(firing[0].id)
        listed = client.monitor("churn", since="1h").alerts
    assert [(d.url, d.status, d.outcome) for d in deliveries][:1] == [(hook.url, "firing", "ok")]
    assert len(notified()) == 1  # one incident, one notification
    assert [(a.rule, a.state) for a in listed] == [("churn_errors", "firing")]


def test_the_platform_figures_answer(cli: Cli, report: MonitorReport) -> None:
    figures = cli.json("monitor", "--platform", "--since", "1h")
    assert figures["platform"]["engine"] == "all"
    uptime = {d["deployment"]: d for d in figures["deployments"]}
    assert uptime["churn-prod"]["seconds_observed"] > 0
    assert 0 < uptime["churn-prod"]["uptime_ratio"] <= 1


def test_the_tables_show_the_same_findings(report: MonitorReport) -> None:
    """What `modelhub monitor churn` prints, rendered from the same report."""
    from rich.console import Console

    from modelhub.cli.monitor_view import report_views

    console = Console(width=200, record=True, file=io.StringIO())
    for view in report_views(report):
        console.print(view)
    text = console.export_text()
    assert f"health {report.health.score}/100" in text
    assert "246" in text and "f2" in text and "churn-prod" in text and "retrain" in text
