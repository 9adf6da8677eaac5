"""Property tests for the "V2 and OpenAI decoding" family (issue 19, section 6).

The contract: any body either decodes to sensible values (arrays of the signature's
dtype and the declared shape, finite where the client sent finite numbers) or raises
InvalidInput naming a field; on the data plane, any body is answered with a
modelhub error and never a 500. Any other exception fails the property.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

from modelhub.domain.records import Signature, TensorSpec
from modelhub.errors import InvalidInput
from modelhub.serving.codec import NUMPY_DTYPES, InferRequest, RequestDecoder
from modelhub.serving.dataplane.app import DataPlane
from modelhub.serving.host import ModelHost

DATATYPES = ["BOOL", "UINT8", "UINT64", "INT8", "INT64", "FP16", "FP32", "FP64", "BYTES"]
SIGNATURES = {
    datatype: Signature(
        inputs=[TensorSpec(name="x", dtype=datatype, shape=[])],  # any rank, any sizes
        outputs=[TensorSpec(name="y", dtype="FP32", shape=[-1])],
    )
    for datatype in DATATYPES
}
DECODERS = {d: RequestDecoder(s, ("temperature", "seed")) for d, s in SIGNATURES.items()}

edge_numbers = st.sampled_from(
    [
        *(0, -1, 1, 255, 256, 2**63 - 1, 2**63, 2**64 - 1, 2**64, -(2**63) - 1, 10**400),
        *(0.5, -0.0, 65504.0, 65520.0, 3.4e38, 3.5e38, 1e300, -1e308, 5e-324),
        *(math.inf, -math.inf, math.nan),
    ]
)
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=True, allow_infinity=True),
    edge_numbers,
    st.text(max_size=8),
)
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner),
    max_leaves=10,
)
deep_bodies = st.builds(
    lambda depth, field: (
        b'{"model": "m", "' + field.encode() + b'": ' + b"[" * depth + b"]" * depth + b"}"
    ),
    st.sampled_from([10, 63, 64, 65, 500, 999, 1000, 5000, 50_000]),
    st.sampled_from(["input", "prompt", "temperature"]),
)
HUGE_DIMS = st.sampled_from([2**31, 2**62, 2**63, 2**64, -1, 1.5, "2"])
TYPED_VALUES: dict[str, st.SearchStrategy[Any]] = {
    "BOOL": st.booleans(),
    "UINT8": st.integers(0, 255),
    "UINT64": st.integers(0, 2**64 - 1),
    "INT8": st.integers(-128, 127),
    "INT64": st.integers(-(2**63), 2**63 - 1),
    "FP16": st.floats(allow_nan=True) | st.integers(-70000, 70000),
    "FP32": st.floats(allow_nan=True),
    "FP64": st.floats(allow_nan=True),
    "BYTES": st.text(max_size=4),
}


def rarely(draw: st.DrawFn) -> bool:
    return draw(st.integers(0, 9)) == 0


@st.composite
def v2_bodies(draw: st.DrawFn) -> tuple[str, bytes]:
    """Mostly well-formed bodies (so that decoding succeeds often), each part sometimes
    replaced by something hostile: edge numbers, huge dims, junk fields, a cut body."""
    datatype = draw(st.sampled_from(DATATYPES))
    dims = st.integers(0, 3) if not rarely(draw) else st.integers(0, 3) | HUGE_DIMS
    shape = draw(st.lists(dims, min_size=1, max_size=3) if not rarely(draw) else json_values)
    count = 1
    for dim in shape if type(shape) is list else []:
        count *= dim if type(dim) is int and 0 <= dim <= 3 else 1
    values = TYPED_VALUES[datatype] if not rarely(draw) else scalars
    data = draw(
        st.lists(values, min_size=count, max_size=count) if not rarely(draw) else json_values
    )
    tensor: dict[str, Any] = {"name": "x", "datatype": datatype, "shape": shape, "data": data}
    if rarely(draw):
        tensor = draw(st.dictionaries(st.sampled_from(list(tensor)), json_values)) | tensor
    payload: dict[str, Any] = {"inputs": [tensor]}
    if rarely(draw):
        payload["parameters"] = draw(st.dictionaries(st.sampled_from(["seed", "x"]), json_values))
    if rarely(draw):
        payload["outputs"] = draw(json_values)
    raw = json.dumps(payload).encode()
    if rarely(draw):
        raw = raw[: draw(st.integers(0, len(raw)))]  # cut anywhere
    return datatype, raw


def check_sensible(request: InferRequest, datatype: str, raw: bytes) -> None:
    array = request.inputs["x"]
    tensor = json.loads(raw)["inputs"][0]
    assert list(array.shape) == tensor["shape"]
    assert array.dtype == NUMPY_DTYPES[datatype]
    if datatype == "BYTES":
        assert all(type(text) is str for text in array.flat)
    assert request.rows == tensor["shape"][0]
    if array.dtype.kind == "f":
        sent = np.array(tensor["data"], dtype=np.float64).reshape(array.shape)
        assert not (np.isfinite(sent) & ~np.isfinite(array)).any()


@settings(max_examples=200)
@given(v2_bodies())
def test_a_v2_body_decodes_sensibly_or_is_invalid_input(case: tuple[str, bytes]) -> None:
    datatype, raw = case
    try:
        request = DECODERS[datatype].decode(raw)
    except InvalidInput as exc:
        assert exc.details.get("field"), exc
        event("refused")
        return
    check_sensible(request, datatype, raw)
    event("decoded")


@settings(max_examples=100)
@given(st.binary(max_size=64) | json_values.map(lambda v: json.dumps(v).encode()) | deep_bodies)
def test_any_bytes_decode_or_are_invalid_input(raw: bytes) -> None:
    with contextlib.suppress(InvalidInput):  # anything else fails the property
        DECODERS["FP32"].decode(raw)


# -- the OpenAI routes, through the data plane ------------------------------------


@pytest.fixture(scope="module")
def plane() -> Iterator[DataPlane]:
    host = ModelHost()  # serves nothing: a body that parses ends in a 404
    yield DataPlane(host, max_body_bytes=1 << 20)
    host.close()


def post(plane: DataPlane, path: str, body: bytes) -> int:
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {"type": "http", "method": "POST", "path": path, "headers": [], "client": None}
    asyncio.run(plane(scope, receive, send))
    assert json.loads(sent[1]["body"])["error"]["code"]
    status: int = sent[0]["status"]
    return status


openai_bodies = st.fixed_dictionaries(
    {},
    optional={
        "model": st.text(max_size=4) | json_values,
        "input": json_values,
        "prompt": json_values,
        "temperature": json_values,
        "max_tokens": json_values,
        "seed": json_values,
        "n": json_values,
        "stream": json_values,
        "encoding_format": json_values,
    },
).map(lambda body: json.dumps(body).encode())


@settings(max_examples=80)
@given(
    st.sampled_from(["/v1/embeddings", "/v1/completions"]),
    openai_bodies | deep_bodies | st.binary(max_size=32),
)
def test_an_openai_body_is_answered_with_a_modelhub_error_not_a_500(
    plane: DataPlane, path: str, raw: bytes
) -> None:
    assert post(plane, path, raw) in (400, 404)
