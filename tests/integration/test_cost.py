"""Cost over a real server: a real short training run shows its measured cost in
`runs show`, a deployment with traffic its replica cost and cost per 1,000 requests,
`cost report` groups them, budgets list this month's spend, and /metrics and the
client carry the platform's figures. One server and one run for the whole module."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from modelhub import Client
from tests.integration.conftest import Cli, ServerProcess, clean_env, make_server, running
from tests.integration.test_training_api import spec, write_blobs, write_pipeline

REQUEST = {
    "inputs": [
        {"name": "input", "shape": [2, 2], "datatype": "FP32", "data": [0.1, 2.0, 3.1, -0.4]}
    ]
}


def wait_until(check: Callable[[], Any], timeout: float = 60) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found:
            return found
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.25)


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    srv = make_server(
        tmp_path_factory.mktemp("cost"),
        MODELHUB_SERVE_USAGE_SECONDS="0.5",
        MODELHUB_SERVE_DRAIN_SECONDS="1",
        MODELHUB_COST_FIGURES_CACHE_SECONDS="0",
        # Requests per deployment come from the history roll-ups: close them every second.
        MODELHUB_MONITORING_ROLLUP_SECONDS="1",
        OMP_NUM_THREADS="1",
    )
    with running(srv):
        yield srv


@pytest.fixture(scope="module")
def cli(hub: ServerProcess, tmp_path_factory: pytest.TempPathFactory) -> Cli:
    env = clean_env(MODELHUB_URL=hub.url, MODELHUB_TOKEN=hub.token)
    return Cli("server", env, tmp_path_factory.mktemp("cost-cli"))


@pytest.fixture(scope="module")
def trained(cli: Cli) -> int:
    """One real short training run (two epochs of a small tabular classifier)."""
    cli.json("datasets", "register", str(write_blobs(cli.cwd / "blobs.csv")), "--name", "blobs")
    pipeline = write_pipeline(cli.cwd / "pipelines", spec("blobs-mlp", "blobs-clf"))
    run = cli.json("train", str(pipeline))
    assert run["status"] == "completed"
    return int(run["id"])


def test_a_finished_run_shows_its_measured_cost_beside_its_estimate(cli: Cli, trained: int) -> None:
    shown = cli.json("runs", "show", str(trained))
    cost = shown["cost"]
    assert cost["subject"] == f"run:{trained}" and cost["currency"] == "USD"
    assert cost["cpu_seconds"] > 0 and cost["parts"]["cpu"] > 0
    assert cost["total"] == pytest.approx(cost["parts"]["cpu"] + cost["parts"]["gpu"])
    assert cost["gpu_seconds"] == 0  # no GPU was given to it
    assert cost["estimate"] is not None and cost["estimate"] > 0
    human = cli.run("runs", "show", str(trained)).stdout
    assert "cost:" in human and "CPU-s" in human and "estimated before the run" in human


def test_a_deployment_with_traffic_shows_replica_cost_per_thousand_requests(
    cli: Cli, trained: int, hub: ServerProcess
) -> None:
    deployed = cli.json("deploy", "blobs-clf@1", "--env", "staging")
    name = deployed["name"]
    try:
        for _ in range(3):
            cli.json("predict", name, "--input", json.dumps(REQUEST))

        def costed() -> dict[str, Any] | None:
            shown: dict[str, Any] = cli.json("deployments", "show", name)
            served = sum(u["requests"] for u in shown["usage"])
            cost = shown["cost"]
            return (
                shown
                if served >= 3 and cost["replica_seconds"] > 0 and cost["requests"] >= 3
                else None
            )

        cost = wait_until(costed)["cost"]
        assert cost["parts"]["replicas"] > 0 and cost["requests"] == 3
        assert cost["per_1000_requests"] == pytest.approx(cost["total"] / 3 * 1000)
        assert "per 1,000 requests" in cli.run("deployments", "show", name).stdout

        report = cli.json("cost", "report", "--by", "model")
        (row,) = [r for r in report["rows"] if r["key"] == "blobs-clf"]
        assert row["cost"]["parts"]["cpu"] > 0 and row["cost"]["parts"]["replicas"] > 0
        assert row["cost"]["parts"]["storage"] > 0 and row["cost"]["storage_bytes"] > 0
        assert report["total"] >= row["cost"]["total"] > 0
        assert report["storage_bytes"] > 0
        by_deployment = cli.json("cost", "report", "--by", "deployment", "--since", "1h")
        assert [r["key"] for r in by_deployment["rows"]] == [name]
        by_run = cli.json("cost", "report", "--by", "run")
        assert [r["key"] for r in by_run["rows"]] == [str(trained)]
        assert "cost by model" in cli.run("cost", "report").stdout

        with Client(hub.url, token=hub.token) as client:
            figures = client.platform_figures("1h")
        (local,) = figures.training
        assert (local.engine, local.runs_completed, local.success_ratio) == ("local", 1, 1.0)
        assert local.utilisation_ratio is not None and 0 < local.utilisation_ratio <= 1
        assert [d.deployment for d in figures.deployments] == [name]
        assert figures.uptime_ratio is not None and 0 < figures.uptime_ratio <= 1
        metrics = httpx.get(f"{hub.url}/metrics").text
        assert 'modelhub_training_success_ratio{engine="local"} 1.0' in metrics
        assert f'modelhub_deployment_uptime_ratio{{deployment="{name}"}}' in metrics
    finally:
        cli.json("deployments", "stop", name)


def test_budgets_from_the_cli(cli: Cli, trained: int) -> None:
    created = cli.json("cost", "budget", "set", "--model", "blobs-clf", "--monthly", "100")
    assert created["scope"] == "model" and created["value"] == "blobs-clf"
    (status,) = [
        b for b in cli.json("cost", "budget", "list") if b["budget"]["id"] == created["id"]
    ]
    assert status["spent"] > 0 and status["fired"] == []
    bad = cli.run("cost", "budget", "set", "--tag", "team", "--monthly", "5", ok=False)
    assert bad.returncode == 2 and "KEY=VALUE" in bad.stderr
    unknown = cli.run("cost", "report", "--by", "colour", ok=False)
    assert unknown.returncode == 2 and "cannot group cost by 'colour'" in unknown.stderr
    assert cli.json("cost", "budget", "remove", str(created["id"]))["id"] == created["id"]
    assert cli.run("cost", "budget", "remove", str(created["id"]), ok=False).returncode == 3
