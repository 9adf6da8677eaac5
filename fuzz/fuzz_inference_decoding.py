"""Coverage-guided fuzzing of the "V2 and OpenAI decoding" family (issue 19, section 6).

    python fuzz/fuzz_inference_decoding.py fuzz/corpus/inference_decoding/ -max_total_time=60

Every input is a request body. It is decoded against a V2 signature of every OIP
datatype (`RequestDecoder.decode`), and posted to `/v1/embeddings` and
`/v1/completions` of a real data plane (`DataPlane`, as a replica runs it) that serves
no model, so that a body which parses ends in a 404. The contract: a modelhub error or
a sensible result; any other exception, or a 500 from the data plane, is a crash.
Needs the `fuzz` extra (atheris).
"""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Any

import atheris
import numpy as np  # imported before instrumentation: only modelhub is instrumented

with atheris.instrument_imports(include=["modelhub"]):
    from modelhub.domain.records import Signature, TensorSpec
    from modelhub.errors import ModelhubError
    from modelhub.serving.codec import NUMPY_DTYPES, RequestDecoder
    from modelhub.serving.dataplane.app import DataPlane
    from modelhub.serving.host import ModelHost

DECODERS = [
    RequestDecoder(
        Signature(
            inputs=[TensorSpec(name="x", dtype=datatype, shape=shape)],
            outputs=[TensorSpec(name="y", dtype="FP32", shape=[-1])],
        ),
        ("temperature", "seed"),
    )
    for datatype in NUMPY_DTYPES
    for shape in ([], [-1, 4])
]
LOOP = asyncio.new_event_loop()
PLANE = DataPlane(ModelHost(), max_body_bytes=1 << 20)


def post(path: str, body: bytes) -> int:
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {"type": "http", "method": "POST", "path": path, "headers": [], "client": None}
    LOOP.run_until_complete(PLANE(scope, receive, send))
    json.loads(sent[1]["body"])
    status: int = sent[0]["status"]
    return status


def test_one_input(data: bytes) -> None:
    for decoder in DECODERS:
        try:
            request = decoder.decode(data)
        except ModelhubError:
            continue
        for array in request.inputs.values():
            assert isinstance(array, np.ndarray)
    for path in ("/v1/embeddings", "/v1/completions"):
        status = post(path, data)
        if status >= 500:
            raise AssertionError(f"{path} answered {status}")


def main() -> None:
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
