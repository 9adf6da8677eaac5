"""Plugins against a real server: the sample sklearn runtime serves a trusted pickle
through /v2, an untrusted one is refused, and broken plugins on the server's
PYTHONPATH are listed as failed while the server keeps serving. The sample trainer
`sklearn_logistic` runs a pipeline through the scheduler, and its trusted result
serves through the sample runtime."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from modelhub.client import Client
from modelhub.domain.runs import FINAL, Run, RunStatus
from modelhub.errors import InvalidInput, NotFound, PermissionDenied, UnsafeModel
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
from tests.integration.training_engine import write_blobs
from tests.plugin_dists import SAMPLE_TRAINER, broken_plugins, executor_plugins, sample_trainer

pytest.importorskip(
    "modelhub_sklearn",
    reason="the sample plugin is not installed: pip install -e examples/modelhub-sklearn-runtime",
)

ROWS = [[0.1, 0.2], [0.9, 0.8], [0.2, 0.1], [0.8, 0.9]]


@pytest.fixture(scope="module")
def plugin_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    root = tmp_path_factory.mktemp("plugins-server")
    bad = broken_plugins(root / "bad-plugins")
    sample = sample_trainer(root / "sample-trainer")
    executors = executor_plugins(root / "executors")
    path = os.pathsep.join(
        p for p in (str(bad), str(executors), *sample, clean_env().get("PYTHONPATH", "")) if p
    )
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


def logistic_spec(name: str, **fields: str) -> str:
    parts = {
        "name": name,
        "type": "pre_training",
        "trainer": SAMPLE_TRAINER,
        "datasets": "[points]",
        "max_epochs": "3",
        "hyperparameters": "{alpha: 0.001, learning_rate: 0.05}",
        "resources": "{cpus: 1, memory: 1GiB}",
        "result_model": f"{{name: {name}-model, trust: true}}",
    } | fields
    return "\n".join(f"{key}: {value}" for key, value in parts.items()) + "\n"


@pytest.fixture(scope="module")
def points(client: Client, tmp_path_factory: pytest.TempPathFactory) -> str:
    source = write_blobs(tmp_path_factory.mktemp("points") / "points.csv", rows=200)
    client.register_dataset(source, "points")
    return "points"


def finished(client: Client, run_id: int) -> Run:
    deadline = time.monotonic() + 90
    while (current := client.get_run(run_id)).status not in FINAL:
        assert time.monotonic() < deadline, f"run {run_id} still {current.status}"
        time.sleep(0.1)
    return current


def test_a_pipeline_on_the_plugin_trainer_trains_registers_and_serves(
    client: Client, points: str
) -> None:
    pipeline, _ = client.create_pipeline(logistic_spec("sk-logistic"))
    assert pipeline.trainer == SAMPLE_TRAINER
    run = client.start_run("sk-logistic")
    current = finished(client, run.id)
    assert current.status is RunStatus.COMPLETED, current.error
    # Through the same context as a built-in: metrics each epoch, checkpoints, a result.
    accuracy = client.run_metrics(run.id, "val_accuracy")
    assert [p.step for p in accuracy] == [1, 2, 3] and accuracy[-1].value > 0.9
    assert [c.step for c in client.run_checkpoints(run.id)][-1] == 3
    version = client.get(f"sk-logistic-model@{current.result_version}")
    assert version.trusted and version.framework.value == "sklearn"
    assert version.lineage.source_run == str(run.id)
    model = client.get_model("sk-logistic-model")
    assert model.type.value == "classification"  # the plugin's declared result type
    client.deploy(DeployRequest(ref="sk-logistic-model@1", name="sk-logistic"))
    deployment = client.wait_deployment("sk-logistic", timeout=60)
    assert deployment.status.value == "running", deployment.error
    body = {
        "inputs": [{"name": "input", "datatype": "FP64", "shape": [2, 2], "data": [0, 0, 3, -3]}]
    }
    outputs = {o["name"]: o for o in client.predict("sk-logistic", body)["outputs"]}
    assert outputs["label"]["data"] == ["0", "1"]


def test_a_plugin_trainers_bad_hyperparameters_are_refused_with_nothing_written(
    client: Client, points: str
) -> None:
    spec = logistic_spec(
        "sk-bad",
        hyperparameters="{alpha: -1, learning_rate: 0.05, momentum: 0.9}",
        type="fine_tuning",
        base_model="sk-logistic-model@1",
    )
    with pytest.raises(InvalidInput) as refused:
        client.create_pipeline(spec)
    fields = {e["field"]: e["message"] for e in refused.value.details["errors"]}
    assert "greater than 0" in fields["hyperparameters.alpha"]
    assert "unknown hyperparameter" in fields["hyperparameters.momentum"]
    assert "learning_rate" in fields["hyperparameters.momentum"]  # what it takes instead
    assert f"{SAMPLE_TRAINER} cannot run fine_tuning; it runs: pre_training" in fields["trainer"]
    with pytest.raises(NotFound):
        client.get_pipeline("sk-bad")


def test_an_unknown_trainer_lists_the_plugin_and_a_broken_one_says_why(
    client: Client, points: str
) -> None:
    with pytest.raises(InvalidInput) as unknown:
        client.create_pipeline(logistic_spec("sk-unknown", trainer="sklearn_logistik"))
    fields = {e["field"]: e["message"] for e in unknown.value.details["errors"]}
    assert fields["trainer"].startswith("unknown trainer 'sklearn_logistik'; choose one of: ")
    assert "tabular_classifier" in fields["trainer"] and SAMPLE_TRAINER in fields["trainer"]
    with pytest.raises(InvalidInput) as broken:
        client.create_pipeline(logistic_spec("sk-hollow", trainer="hollow_trainer"))
    message = {e["field"]: e["message"] for e in broken.value.details["errors"]}["trainer"]
    assert "trainer plugin 'hollow_trainer' cannot be used" in message
    assert "mh_test-hollow" in message and "lacks train()" in message


def test_only_an_admin_may_save_a_pipeline_whose_results_register_trusted(
    plugin_server: ServerProcess, client: Client, points: str
) -> None:
    client.add_user("dana", "developer")
    _, token = client.create_token(user="dana")
    with Client(plugin_server.url, token=token) as dana:
        with pytest.raises(PermissionDenied, match=r"models\.trust"):
            dana.create_pipeline(logistic_spec("sk-dana"))
        untrusted, _ = dana.create_pipeline(
            logistic_spec("sk-dana", result_model="{name: sk-dana-model}")
        )
    assert untrusted.name == "sk-dana"


def test_a_run_naming_an_executor_plugin_is_handed_to_it(client: Client, points: str) -> None:
    engines = {e.name: e for e in client.list_engines()}
    assert engines["handover"].kind == "plugin" and engines["handover"].status == "online"
    # Not offered: a factory that returns None, one that raises, one that returns no
    # executor, and a class where a factory belongs.
    assert not {"unset", "broken_factory", "hollow_executor", "class_executor"} & set(engines)
    with pytest.raises(InvalidInput, match="names the broken_factory engine, which this server"):
        client.create_pipeline(logistic_spec("sk-broken-engine", engine="broken_factory"))
    client.create_pipeline(
        logistic_spec(
            "sk-handover", engine="handover", result_model="{name: sk-handover-model, trust: true}"
        )
    )
    run = client.start_run("sk-handover")
    current = finished(client, run.id)
    assert current.status is RunStatus.COMPLETED, current.error
    assert current.engine == "handover" and current.result_version == 1
    log, _ = client.run_logs(run.id)
    assert f"handed over: run {run.id} attempt 1" in log.decode()
