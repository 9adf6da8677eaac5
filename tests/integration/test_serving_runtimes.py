"""Every runtime serves a real model through a real deployment, over HTTP on loopback:
safetensors (model A), ONNX (its export), MiniLM sentence embeddings (OIP and
/v1/embeddings, also through the official `openai` client), the char-level language
model and its ONNX export (OIP and /v1/completions), and a text classifier over MiniLM.
And autoscaling follows load."""

from __future__ import annotations

import base64
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from modelhub.client import Client, RegisterRequest
from tests.integration.conftest import ServerProcess, make_server, running
from tests.integration.serving_helpers import (
    deploy,
    oip_body,
    reference_logits,
    wait_for,
    write_model_a,
)
from tests.unit.serving.builders import write_char_lm, write_text_classifier


def _minilm() -> Path:
    from modelhub.training.trainers.text_classifier import minilm_path

    return minilm_path()


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    import torch

    from modelhub.serving.export import export_onnx

    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("runtimes")
    model_a = write_model_a(root / "a")
    onnx_folder = export_onnx(model_a, root / "a-onnx")
    char_lm = write_char_lm(root / "char")
    char_lm_onnx = export_onnx(char_lm, root / "char-onnx")
    prototypes = np.eye(2, 384, dtype=np.float32)
    classifier = write_text_classifier(root / "classifier", prototypes, ["greeting", "farewell"])
    server = make_server(
        root,
        HF_HUB_OFFLINE="1",
        MODELHUB_SERVE_HEALTH_SECONDS="0.2",
        MODELHUB_SERVE_SCALE_UP_SECONDS="1",
        MODELHUB_SERVE_SCALE_DOWN_SECONDS="2",
    )
    with running(server), Client(server.url, server.token) as client:
        client.register(RegisterRequest(name="model-a", type="classification"), model_a)
        client.register(RegisterRequest(name="model-a-onnx", type="classification"), onnx_folder)
        client.register(RegisterRequest(name="minilm", type="embedding_model"), _minilm())
        client.register(RegisterRequest(name="chars", type="generation"), char_lm)
        exported = client.register(
            RegisterRequest(name="chars-onnx", type="generation"), char_lm_onnx
        )
        assert exported.framework.value == "onnx" and not exported.trusted  # no --trust needed
        client.register(RegisterRequest(name="topics", type="classification"), classifier)
        server.env["MODEL_A"] = str(model_a)
        server.env["CHAR_LM"] = str(char_lm)
        yield server


@pytest.fixture
def http(srv: ServerProcess) -> Iterator[httpx.Client]:
    with srv.http(timeout=120) as client:
        yield client


def _infer(endpoint: str, name: str, body: dict[str, Any]) -> dict[str, Any]:
    reply = httpx.post(f"{endpoint}/v2/models/{name}/infer", json=body, timeout=60)
    assert reply.status_code == 200, reply.text
    data: dict[str, Any] = reply.json()
    return {output["name"]: output for output in data["outputs"]}


def _texts(*values: str) -> dict[str, Any]:
    return {
        "inputs": [
            {"name": "text", "shape": [len(values)], "datatype": "BYTES", "data": list(values)}
        ]
    }


def test_safetensors_and_onnx_serve_the_same_logits(srv: ServerProcess, http: httpx.Client) -> None:
    rows = np.random.default_rng(0).normal(size=(4, 32)).astype(np.float32)
    expected = reference_logits(Path(srv.env["MODEL_A"]), rows)
    labels = []
    for model in ("model-a", "model-a-onnx"):
        deployment = deploy(http, model=f"{model}@1", name=model)
        assert deployment["status"] == "running", deployment
        outputs = _infer(deployment["endpoint"], model, oip_body(rows))
        logits = outputs["logits"]
        got = np.array(logits["data"], np.float32).reshape(logits["shape"])
        np.testing.assert_allclose(got, expected, atol=1e-4)
        labels.append(outputs["label"]["data"])
    assert labels[0] == labels[1]
    # the export is served as the source is: same runtime, same signature
    source, export = (http.get(f"/v2/models/{m}").json() for m in ("model-a", "model-a-onnx"))
    assert export["platform"] == source["platform"] == "tabular_classifier"
    assert (export["inputs"], export["outputs"]) == (source["inputs"], source["outputs"])


