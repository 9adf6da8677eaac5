"""Plugins against a real server: the sample sklearn runtime serves a trusted pickle
through /v2, an untrusted one is refused, and broken plugins on the server's
PYTHONPATH are listed as failed while the server keeps serving."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from modelhub.client import Client
from modelhub.errors import UnsafeModel
from modelhub.services.deployments import DeployRequest
from modelhub.services.registry import RegisterRequest
from tests.integration.conftest import (
    Cli,
    ServerProcess,
    clean_env,
    either_client,
    make_server,
    running,
)
from tests.plugin_dists import broken_plugins

pytest.importorskip(
    "modelhub_sklearn",
    reason="the sample plugin is not installed: pip install -e examples/modelhub-sklearn-runtime",
)

ROWS = [[0.1, 0.2], [0.9, 0.8], [0.2, 0.1], [0.8, 0.9]]


@pytest.fixture(scope="module")
def plugin_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    root = tmp_path_factory.mktemp("plugins-server")
    bad = broken_plugins(root / "bad-plugins")
    path = os.pathsep.join(p for p in (str(bad), clean_env().get("PYTHONPATH", "")) if p)
    srv = make_server(root, PYTHONPATH=path)
    with running(srv):
        yield srv


@pytest.fixture(scope="module")
def client(plugin_server: ServerProcess) -> Iterator[Client]:
    opened = Client(plugin_server.url, token=plugin_server.token)
    try:
        yield opened
    finally:
        opened.close()


def estimator_file(folder: Path) -> Path:
    import joblib
    from sklearn.linear_model import LogisticRegression

    folder.mkdir(parents=True, exist_ok=True)
    model = LogisticRegression(random_state=0).fit(np.array(ROWS), ["low", "high", "low", "high"])
    path = folder / "model.joblib"
    joblib.dump(model, path)
    return path


def by_name(plugins: list[dict[str, Any]], group: str) -> dict[str, dict[str, Any]]:
    """The parts that hold their name (refused plugins left out)."""
    return {p["name"]: p for p in plugins if p["group"] == group and p["status"] != "refused"}


def test_plugins_list_shows_builtins_sample_and_broken_ones(
    plugin_server: ServerProcess, tmp_path: Path
) -> None:
    cli = Cli(
        "server",
        clean_env(MODELHUB_URL=plugin_server.url, MODELHUB_TOKEN=plugin_server.token),
        tmp_path,
    )
    listed = cli.json("plugins", "list")
    runtimes = by_name(listed, "modelhub.runtimes")
    assert {"trainer_output", "sentence_transformers", "onnx"} <= set(runtimes)
    assert runtimes["onnx"]["builtin"] is True and runtimes["onnx"]["package"] == "modelhub"
    sample = runtimes["sklearn"]
    assert (sample["package"], sample["status"], sample["builtin"]) == (
        "modelhub-sklearn-runtime",
        "loaded",
        False,
    )
    assert "scikit-learn" in sample["adds"]
    assert runtimes["exploding"]["status"] == "failed"
    assert "boom at import" in runtimes["exploding"]["error"]
    assert runtimes["hollow"]["status"] == "failed"
    assert "lacks claims(), load()" in runtimes["hollow"]["error"]
    refused = [p for p in listed if p["package"] == "mh_test-shadow"]
    assert [(p["name"], p["status"]) for p in refused] == [("onnx", "refused")]
    assert "built-in" in refused[0]["error"]
    assert {"tabular_classifier", "script"} <= set(by_name(listed, "modelhub.trainers"))
    assert {"local", "ray"} <= set(by_name(listed, "modelhub.executors"))
    assert {"file", "s3"} <= set(by_name(listed, "modelhub.artifact_stores"))
    assert {"pickle", "onnx"} <= set(by_name(listed, "modelhub.inspectors"))
    # The broken plugins took nothing down, and each was logged once, not per listing.
    with plugin_server.http() as http:
        assert http.get("/readyz").status_code == 200
        assert http.get("/api/v1/plugins").json() == listed
    assert plugin_server.log.read_text().count("boom at import") == 1


def test_any_signed_in_user_may_list_plugins_and_nobody_else(
    plugin_server: ServerProcess, client: Client
) -> None:
    client.add_user("vera", "viewer")
    _, token = client.create_token(user="vera")
    with httpx.Client(base_url=plugin_server.url) as http:
        assert http.get("/api/v1/plugins").status_code == 401
        seen = http.get("/api/v1/plugins", headers={"authorization": f"Bearer {token}"})
    assert seen.status_code == 200
    assert "sklearn" in {p["name"] for p in seen.json()}


def test_both_clients_list_the_same_plugins(
    plugin_server: ServerProcess, client: Client, tmp_path: Path
) -> None:
    with either_client("local", plugin_server, tmp_path / "home") as local:
        here = {(p.group, p.name, p.package) for p in local.plugins()}
    there = {(p.group, p.name, p.package) for p in client.plugins()}
    # The server also sees the broken plugins on its PYTHONPATH; this process does not.
    assert here == {row for row in there if not row[2].startswith("mh_test")}
    assert ("modelhub.runtimes", "sklearn", "modelhub-sklearn-runtime") in here


def test_a_trusted_sklearn_pickle_is_served_through_the_plugin(
    client: Client, tmp_path: Path
) -> None:
    source = estimator_file(tmp_path / "sk")
    version = client.register(
        RegisterRequest(name="sk-trusted", type="classification", trust=True), source
    )
    assert version.trusted and version.framework.value == "sklearn"
    client.deploy(DeployRequest(ref="sk-trusted@1", name="sk-trusted"))
    deployment = client.wait_deployment("sk-trusted", timeout=60)
    assert deployment.status.value == "running", deployment.error
    body = {
        "inputs": [
            {"name": "input", "datatype": "FP64", "shape": [2, 2], "data": [0.05, 0.1, 0.95, 0.9]}
        ]
    }
    answer = client.predict("sk-trusted", body)
    outputs = {o["name"]: o for o in answer["outputs"]}
    assert outputs["label"]["data"] == ["low", "high"]
    assert outputs["probabilities"]["shape"] == [2, 2]


def test_the_same_pickle_untrusted_is_refused(client: Client, tmp_path: Path) -> None:
    source = estimator_file(tmp_path / "sk")
    with pytest.raises(UnsafeModel, match="register it with --trust"):
        client.register(RegisterRequest(name="sk-untrusted", type="classification"), source)
    with pytest.raises(Exception, match="sk-untrusted"):
        client.get("sk-untrusted@1")  # nothing half-written
