"""Import and export with other platforms, on one real server and the local home.

MLflow's own save_model output imports; mlflow.pyfunc loads our MLflow export of a
trained model and predicts what the network predicts; both clients read a layout the
same way; the CLI runs both commands; bad requests register and write nothing.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from modelhub.client.http import Client
from modelhub.client.local import LocalClient
from modelhub.domain.queries import VersionQuery
from modelhub.errors import Conflict, InvalidInput, NotFound, UnsafeModel
from modelhub.services.interop import ImportRequest
from modelhub.services.registry import RegisterRequest
from modelhub.settings import Settings
from tests.integration.conftest import Cli, ServerProcess, clean_env, make_server, running
from tests.unit.interop.layouts import (
    MLMODEL_ONNX,
    write_graph,
    write_huggingface,
    write_mlflow_onnx,
)
from tests.unit.interop.trained import probabilities, train_tabular


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    srv = make_server(tmp_path_factory.mktemp("interop-server"))
    with running(srv):
        yield srv


@pytest.fixture(scope="module")
def http(hub: ServerProcess) -> Iterator[Client]:
    opened = Client(hub.url, token=hub.token)
    yield opened
    opened.close()


@pytest.fixture(scope="module")
def local(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalClient]:
    home = tmp_path_factory.mktemp("interop-local")
    with LocalClient(Settings(home=home), actor="ada") as opened:
        yield opened


@pytest.fixture(scope="module")
def trained(http: Client, tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = train_tabular(tmp_path_factory.mktemp("trained") / "model")
    http.register(RegisterRequest(name="churn", type="classification"), folder)
    return folder


def total(client: Client | LocalClient) -> int:
    return client.search(VersionQuery(all_versions=True, include_archived=True)).total


def staged(hub: ServerProcess) -> list[str]:
    return sorted(p.name for p in (hub.home / "staging").iterdir())


def test_mlflow_loads_our_export_of_a_trained_model(
    http: Client, trained: Path, tmp_path: Path
) -> None:
    import mlflow.pyfunc

    result = http.export_model("churn@1", "mlflow", tmp_path / "out")
    assert {"MLmodel", "model.onnx", "requirements.txt", "conda.yaml", "README.md"} <= set(
        result.files
    )
    model = mlflow.pyfunc.load_model(str(tmp_path / "out"))
    x = np.random.default_rng(1).normal(size=(16, 3)).astype(np.float32) * 3 + 1
    answer = model.predict(x)
    assert np.allclose(answer["probabilities"], probabilities(trained, x), atol=1e-5)
    assert model.metadata.get_input_schema().inputs[0].name == "input"
    assert "churn" in (tmp_path / "out" / "README.md").read_text()  # the generated card


def test_models_saved_by_mlflow_import(http: Client, hub: ServerProcess, tmp_path: Path) -> None:
    import mlflow.onnx
    import mlflow.pytorch
    import onnx
    import torch

    mlflow.onnx.save_model(
        onnx.load(str(write_graph(tmp_path / "g.onnx"))),
        str(tmp_path / "onnx-model"),
        pip_requirements=["onnxruntime"],
    )
    version = http.import_model(
        ImportRequest(from_format="mlflow", name="gemm"), tmp_path / "onnx-model"
    )
    assert version.framework.value == "onnx"
    assert [f.path for f in version.files] == ["model.onnx"]
    assert version.inspection["imported"]["flavor"] == "onnx"
    assert "onnxruntime" in version.inspection["imported"]["requirements"]

    torch.manual_seed(0)
    mlflow.pytorch.save_model(
        torch.nn.Sequential(torch.nn.Linear(4, 3)),
        str(tmp_path / "torch-model"),
        serialization_format="pickle",
        pip_requirements=["torch"],
    )
    before = total(http)
    with pytest.raises(UnsafeModel):
        http.import_model(ImportRequest(from_format="mlflow", name="net"), tmp_path / "torch-model")
    assert total(http) == before
    trusted = http.import_model(
        ImportRequest(from_format="mlflow", name="net", trust=True), tmp_path / "torch-model"
    )
    assert (trusted.framework.value, trusted.trusted) == ("pytorch", True)
    assert staged(hub) == []


def comparable(version: object) -> dict[str, object]:
    data = json.loads(version.model_dump_json())  # type: ignore[attr-defined]
    return {
        k: data[k] for k in ("name", "type", "framework", "digest", "signature", "model_card")
    } | {"imported": data["inspection"]["imported"]}


def test_both_clients_import_and_export_alike(
    http: Client, local: LocalClient, tmp_path: Path
) -> None:
    mlflow_dir = write_mlflow_onnx(tmp_path / "onnx-dir")
    hf = write_huggingface(tmp_path / "tiny-bert")
    seen = []
    for client in (http, local):
        a = client.import_model(ImportRequest(from_format="mlflow", name="mlf"), mlflow_dir)
        b = client.import_model(ImportRequest(from_format="huggingface"), hf)
        seen.append((comparable(a), comparable(b), client.get_model("tiny-bert").license))
    assert seen[0] == seen[1]
    mlf, bert, license = seen[0]
    assert mlf["imported"]["run_id"] == "0a1b2c3d4e5f60718293a4b5c6d7e8f9"  # type: ignore[index]
    assert (bert["type"], license) == ("classification", "apache-2.0")
    outputs = []
    for kind, client in (("http", http), ("local", local)):
        result = client.export_model("tiny-bert@1", "huggingface", tmp_path / kind)
        outputs.append({name: (tmp_path / kind / name).read_bytes() for name in result.files})
    assert outputs[0] == outputs[1]
    assert set(outputs[0]) == {
        "config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json",
        "vocab.txt", "README.md",
    }  # fmt: skip
    assert b"# Tiny BERT" in outputs[0]["README.md"]


def test_bad_imports_register_nothing(http: Client, hub: ServerProcess, tmp_path: Path) -> None:
    before = total(http)
    folder = write_mlflow_onnx(tmp_path / "m")
    cases = [
        (ImportRequest(from_format="keras", name="x"), folder, "unknown from"),
        (ImportRequest(from_format="huggingface", name="x"), folder, "config.json"),
    ]
    for request, source, expected in cases:
        with pytest.raises(InvalidInput) as caught:
            http.import_model(request, source)
        assert expected.split()[-1] in caught.value.message
    for mlmodel, expected in [
        ("flavors:\n  sklearn: {pickled_model: m.pkl}\n", "flavor sklearn"),
        (MLMODEL_ONNX.replace("data: model.onnx", "data: ../../x.onnx"), "inside the model folder"),
        ("a: [" * 50 + "]" * 50, "nests deeper"),
    ]:
        (folder / "MLmodel").write_text(mlmodel)
        with pytest.raises(InvalidInput, match=expected):
            http.import_model(ImportRequest(from_format="mlflow", name="x"), folder)
    (folder / "MLmodel").unlink()
    with pytest.raises(InvalidInput, match="no MLmodel"):
        http.import_model(ImportRequest(from_format="mlflow", name="x"), folder)
    assert total(http) == before
    assert staged(hub) == []


def test_bad_exports_write_nothing(http: Client, trained: Path, tmp_path: Path) -> None:
    full = tmp_path / "full"
    full.mkdir()
    (full / "keep.txt").write_text("mine")
    with pytest.raises(Conflict, match="not empty"):
        http.export_model("churn@1", "mlflow", full)
    with pytest.raises(NotFound):
        http.export_model("churn@99", "mlflow", tmp_path / "a")
    with pytest.raises(InvalidInput, match="to"):
        http.export_model("churn@1", "tensorflow", tmp_path / "b")
    http.import_model(
        ImportRequest(from_format="huggingface", name="bert2"), write_huggingface(tmp_path / "hf")
    )
    with pytest.raises(InvalidInput, match="huggingface, which modelhub cannot turn into ONNX"):
        http.export_model("bert2@1", "onnx", tmp_path / "c")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["full", "hf"]
    assert [p.name for p in full.iterdir()] == ["keep.txt"]


def test_the_cli_imports_and_exports(hub: ServerProcess, trained: Path, tmp_path: Path) -> None:
    cli = Cli("server", clean_env(MODELHUB_URL=hub.url, MODELHUB_TOKEN=hub.token), tmp_path)
    folder = write_mlflow_onnx(tmp_path / "model")
    version = cli.json("models", "import", str(folder), "--from", "mlflow", "--name", "cli-gemm")
    assert (version["name"], version["framework"]) == ("cli-gemm", "onnx")
    result = cli.json("models", "export", "churn@1", "--to", "onnx", "-o", str(tmp_path / "out"))
    assert {"README.md", "model.onnx"} <= set(result["files"])
    assert (tmp_path / "out" / "model.onnx").is_file()
