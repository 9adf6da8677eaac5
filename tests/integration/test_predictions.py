"""The prediction log end to end on a real server: traffic through two deployments of
two versions, sampled into Parquet files that the server moves into the artifact
store, then a feedback file (with ids never logged and one bad label) through the
CLI, and accuracy per version."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from modelhub.client import Client, RegisterRequest
from modelhub.stores.artifacts.factory import open_artifact_store
from tests.integration.conftest import Cli, ServerProcess, clean_env, make_server, running
from tests.integration.serving_helpers import deploy, oip_body, wait_for, write_model_a

REQUESTS = 12


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    import torch

    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("predictions")
    server = make_server(
        root,
        MODELHUB_PREDICTION_LOG_FILE_SECONDS="0.3",
        MODELHUB_PREDICTION_INGEST_SECONDS="0.2",
        MODELHUB_SERVE_HEALTH_SECONDS="0.2",
    )
    with running(server):
        with Client(server.url, server.token) as client:
            client.register(
                RegisterRequest(name="intents", type="classification"),
                write_model_a(root / "a1", seed=0),
            )
            client.register(RegisterRequest(name="intents"), write_model_a(root / "a2", seed=1))
        yield server


def _traffic(http: httpx.Client, endpoint: str, name: str, prefix: str) -> dict[str, str]:
    """REQUESTS one-row requests with our own ids; each id's predicted label."""
    rows = np.random.default_rng(5).normal(size=(REQUESTS, 32)).astype(np.float32)
    answers = {}
    for i in range(REQUESTS):
        body = oip_body(rows[i : i + 1]) | {"id": f"{prefix}-{i}"}
        reply = httpx.post(f"{endpoint}/v2/models/{name}/infer", json=body)
        assert reply.status_code == 200, reply.text
        assert reply.json()["id"] == reply.headers["x-request-id"] == f"{prefix}-{i}"
        outputs = {o["name"]: o for o in reply.json()["outputs"]}
        answers[f"{prefix}-{i}"] = outputs["label"]["data"][0]
    return answers


def test_traffic_is_logged_joined_with_feedback_and_scored_per_version(
    srv: ServerProcess, tmp_path: Path
) -> None:
    with srv.http(timeout=60) as http:
        one = deploy(http, model="intents@1", name="pa", prediction_log={"rate": 1.0})
        two = deploy(http, model="intents@2", name="pb", prediction_log={"rate": 1.0})
        assert one["prediction_log"] == {"rate": 1.0, "max_per_minute": 600}
        # A request without an id gets one from the replica, in the body and the header.
        reply = httpx.post(
            f"{one['endpoint']}/v2/models/pa/infer",
            json=oip_body(np.zeros((1, 32), np.float32)),
        )
        assert reply.json()["id"] == reply.headers["x-request-id"] != ""
        health = httpx.get(f"{one['endpoint']}/v2/health/live")
        assert health.headers["x-request-id"]
        # Through the platform, the replica answers under the platform's request id.
        platform = http.post("/v2/models/pa/infer", json=oip_body(np.ones((1, 32), np.float32)))
        assert platform.json()["id"] == platform.headers["x-request-id"]
        answers = _traffic(http, one["endpoint"], "pa", "a") | _traffic(
            http, two["endpoint"], "pb", "b"
        )

        def logged() -> list[dict[str, Any]] | None:
            found: list[dict[str, Any]] = http.get(
                "/api/v1/models/intents/predictions", params={"limit": 1000}
            ).json()
            ours = [p for p in found if p["request_id"] in answers]
            return ours if len(ours) == 2 * REQUESTS else None

        records = wait_for(logged, timeout=30)
        assert {r["request_id"]: r["prediction"] for r in records} == answers
        assert {r["version"] for r in records if r["request_id"].startswith("b")} == {2}
        artifacts = open_artifact_store(str(srv.home / "artifacts"))
        assert all(artifacts.exists(r["file_digest"]) for r in records)
        assert not list((srv.home / "serving" / "prediction-spool").glob("*.parquet"))
        metrics = httpx.get(f"{one['endpoint']}/metrics").text
        assert "modelhub_prediction_log_sampled_total" in metrics
        assert "modelhub_prediction_log_dropped_total 0.0" in metrics

    # Version 1: 9 of 12 labels agree with the prediction; version 2: all 12.
    wrong = {f"a-{i}" for i in range(3)}
    lines = [
        {"request_id": rid, "label": "not-" + label if rid in wrong else label}
        for rid, label in answers.items()
    ] + [{"request_id": f"never-{i}", "label": "c1"} for i in range(3)]
    cli = Cli("server", clean_env(MODELHUB_URL=srv.url, MODELHUB_TOKEN=srv.token), tmp_path)
    bad_file = tmp_path / "bad.jsonl"
    bad_file.write_text(
        "\n".join(json.dumps(x) for x in [*lines, {"request_id": "a-5", "label": 3}])
    )
    refused = cli.run("feedback", "intents", "--file", str(bad_file), ok=False)
    assert (
        refused.returncode != 0
        and "line 28" in refused.stderr
        and "nothing stored" in refused.stderr
    )
    assert cli.json("predictions", "accuracy", "intents")["labelled"] == 0

    good_file = tmp_path / "labels.jsonl"
    good_file.write_text("\n".join(json.dumps(x) for x in lines))
    outcome = cli.json("feedback", "intents", "--file", str(good_file))
    assert (outcome["stored"], outcome["unknown"], outcome["lines"]) == (24, 3, 27)
    summary = cli.json("predictions", "accuracy", "intents")
    per_version = {v["version"]: v for v in summary["per_version"]}
    assert summary["metric"] == "accuracy" and summary["labelled"] == 24
    assert per_version[1]["value"] == pytest.approx(0.75) and per_version[1]["labelled"] == 12
    assert per_version[2]["value"] == 1.0
    assert per_version[1]["predictions"] >= 12  # the id-less request above is logged too
    listed = cli.json("predictions", "list", "intents", "--limit", "5")
    assert len(listed) == 5 and all("request_id" in p for p in listed)


