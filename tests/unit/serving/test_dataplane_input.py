"""The replica's data plane (a real DataPlane over a real ModelHost, called as the ASGI
app it is) answers hostile bodies with a 400 naming the problem, never a 500."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from modelhub.serving.dataplane.app import DataPlane
from modelhub.serving.host import ModelHost, ServedModel, ServedVersion

DEEP = b"[" * 100_000 + b"]" * 100_000
DEEP_OBJECT = b'{"model": "chars", "prompt": ' + DEEP + b"}"


@pytest.fixture(scope="module")
def plane(tabular_folder: Path, char_lm_folder: Path) -> Iterator[DataPlane]:
    host = ModelHost()
    host.apply(
        [
            ServedModel("tab", (ServedVersion(1, tabular_folder, 100),), preload=False),
            ServedModel("chars", (ServedVersion(1, char_lm_folder, 100),), preload=False),
        ]
    )
    yield DataPlane(host, max_body_bytes=1 << 20)
    host.close()


def call(plane: DataPlane, path: str, body: bytes) -> tuple[int, dict[str, Any]]:
    """One POST through the ASGI app; an exception escaping it fails the test."""
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "method": "POST",
        "path": path,
        "headers": [(b"content-length", str(len(body)).encode())],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
    }
    asyncio.run(plane(scope, receive, send))
    return sent[0]["status"], json.loads(sent[1]["body"])


@pytest.mark.parametrize("path", ["/v1/completions", "/v1/embeddings", "/v2/models/tab/infer"])
@pytest.mark.parametrize("body", [DEEP, DEEP_OBJECT], ids=["deep-array", "deep-field"])
def test_deeply_nested_json_is_a_400_on_every_route(
    plane: DataPlane, path: str, body: bytes
) -> None:
    status, reply = call(plane, path, body)
    assert status == 400, reply
    assert reply["error"]["code"] == "invalid_input"
    assert reply["error"]["details"]["field"] == "body"


def test_a_temperature_of_400_digits_is_a_400_on_completions(plane: DataPlane) -> None:
    raw = b'{"model": "chars", "prompt": "ab", "temperature": 1' + b"0" * 400 + b"}"
    status, reply = call(plane, "/v1/completions", raw)
    assert status == 400, reply
    assert reply["error"]["details"]["field"] == "temperature"


def test_a_temperature_of_400_digits_is_a_400_on_the_v2_route(plane: DataPlane) -> None:
    tensor = {"name": "text", "shape": [1], "datatype": "BYTES", "data": ["ab"]}
    raw = json.dumps({"inputs": [tensor], "parameters": {"temperature": 10**400}}).encode()
    status, reply = call(plane, "/v2/models/chars/infer", raw)
    assert status == 400, reply
    assert reply["error"]["details"]["field"] == "parameters.temperature"


def test_a_good_completion_still_answers(plane: DataPlane) -> None:
    raw = json.dumps({"model": "chars", "prompt": "ab", "max_tokens": 2, "temperature": 0})
    status, reply = call(plane, "/v1/completions", raw.encode())
    assert status == 200, reply
    assert len(reply["choices"][0]["text"]) == 2
