"""Explanations end to end: a real server, the HTTP client, the CLI and the local client.

A tabular classifier trained here (one planted signal column) is explained by
Integrated Gradients and by permutation over HTTP; the same network exported to ONNX
by permutation; a text classifier trained here (one planted trigger word) through the
local client. Bad input is refused with nothing recorded.
"""

from __future__ import annotations

import base64
import json
import warnings
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from modelhub.client.http import Client
from modelhub.client.local import LocalClient
from modelhub.domain.explanation import ExplainMethod, ExplainOptions
from modelhub.domain.governance import ReviewKind
from modelhub.errors import InvalidInput, PermissionDenied
from modelhub.services.registry import RegisterRequest
from modelhub.settings import Settings
from tests.integration.conftest import Cli, ServerProcess, clean_env
from tests.unit.governance.explain_models import (
    FEATURES,
    TRIGGER,
    signal_table,
    train_tabular,
    train_text,
    trigger_sentences,
)

IG = ExplainMethod.INTEGRATED_GRADIENTS
PERMUTATION = ExplainMethod.PERMUTATION


def export_onnx(folder: Path, path: Path) -> Path:
    """The trained tabular network, its normalisation and a softmax, as one ONNX graph."""
    import torch

    from modelhub.networks import tabular

    predictor = tabular.load(folder)
    mean = torch.tensor(predictor.config["mean"])
    std = torch.tensor(predictor.config["std"])

    class Probabilities(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.network = predictor.model

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.softmax(self.network((x - mean) / std), dim=1)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter announces its deprecation
        torch.onnx.export(
            Probabilities().eval(),
            (torch.zeros(2, len(FEATURES)),),
            str(path),
            input_names=["features"],
            output_names=["probabilities"],
            dynamic_axes={"features": {0: "batch"}, "probabilities": {0: "batch"}},
            dynamo=False,
        )
    return path


@pytest.fixture(scope="module")
def client(
    shared_server: ServerProcess, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Client]:
    root = tmp_path_factory.mktemp("explain")
    folder = train_tabular(root, signal_table(root / "train.csv"))
    with Client(shared_server.url, token=shared_server.token) as opened:
        opened.register(RegisterRequest(name="signal", type="classification"), folder)
        opened.register(
            RegisterRequest(name="signal-onnx", type="classification"),
            export_onnx(folder, root / "signal.onnx"),
        )
        yield opened


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return signal_table(tmp_path_factory.mktemp("sample") / "eval.csv", rows=300, seed=1)


def recorded(client: Client, name: str) -> int:
    return len(client.audit_events(action="governance.explainability", target=f"{name}@1"))


def test_integrated_gradients_and_permutation_rank_the_signal_first(
    client: Client, sample: Path
) -> None:
    found = client.explain("signal", 1, sample, ExplainOptions(row=3))
    assert found.method is IG and found.baseline == "data mean" and found.rows == 300
    assert found.ranking[0].feature == "signal"
    assert found.mean_relative_delta is not None and found.mean_relative_delta < 0.05
    assessment = found.assessment
    assert assessment.kind is ReviewKind.EXPLAINABILITY and assessment.passed
    assert assessment.figures["ranking"][0]["feature"] == "signal"
    assert "importance.png" in assessment.attachments
    assert base64.b64decode(found.chart_png).startswith(b"\x89PNG")
    assert found.local is not None and found.local.row == 3
    assert [a.feature for a in found.local.attributions] == FEATURES
    strongest = max(found.local.attributions, key=lambda a: abs(a.attribution))
    assert strongest.feature == "signal" and abs(strongest.attribution) > 0.1

    by_permutation = client.explain(
        "signal", 1, sample, ExplainOptions(method=PERMUTATION, label="label")
    )
    assert by_permutation.ranking[0].feature == "signal"
    assert by_permutation.ranking[0].importance > 0.3
    assert by_permutation.score.startswith("drop in accuracy")
    assert by_permutation.assessment.passed


def test_permutation_explains_an_onnx_version(client: Client, sample: Path) -> None:
    found = client.explain("signal-onnx", 1, sample, ExplainOptions(label="label", row=0))
    assert found.method is PERMUTATION  # the default where there is no network to differentiate
    assert found.ranking[0].feature == "signal"
    assert {r.feature for r in found.ranking} == set(FEATURES)
    assert found.local is not None and len(found.local.attributions) == len(FEATURES)
    before = recorded(client, "signal-onnx")
    with pytest.raises(InvalidInput, match="method permutation"):
        client.explain("signal-onnx", 1, sample, ExplainOptions(method=IG))
    assert recorded(client, "signal-onnx") == before


def test_bad_input_is_refused_and_nothing_is_recorded(
    client: Client, sample: Path, tmp_path: Path
) -> None:
    before = recorded(client, "signal"), recorded(client, "signal-onnx")
    lacking = tmp_path / "lacking.csv"
    pd.read_csv(sample).drop(columns=["signal"]).to_csv(lacking, index=False)
    with pytest.raises(InvalidInput, match="'signal'"):
        client.explain("signal", 1, lacking)
    holes = tmp_path / "holes.csv"
    frame = pd.read_csv(sample)
    frame.loc[7, "noise_b"] = None
    frame.to_csv(holes, index=False)
    with pytest.raises(InvalidInput, match="'noise_b' hold empty"):
        client.explain("signal-onnx", 1, holes, ExplainOptions(label="label"))
    with pytest.raises(InvalidInput, match="'outcome'"):
        client.explain("signal", 1, sample, ExplainOptions(label="outcome"))
    with pytest.raises(InvalidInput, match="row 300"):
        client.explain("signal", 1, sample, ExplainOptions(row=300))
    with pytest.raises(InvalidInput, match="no prediction"):
        words = tmp_path / "words.csv"
        frame = pd.read_csv(sample)
        frame["label"] = "yes"
        frame.to_csv(words, index=False)
        client.explain("signal", 1, words, ExplainOptions(method=PERMUTATION, label="label"))
    assert (recorded(client, "signal"), recorded(client, "signal-onnx")) == before


def test_a_developer_explains_only_the_models_they_own(
    shared_server: ServerProcess, client: Client, sample: Path
) -> None:
    client.add_user("dev", "developer")
    token = client.create_token("dev")[1]
    before = recorded(client, "signal")
    with Client(shared_server.url, token=token) as developer, pytest.raises(PermissionDenied):
        developer.explain("signal", 1, sample, ExplainOptions(method=PERMUTATION))
    assert recorded(client, "signal") == before


def test_the_cli_prints_the_ranking_and_writes_the_chart(
    shared_server: ServerProcess, client: Client, sample: Path, tmp_path: Path
) -> None:
    options = ["--data", str(sample), "--label", "label", "-o", "chart.png", "--json"]
    env = clean_env(MODELHUB_URL=shared_server.url, MODELHUB_TOKEN=shared_server.token)
    done = Cli("server", env, tmp_path).run(
        "governance", "explain", "signal-onnx@1", *options, ok=False
    )
    assert done.returncode == 0, done.stderr
    shown = json.loads(done.stdout)
    assert shown["ranking"][0]["feature"] == "signal" and "chart_png" not in shown
    assert (tmp_path / "chart.png").read_bytes().startswith(b"\x89PNG")


def test_a_text_classifier_explanation_ranks_the_trigger_word_first(tmp_path: Path) -> None:
    folder = train_text(tmp_path)
    sample = tmp_path / "texts.csv"
    pd.DataFrame(trigger_sentences(24, seed=1)).to_csv(sample, index=False)
    with LocalClient(Settings(home=tmp_path / "home"), actor="ada") as local:
        local.register(RegisterRequest(name="alarms", type="classification"), folder)
        found = local.explain("alarms", 1, sample, ExplainOptions(row=0))
    assert found.method is IG and found.rows == 24
    assert found.ranking[0].feature == TRIGGER
    assert found.local is not None and found.local.predicted == "alarm"
    assert max(found.local.attributions, key=lambda a: abs(a.attribution)).feature == TRIGGER
    # 24 texts are fewer than the default policy's 50: recorded, and failed, saying why.
    assert not found.assessment.passed
    assert "the policy needs 50" in found.assessment.summary
