"""Both clients take the prediction-log calls alike: private inputs at registration,
reading an empty log, feedback for ids never logged, a refused file, bad input."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from modelhub.client import Client, RegisterRequest
from modelhub.client.contract import ModelhubClient
from modelhub.client.local import LocalClient
from modelhub.domain.predictions import PredictionLogPolicy
from modelhub.errors import InvalidInput, NotFound
from modelhub.samples import write_mlp_onnx
from modelhub.settings import Settings
from tests.integration.conftest import ServerProcess


@pytest.fixture(params=["http", "local"])
def client(
    request: pytest.FixtureRequest, shared_server: ServerProcess, tmp_path: Path
) -> Iterator[ModelhubClient]:
    opened: ModelhubClient
    if request.param == "http":
        opened = Client(shared_server.url, token=shared_server.token)
    else:
        opened = LocalClient(Settings(home=tmp_path / "home"), actor="ada")
    try:
        yield opened
    finally:
        opened.close()


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
