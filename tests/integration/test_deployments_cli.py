"""Deployments and inference from the shell: the real CLI against a real server, and alone.

One server serves the whole module; each deployment costs a replica process that
imports torch, so the tests deploy as few as they can and stop what they start.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from modelhub.client import Client, RegisterRequest
from tests.integration.conftest import Cli, ServerProcess, clean_env, make_server, running

FEATURES = 2
CLASSES = ["no", "yes"]
ROWS = [[0.1, 2.0], [3.1, -0.4]]
FLAT = [value for row in ROWS for value in row]
REQUEST = {"inputs": [{"name": "input", "shape": [2, FEATURES], "datatype": "FP32", "data": FLAT}]}
BODY = json.dumps(REQUEST)


def write_tabular_folder(folder: Path, seed: int = 0) -> Path:
    """What the tabular_classifier trainer writes: config.json and model.safetensors."""
    from safetensors.numpy import save_file

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    hidden = 8
    weights = {
        "0.weight": rng.standard_normal((hidden, FEATURES)).astype(np.float32),
        "0.bias": np.zeros(hidden, np.float32),
        "2.weight": rng.standard_normal((len(CLASSES), hidden)).astype(np.float32),
        "2.bias": np.zeros(len(CLASSES), np.float32),
    }
    save_file(weights, str(folder / "model.safetensors"))
    config = {
        "trainer": "tabular_classifier",
        "features": ["a", "b"],
        "label": "label",
        "classes": CLASSES,
        "hidden": [hidden],
        "mean": [0.0] * FEATURES,
        "std": [1.0] * FEATURES,
        "input_dim": FEATURES,
    }
    (folder / "config.json").write_text(json.dumps(config))
    return folder


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    root = tmp_path_factory.mktemp("deployments-cli")
    srv = make_server(
        root,
        MODELHUB_SERVE_USAGE_SECONDS="0.5",
        MODELHUB_SERVE_DRAIN_SECONDS="2",
        OMP_NUM_THREADS="1",
    )
    with running(srv):
        with Client(srv.url, token=srv.token) as admin:
            for seed in (1, 2):
                request = RegisterRequest(name="intents", type="classification")
                admin.register(request, write_tabular_folder(root / f"v{seed}", seed))
        yield srv


@pytest.fixture
def cli(hub: ServerProcess, tmp_path: Path) -> Cli:
    return Cli("server", clean_env(MODELHUB_URL=hub.url, MODELHUB_TOKEN=hub.token), tmp_path)


def wait_for_show(cli: Cli, name: str, check: Any, timeout: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        shown: dict[str, Any] = cli.json("deployments", "show", name)
        if check(shown) or time.monotonic() > deadline:
            return shown
        time.sleep(0.25)


def test_deploy_predict_roll_out_scale_and_stop(cli: Cli, tmp_path: Path) -> None:
    deployed = cli.run("deploy", "intents@1", "--env", "staging").stdout
    assert "deployment intents-staging: running, v1 100%, 1 replica" in deployed
    endpoint = cli.json("deployments", "show", "intents-staging")["deployment"]["endpoint"]
    assert endpoint.startswith("http://127.0.0.1:") and f"endpoint: {endpoint}" in deployed
    assert f"curl -s {cli.env['MODELHUB_URL']}/v2/models/intents-staging/infer" in deployed

    listed = cli.json("deployments", "list")
    assert [(d["name"], d["status"], d["environment"]) for d in listed] == [
        ("intents-staging", "running", "staging")
    ]
    assert cli.json("deployments", "list", "--env", "production") == []
    assert [d["name"] for d in cli.json("deployments", "list", "--model", "intents")] == [
        "intents-staging"
    ]

    answer = cli.json("predict", "intents-staging", "--input", BODY)
    outputs = {o["name"]: o for o in answer["outputs"]}
    assert answer["model_version"] == "1"
    assert outputs["logits"]["shape"] == [2, len(CLASSES)]
    assert len(outputs["logits"]["data"]) == 2 * len(CLASSES)
    body = tmp_path / "body.json"
    body.write_text(BODY)
    table = cli.run("predict", "intents", "--file", str(body)).stdout  # by the model's name
    assert "logits" in table and "probabilities" in table and "[2, 2]" in table

    # The summary is empty until the replica's first usage sample reaches the server.
    shown = wait_for_show(
        cli, "intents-staging", lambda s: bool(s["summary"]) and s["summary"][0]["requests"] >= 2
    )
    assert [h["ready"] for h in shown["deployment"]["health"]] == [True]
    summary = shown["summary"][0]
    assert (summary["version"], summary["requests"], summary["errors"]) == (1, 2, 0)
    assert summary["error_rate"] == 0 and summary["p50_latency_ms"] > 0
    human = cli.run("deployments", "show", "intents-staging").stdout
    assert "usage (since deployed)" in human and "replicas" in human

    canary = cli.json("deployments", "update", "intents-staging", "--version", "2",
                      "--canary", "50")  # fmt: skip
    assert (canary["status"], canary["traffic"]) == (
        "updating",
        [{"version": 1, "percent": 50}, {"version": 2, "percent": 50}],
    )
    pinned = cli.json("predict", "intents-staging", "--version", "2", "--input", BODY)
    assert pinned["model_version"] == "2"
    promoted = cli.json("deployments", "promote", "intents-staging")
    assert promoted["status"] == "running" and promoted["previous_version"] == 1
    assert promoted["traffic"] == [{"version": 2, "percent": 100}]
    rolled_back = cli.json("deployments", "rollback", "intents-staging")
    assert rolled_back["traffic"] == [{"version": 1, "percent": 100}]

    assert cli.json("deployments", "scale", "intents-staging", "2")["replicas"] == 2
    scaled = wait_for_show(
        cli, "intents-staging", lambda s: sum(h["ready"] for h in s["deployment"]["health"]) == 2
    )
    assert sum(h["ready"] for h in scaled["deployment"]["health"]) == 2

    assert cli.json("deployments", "stop", "intents-staging")["status"] == "stopped"
    assert cli.json("deployments", "list") == []
    assert [d["status"] for d in cli.json("deployments", "list", "--all")] == ["stopped"]
    gone = cli.run("predict", "intents-staging", "--input", BODY, ok=False)
    assert gone.returncode == 3


def test_production_serves_approved_versions_unless_an_admin_overrides(
    cli: Cli, hub: ServerProcess
) -> None:
    refused = cli.run("deploy", "intents@1", "--env", "production", ok=False)
    assert refused.returncode == 5
    assert "intents@1 is not approved (pending)" in refused.stderr
    with Client(hub.url, token=hub.token) as admin:
        admin.add_user("dana", "data_scientist")
        dana = admin.create_token("dana")[1]
    as_dana = Cli("server", {**cli.env, "MODELHUB_TOKEN": dana}, cli.cwd)
    denied = as_dana.run(
        "deploy", "intents@1", "--env", "production", "--override-approval", ok=False
    )
    assert denied.returncode == 6 and "deployments.override" in denied.stderr

    forced = cli.json("deploy", "intents@1", "--env", "production", "--override-approval")
    assert (forced["name"], forced["status"], forced["approval_override"]) == (
        "intents",
        "running",
        True,
    )
    events = cli.json("audit", "list", "--action", "deployments.create", "--target", "intents")
    assert events[0]["actor"] == "admin"
    assert events[0]["details"]["approval_override"] == "pending"
    cli.run("deployments", "stop", "intents")


def test_bad_input_and_unknown_deployments(cli: Cli) -> None:
    for args in (
        ("deployments", "show", "nope"),
        ("deployments", "scale", "nope", "2"),
        ("deployments", "stop", "nope"),
        ("predict", "nope", "--input", BODY),
    ):
        result = cli.run(*args, ok=False)
        assert result.returncode == 3, (args, result.stderr)
        assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1
    malformed = cli.run("predict", "intents", "--input", '{"inputs": [', ok=False)
    assert malformed.returncode == 2 and "--input is not valid JSON" in malformed.stderr
    for extra in ((), ("--input", "{}", "--file", "body.json")):
        neither = cli.run("predict", "intents", *extra, ok=False)
        assert neither.returncode == 2 and "either --input JSON or --file PATH" in neither.stderr
    autoscale = cli.run("deploy", "intents", "--autoscale", "1-4", ok=False)
    assert autoscale.returncode == 2 and "--autoscale wants MIN:MAX" in autoscale.stderr


def test_local_mode_records_deployments_and_answers_in_process(tmp_path: Path) -> None:
    # predict runs torch in the CLI's own process here: one thread, the machine is shared.
    # A real process: the CLI's own, not the test's (the deployments area's subprocess test).
    env = clean_env(MODELHUB_HOME=str(tmp_path / "home"), OMP_NUM_THREADS="1")
    cli = Cli("local", env, tmp_path, subprocess=True)
    cli.run("models", "register", str(write_tabular_folder(tmp_path / "m")), "--name", "intents",
            "--type", "classification")  # fmt: skip
    said = cli.run("deploy", "intents", "--env", "staging").stdout
    assert "recorded deployment intents-staging (deploying" in said
    assert "modelhub server" in said
    recorded = cli.json("deployments", "list")
    assert [(d["name"], d["status"]) for d in recorded] == [("intents-staging", "deploying")]
    answer = cli.json("predict", "intents-staging", "--input", BODY)
    logits = next(o for o in answer["outputs"] if o["name"] == "logits")
    assert logits["shape"] == [2, len(CLASSES)]
