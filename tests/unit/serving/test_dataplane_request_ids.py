"""Request ids on the replica's data plane, and what its prediction log writes: a real
DataPlane over a real ModelHost and a real PredictionLog, called as the ASGI app."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from modelhub.serving.dataplane.app import DataPlane
from modelhub.serving.host import ModelHost, ServedModel, ServedVersion
from modelhub.serving.predlog import LogTarget, PredictionLog
from tests.unit.serving.builders import FEATURES


@pytest.fixture
def spool(tmp_path: Path) -> Path:
    return tmp_path / "spool"


@pytest.fixture
def plane(tabular_folder: Path, char_lm_folder: Path, spool: Path) -> Iterator[DataPlane]:
    host = ModelHost()
    private = LogTarget("tab", "tabular", 1.0, 1000, {1: frozenset({"input"})})
    models = [
        ServedModel("tab", (ServedVersion(1, tabular_folder, 100),), preload=False, log=private),
        ServedModel("open", (ServedVersion(1, tabular_folder, 100),), preload=False),
        ServedModel("chars", (ServedVersion(1, char_lm_folder, 100),), preload=False),
    ]
    host.apply(models)
    plane = DataPlane(host, max_body_bytes=1 << 20, prediction_log=PredictionLog(spool))
    plane.configure_log(models)
    yield plane
    host.close()


def call(
    plane: DataPlane, path: str, body: Any = None, headers: tuple[tuple[bytes, bytes], ...] = ()
) -> tuple[int, dict[str, Any], dict[bytes, bytes]]:
    raw = json.dumps(body).encode() if body is not None else b""
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": raw, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "method": "POST" if body is not None else "GET",
        "path": path,
        "headers": [(b"content-length", str(len(raw)).encode()), *headers],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
    }
    asyncio.run(plane(scope, receive, send))
    return sent[0]["status"], json.loads(sent[1]["body"]), dict(sent[0]["headers"])


def oip(rows: int = 1, **extra: Any) -> dict[str, Any]:
    data = [0.5] * (rows * len(FEATURES))
    tensor = {"name": "input", "shape": [rows, len(FEATURES)], "datatype": "FP32", "data": data}
    return {"inputs": [tensor], **extra}


def test_every_answer_carries_an_id_and_an_oip_body_says_the_same(plane: DataPlane) -> None:
    status, reply, headers = call(plane, "/v2/models/open/infer", oip())
    assert status == 200 and reply["id"] == headers[b"x-request-id"].decode()
    _, again, _ = call(plane, "/v2/models/open/infer", oip())
    assert again["id"] != reply["id"]  # made by the replica, one per request
    _, _, health = call(plane, "/v2/health/live")
    status, _, missing = call(plane, "/v2/models/nothing/infer", oip())
    assert status == 404 and health[b"x-request-id"] and missing[b"x-request-id"]


def test_the_clients_header_or_body_id_is_kept(plane: DataPlane) -> None:
    given = ((b"x-request-id", b"client-7"),)
    _, reply, headers = call(plane, "/v2/models/open/infer", oip(), given)
    assert reply["id"] == "client-7" and headers[b"x-request-id"] == b"client-7"
    _, reply, headers = call(plane, "/v2/models/open/infer", oip(id="order-42"), given)
    assert reply["id"] == "order-42" and headers[b"x-request-id"] == b"order-42"
    hostile = ((b"x-request-id", b"two words\x01"),)
    _, reply, headers = call(plane, "/v2/models/open/infer", oip(), hostile)
    assert reply["id"] == headers[b"x-request-id"].decode() != "two words\x01"


def test_a_completion_id_is_the_request_id(plane: DataPlane) -> None:
    given = ((b"x-request-id", b"chat-1"),)
    status, reply, _ = call(plane, "/v1/completions", {"model": "chars", "prompt": "ab"}, given)
    assert status == 200 and reply["id"] == "cmpl-chat-1"


def test_sampled_requests_reach_the_spool_without_their_private_input(
    plane: DataPlane, spool: Path
) -> None:
    assert plane.prediction_log is not None
    ids = [call(plane, "/v2/models/tab/infer", oip(rows=2))[1]["id"] for _ in range(3)]
    call(plane, "/v2/models/open/infer", oip())  # not logged: that name has no policy
    plane.prediction_log.flush()
    (only,) = spool.glob("*.parquet")
    data = pq.read_table(only).to_pydict()
    assert data["request_id"] == [i for i in ids for _ in range(2)]
    assert data["input.input"] == [None] * 6
    assert all(ms > 0 for ms in data["latency_ms"]) and "output.label" in data
    assert plane.stats()["prediction_log"]["logged"] == 3
