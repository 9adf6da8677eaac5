"""Both clients, one contract: the same request models give the same answers and errors.

The HTTP client talks to a real server; the local client works on its own home.
Nothing here starts a replica: the deployment calls are ones the rules refuse, and
the prediction-log calls read an empty log.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from modelhub.client import (
    DeployRequest,
    ModelhubClient,
    RegisterRequest,
    RolloutRequest,
    VersionQuery,
)
from modelhub.domain.predictions import PredictionLogPolicy
from modelhub.errors import IllegalTransition, InvalidInput, NotFound
from modelhub.samples import write_mlp_onnx, write_mlp_safetensors
from tests.integration.conftest import ServerProcess, either_client


@pytest.fixture(params=["http", "local"])
def client(
    request: pytest.FixtureRequest, shared_server: ServerProcess, tmp_path: Path
) -> Iterator[ModelhubClient]:
    with either_client(request.param, shared_server, tmp_path / "home") as opened:
        yield opened


def test_register_and_search_take_the_same_models(
    client: ModelhubClient, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    name = f"contract-{request.node.callspec.id}"  # the shared server outlives one test
    weights = write_mlp_safetensors(tmp_path / "w.safetensors")
    first = RegisterRequest(
        name=name, type="classification", tags={"team": "contract"}, metrics={"acc": 0.5}
    )
    v1 = client.register(first, weights)
    v2 = client.register(RegisterRequest(name=name, label="1.1.0"), weights)
    assert (v1.version, v1.metrics, v2.version, v2.label) == (1, {"acc": 0.5}, 2, "1.1.0")

    newest = client.search(VersionQuery(name=name, tags={"team": "contract"}))
    assert [(v.name, v.version) for v in newest.items] == [(name, 2)] and newest.total == 1
    every = client.search(VersionQuery(name=name, all_versions=True, limit=1, offset=1))
    assert [v.version for v in every.items] == [1] and every.total == 2  # newest first
    assert client.search(VersionQuery(name=name, stage="production")).total == 0

    with pytest.raises(InvalidInput, match="unknown stage 'moon'"):
        client.search(VersionQuery(stage="moon"))
    with pytest.raises(InvalidInput, match="limit"):
        client.search(VersionQuery(limit=0))


def test_deployment_requests_are_refused_alike(
    client: ModelhubClient, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    name = f"gated-{request.node.callspec.id}"
    client.register(
        RegisterRequest(name=name, type="custom"),
        write_mlp_safetensors(tmp_path / "w.safetensors"),
    )
    with pytest.raises(IllegalTransition, match="not approved"):
        client.deploy(DeployRequest(ref=f"{name}@1", environment="production"))
    with pytest.raises(NotFound):
        client.update_deployment(RolloutRequest(deployment=f"{name}-none", version=1))
    assert client.list_deployments(model=name) == []
    with pytest.raises(InvalidInput, match="unknown environment 'moon'"):
        DeployRequest(ref=name, environment="moon")


def test_prediction_calls_behave_alike(
    client: ModelhubClient, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    name = f"plog-{request.node.callspec.id}"  # the shared server outlives one test
    onnx = write_mlp_onnx(tmp_path / "m.onnx")
    with pytest.raises(InvalidInput, match="'nope' is not an input"):
        client.register(
            RegisterRequest(name=name, type="classification", private_inputs=("nope",)), onnx
        )
    with pytest.raises(NotFound):
        client.list_predictions(name)  # the refused registration left no model behind
    version = client.register(
        RegisterRequest(name=name, type="classification", private_inputs=("features",)), onnx
    )
    assert [(s.name, s.private) for s in version.signature.inputs] == [("features", True)]
    stored = client.get(f"{name}@{version.version}")  # read back from the store
    assert [(s.name, s.private) for s in stored.signature.inputs] == [("features", True)]

    assert client.list_predictions(name, since="1h") == []
    summary = client.accuracy(name, since="1h")
    assert (summary.value, summary.labelled, summary.predictions) == (None, 0, 0)

    unknown = tmp_path / "unknown.jsonl"
    unknown.write_text(
        "\n".join(json.dumps({"request_id": f"x{i}", "label": "a"}) for i in range(3))
    )
    outcome = client.send_feedback(name, unknown)
    assert (outcome.stored, outcome.unknown, outcome.lines) == (0, 3, 3)

    broken = tmp_path / "broken.jsonl"
    broken.write_text('{"request_id": "x1", "label": "a"}\n{"label": "a"}\n')
    with pytest.raises(InvalidInput, match="line 2: request_id") as caught:
        client.send_feedback(name, broken)
    assert caught.value.details["bad_lines"] == [2]
    with pytest.raises(InvalidInput, match="since"):
        client.accuracy(name, since="yesterday")
    with pytest.raises(NotFound):
        client.set_prediction_log(f"{name}-nowhere", PredictionLogPolicy(rate=0.5))


def test_tuning_calls_refuse_alike(client: ModelhubClient) -> None:
    from modelhub.domain.tuning import TuneRequest
    from tests.integration.training_engine import tabular_spec

    with pytest.raises(NotFound, match="no tuning study named 'nope'"):
        client.study("nope")
    with pytest.raises(NotFound):
        client.resume_study("nope")
    with pytest.raises(NotFound):
        client.study_chart("nope")
    plain = tabular_spec("untuned")
    with pytest.raises(InvalidInput, match="no search block"):
        client.tune(TuneRequest(spec=plain, trials=2))
    bad = tabular_spec("badly", search="{params: {nope: {type: int, low: 1, high: 2}}}")
    with pytest.raises(InvalidInput) as caught:
        client.tune(TuneRequest(spec=bad, trials=2, timeout="1h"))
    fields = {e["field"] for e in caught.value.details["errors"]}
    assert fields == {"search.params.nope"}
    with pytest.raises(InvalidInput, match="timeout"):
        client.tune(TuneRequest(spec=bad, trials=2, timeout="soon"))


def test_pools_read_the_same_on_both_clients(client: ModelhubClient) -> None:
    pools = client.list_pools()
    assert [p.name for p in pools] == ["shared"]
    shared = client.get_pool("shared")
    assert shared.name == "shared" and shared.replicas_wanted >= 1 and shared.memory_budget > 0
    with pytest.raises(NotFound, match="no pool named 'elsewhere'"):
        client.get_pool("elsewhere")
    with pytest.raises(NotFound):
        client.deploy(DeployRequest(ref="nothing-here@1", pool="elsewhere"))