def test_a_private_input_is_never_written_to_the_log(srv: ServerProcess, tmp_path: Path) -> None:
    import pyarrow.parquet as pq

    with Client(srv.url, srv.token) as client:
        version = client.register(
            RegisterRequest(name="intents", private_inputs=("input",)),
            write_model_a(tmp_path / "a3", seed=2),
        )
    with srv.http(timeout=60) as http:
        deployed = deploy(
            http, model=f"intents@{version.version}", name="pc", prediction_log={"rate": 1.0}
        )
        row = np.full((1, 32), 0.123456, np.float32)
        reply = httpx.post(f"{deployed['endpoint']}/v2/models/pc/infer", json=oip_body(row))
        request_id = reply.json()["id"]

        def logged() -> dict[str, Any] | None:
            found = http.get(
                "/api/v1/models/intents/predictions", params={"version": version.version}
            ).json()
            return next((p for p in found if p["request_id"] == request_id), None)

        record = wait_for(logged, timeout=30)
    artifacts = open_artifact_store(str(srv.home / "artifacts"))
    with artifacts.local_path(record["file_digest"]) as local:
        data = pq.read_table(local).to_pydict()
    assert data["input.input"] == [None] and data["request_id"] == [request_id]
    assert data["output.label"] == [record["prediction"]]


def test_changing_the_policy_of_a_live_deployment_reaches_its_replicas(
    srv: ServerProcess, tmp_path: Path
) -> None:
    with srv.http(timeout=60) as http:
        deployed = deploy(http, model="intents@1", name="pd", prediction_log={"rate": 1.0})
    endpoint = deployed["endpoint"]
    body = oip_body(np.zeros((1, 32), np.float32))

    def sampled() -> float:
        for line in httpx.get(f"{endpoint}/metrics").text.splitlines():
            if line.startswith("modelhub_prediction_log_sampled_total "):
                return float(line.split()[1])
        raise AssertionError("no sampled counter on /metrics")

    before = sampled()
    httpx.post(f"{endpoint}/v2/models/pd/infer", json=body)
    assert sampled() == before + 1
    cli = Cli("server", clean_env(MODELHUB_URL=srv.url, MODELHUB_TOKEN=srv.token), tmp_path)
    changed = cli.json("predictions", "log", "pd", "--rate", "0")
    assert changed["prediction_log"]["rate"] == 0.0

    def stopped_sampling() -> bool:
        seen = sampled()
        httpx.post(f"{endpoint}/v2/models/pd/infer", json=body)
        return sampled() == seen

    wait_for(stopped_sampling, timeout=30)
    seen = sampled()
    for _ in range(5):
        httpx.post(f"{endpoint}/v2/models/pd/infer", json=body)
    assert sampled() == seen
    events = cli.json("audit", "list", "--action", "deployments.prediction_log")
    assert any(e["target"] == "pd" for e in events)