SENTENCES = ["the persona greets the user", "a model server answers quickly"]


@pytest.fixture(scope="module")
def minilm(srv: ServerProcess) -> tuple[dict[str, Any], np.ndarray]:
    """MiniLM deployed once for the module, and its own embeddings of SENTENCES."""
    from sentence_transformers import SentenceTransformer

    with srv.http(timeout=120) as http:
        deployment = deploy(http, model="minilm@1", name="minilm")
    assert deployment["status"] == "running", deployment
    expected = SentenceTransformer(str(_minilm()), device="cpu").encode(SENTENCES)
    return deployment, expected


def test_minilm_serves_embeddings_over_both_protocols(
    http: httpx.Client, minilm: tuple[dict[str, Any], np.ndarray]
) -> None:
    deployment, expected = minilm
    sentences = SENTENCES
    oip = _infer(deployment["endpoint"], "minilm", _texts(*sentences))["embedding"]
    assert oip["shape"] == [2, 384]
    np.testing.assert_allclose(np.array(oip["data"]).reshape(2, 384), expected, atol=1e-4)
    reply = httpx.post(
        f"{deployment['endpoint']}/v1/embeddings", json={"model": "minilm", "input": sentences}
    )
    assert reply.status_code == 200, reply.text
    data = reply.json()
    assert data["object"] == "list" and [d["index"] for d in data["data"]] == [0, 1]
    np.testing.assert_allclose(
        np.array([d["embedding"] for d in data["data"]]), expected, atol=1e-4
    )
    # Through the platform, by the model's name, as a persona's OpenAI client would call it.
    platform = http.post("/v1/embeddings", json={"model": "minilm", "input": "hello"})
    assert platform.status_code == 200 and len(platform.json()["data"][0]["embedding"]) == 384
    wrong = http.post("/v1/completions", json={"model": "minilm", "prompt": "hi"})
    assert wrong.status_code == 400 and "not a text generation model" in wrong.text


def test_the_openai_client_gets_embeddings_as_base64_and_as_floats(
    srv: ServerProcess, minilm: tuple[dict[str, Any], np.ndarray]
) -> None:
    from openai import BadRequestError, OpenAI

    _, expected = minilm
    with OpenAI(base_url=f"{srv.url}/v1", api_key=srv.token, max_retries=0) as client:
        # Unless told otherwise the client asks for base64 and decodes it itself.
        default = client.embeddings.create(model="minilm", input=SENTENCES)
        assert [item.index for item in default.data] == [0, 1]
        np.testing.assert_allclose([item.embedding for item in default.data], expected, atol=1e-4)
        floats = client.embeddings.create(model="minilm", input=SENTENCES, encoding_format="float")
        np.testing.assert_allclose([item.embedding for item in floats.data], expected, atol=1e-4)
        asked = client.embeddings.create(model="minilm", input=SENTENCES, encoding_format="base64")
        encoded = [item.embedding for item in asked.data]
        assert all(isinstance(text, str) for text in encoded)  # asked for, so left encoded
        vectors = [np.frombuffer(base64.b64decode(str(text)), "<f4") for text in encoded]
        np.testing.assert_array_equal(vectors, [item.embedding for item in default.data])
        with pytest.raises(BadRequestError) as refused:
            client.embeddings.create(
                model="minilm",
                input=SENTENCES,
                encoding_format="int8",  # type: ignore[arg-type]
            )
    assert refused.value.status_code == 400
    assert "encoding_format must be 'float' or 'base64'" in str(refused.value)


