"""History on a real server: traffic to a deployment comes back as an exact
performance summary through both the API and the client; the platform's and a
replica's /metrics pass `promtool check metrics`, and the sample alerting rules pass
`promtool check rules`.

promtool is the Debian package `prometheus`. Without it these tests skip with the
reason, except under MODELHUB_REQUIRE_PROMTOOL=1 (CI), where they fail.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from modelhub.client import Client, RegisterRequest
from tests.integration.conftest import ServerProcess, make_server, running
from tests.integration.serving_helpers import deploy, oip_body, wait_for, write_model_a

REQUIRE_PROMTOOL = os.environ.get("MODELHUB_REQUIRE_PROMTOOL", "") not in ("", "0")
RULES = Path(__file__).parents[2] / "docs" / "prometheus-rules.yml"
GOOD, BAD = 20, 3


def promtool() -> str:
    path = shutil.which("promtool")
    if path is None:
        reason = "promtool is not installed (Debian package prometheus)"
        if REQUIRE_PROMTOOL:
            pytest.fail(f"MODELHUB_REQUIRE_PROMTOOL=1 and {reason}")
        pytest.skip(reason)
    return path


def check_metrics(text: str) -> None:
    done = subprocess.run(
        [promtool(), "check", "metrics"], input=text, capture_output=True, text=True, timeout=30
    )
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    root = tmp_path_factory.mktemp("history")
    model = write_model_a(root / "model")
    server = make_server(
        root,
        MODELHUB_SERVE_USAGE_SECONDS="0.3",
        MODELHUB_SERVE_HEALTH_SECONDS="0.2",
        # Hand roll-ups over every second (they merge into their minute) and sample
        # replica processes often, so the test need not wait for a minute to end.
        MODELHUB_MONITORING_ROLLUP_SECONDS="1",
        MODELHUB_MONITORING_RESOURCE_SECONDS="0.5",
    )
    with running(server):
        with Client(server.url, server.token) as client:
            client.register(RegisterRequest(name="intents", type="classification"), model)
        yield server


@pytest.fixture(scope="module")
def endpoint(srv: ServerProcess) -> str:
    """A deployment of two replicas that answered GOOD requests of two rows and BAD
    invalid ones (spread over both: the summary must merge their minutes), each
    sampled by its replica's prediction log."""
    with srv.http(timeout=60) as http:
        deployment = deploy(
            http, model="intents@1", name="watched", replicas=2, prediction_log={"rate": 1.0}
        )
    assert deployment["status"] == "running", deployment
    url = f"{deployment['endpoint']}/v2/models/watched/infer"
    # A connection per request, so that the kernel spreads them over both replicas.
    for _ in range(GOOD):
        reply = httpx.post(url, json=oip_body(np.ones((2, 32))), timeout=30, trust_env=False)
        assert reply.status_code == 200
    for _ in range(BAD):
        reply = httpx.post(url, json={"inputs": []}, timeout=30, trust_env=False)
        assert reply.status_code == 400
    return str(deployment["endpoint"])


def test_traffic_comes_back_as_an_exact_performance_summary(
    srv: ServerProcess, endpoint: str
) -> None:
    with Client(srv.url, srv.token) as client:

        def all_counted() -> Any:
            summary = client.performance("intents", since="1h")
            return summary if summary.requests == GOOD + BAD else None

        summary = wait_for(all_counted, timeout=30)
        assert summary.errors == BAD
        assert summary.errors_by_kind == {"invalid_input": BAD}
        assert summary.rows == 2 * GOOD
        assert set(summary.versions) == {1} and summary.versions[1].requests == GOOD + BAD
        assert summary.latency_sketch.count == GOOD + BAD
        assert summary.p50_ms is not None and summary.p99_ms is not None
        assert 0 < summary.p50_ms <= summary.p99_ms
        assert sum(point.requests for point in summary.series) == GOOD + BAD
        assert summary.resolution == "minute"
        assert client.performance("intents", since="1h", version=2).requests == 0

        def sampled() -> Any:
            found = client.performance("intents", since="1h")
            return found if found.rss_bytes else None

        with_resources = wait_for(sampled, timeout=30)
        assert with_resources.rss_bytes > 10 * 2**20  # a replica holds torch: many MiB
        assert with_resources.cpu_percent is not None
    with srv.http() as http:
        assert http.get("/api/v1/models/nope/performance").status_code == 404
        bad = http.get("/api/v1/models/intents/performance", params={"since": "soon"})
        assert bad.status_code == 400 and "since" in bad.json()["error"]["message"]


def test_platform_and_replica_metrics_pass_promtool(srv: ServerProcess, endpoint: str) -> None:
    labels = 'deployment="watched",model="intents",version="1"'
    with srv.http() as http:

        def platform_counted() -> str | None:
            text = http.get("/metrics").text
            counted = f"modelhub_inference_requests_total{{{labels}}} 23.0" in text
            sampled = f"modelhub_prediction_log_sampled_total{{{labels}}} 23.0" in text
            return text if counted and sampled else None

        platform = wait_for(platform_counted, timeout=30)
    assert f"modelhub_inference_errors_total{{{labels}}} 3.0" in platform
    # The replicas' prediction log counters, summed over both, per deployment version.
    assert f"modelhub_prediction_log_dropped_total{{{labels}}} 0.0" in platform
    assert f"modelhub_prediction_log_capped_total{{{labels}}} 0.0" in platform
    assert f"modelhub_prediction_log_logged_total{{{labels}}} " in platform
    assert "modelhub_inference_request_duration_seconds_bucket{" in platform
    assert 'modelhub_deployment_replicas{deployment="watched"} 2.0' in platform
    assert "modelhub_http_request_duration_seconds_bucket{" in platform
    check_metrics(platform)
    replica = httpx.get(f"{endpoint}/metrics", trust_env=False).text  # one of the two
    assert f"modelhub_inference_requests_total{{{labels}}} " in replica
    assert f"modelhub_inference_rows_total{{{labels}}} " in replica
    assert "modelhub_inference_in_flight_requests " in replica
    check_metrics(replica)


def test_the_sample_alerting_rules_pass_promtool() -> None:
    done = subprocess.run(
        [promtool(), "check", "rules", str(RULES)], capture_output=True, text=True, timeout=30
    )
    assert done.returncode == 0, done.stdout + done.stderr