def test_the_char_language_model_completes_text(http: httpx.Client) -> None:
    from modelhub.training.trainers import char_lm

    deployment = deploy(http, model="chars@1", name="chars")
    assert deployment["status"] == "running", deployment
    reply = httpx.post(
        f"{deployment['endpoint']}/v1/completions",
        json={"model": "chars", "prompt": ["abc", "hgf"], "max_tokens": 12, "temperature": 0},
    )
    assert reply.status_code == 200, reply.text
    data = reply.json()
    assert data["object"] == "text_completion"
    assert [len(c["text"]) for c in data["choices"]] == [12, 12]
    assert data["usage"] == {"prompt_tokens": 6, "completion_tokens": 24, "total_tokens": 30}
    folder = Path(http.get("/api/v1/deployments/chars").json()["deployment"]["name"])  # noqa: F841
    served = _infer(
        deployment["endpoint"],
        "chars",
        {**_texts("abc"), "parameters": {"max_tokens": 12, "temperature": 0}},
    )["text"]["data"][0]
    assert served == data["choices"][0]["text"]
    assert set(served) <= set(
        char_lm.CharLMConfig.from_json(
            {"vocab": "abcdefgh ", "context_length": 16, "d_model": 16, "n_layers": 1, "n_heads": 2}
        ).vocab
    ) | {char_lm.UNKNOWN_CHAR}
    bad = httpx.post(
        f"{deployment['endpoint']}/v1/completions",
        json={"model": "chars", "prompt": "abc", "max_tokens": 0},
    )
    assert bad.status_code == 400 and "max_tokens" in bad.text


def test_the_char_lm_export_answers_the_source_bodies_as_the_source(
    srv: ServerProcess, http: httpx.Client
) -> None:
    from modelhub.serving.runtimes import load_runtime
    from tests.unit.serving.builders import texts

    deployment = deploy(http, model="chars-onnx@1", name="chars-onnx")
    assert deployment["status"] == "running", deployment
    greedy = {"max_tokens": 12, "temperature": 0}
    seeded = {"max_tokens": 12, "seed": 5}
    source = load_runtime(Path(srv.env["CHAR_LM"]))
    for parameters in (greedy, seeded):
        expected = source.infer({"text": texts("abc", "hgf")}, parameters)["text"].tolist()
        body = {**_texts("abc", "hgf"), "parameters": parameters}
        assert _infer(deployment["endpoint"], "chars-onnx", body)["text"]["data"] == expected
    completion = httpx.post(
        f"{deployment['endpoint']}/v1/completions",
        json={"model": "chars-onnx", "prompt": ["abc", "hgf"], **greedy},
    )
    assert completion.status_code == 200, completion.text
    expected = source.infer({"text": texts("abc", "hgf")}, greedy)["text"].tolist()
    assert [c["text"] for c in completion.json()["choices"]] == expected
    assert http.get("/v2/models/chars-onnx").json()["platform"] == "text_generation"


def test_a_text_classifier_labels_text(http: httpx.Client) -> None:
    deployment = deploy(http, model="topics@1", name="topics")
    assert deployment["status"] == "running", deployment
    outputs = _infer(deployment["endpoint"], "topics", _texts("hello there", "goodbye"))
    assert outputs["probabilities"]["shape"] == [2, 2]
    assert set(outputs["label"]["data"]) <= {"greeting", "farewell"}
    rows = np.array(outputs["probabilities"]["data"]).reshape(2, 2)
    np.testing.assert_allclose(rows.sum(axis=1), [1.0, 1.0], atol=1e-5)


def test_autoscaling_adds_a_replica_under_load_and_removes_it_after(http: httpx.Client) -> None:
    deployment = deploy(
        http,
        model="chars@1",
        name="busy",
        autoscale={"min_replicas": 1, "max_replicas": 2, "target_in_flight": 1},
    )
    assert deployment["replicas"] == 1
    url = f"{deployment['endpoint']}/v1/completions"
    stop = threading.Event()

    def generate() -> None:
        with httpx.Client(timeout=120) as client:
            while not stop.is_set():
                client.post(url, json={"model": "busy", "prompt": "abc", "max_tokens": 400})

    workers = [threading.Thread(target=generate, daemon=True) for _ in range(4)]
    for worker in workers:
        worker.start()
    try:
        wait_for(
            lambda: len(http.get("/api/v1/deployments/busy").json()["deployment"]["health"]) == 2,
            timeout=60,
        )
        assert http.get("/api/v1/deployments/busy").json()["deployment"]["replicas"] == 2
    finally:
        stop.set()
        for worker in workers:
            worker.join(timeout=120)

    def scaled_back_to_one() -> bool:
        found = http.get("/api/v1/deployments/busy").json()["deployment"]
        return bool(found["replicas"] == 1 and len(found["health"]) == 1)

    wait_for(scaled_back_to_one, timeout=60)
