"""The Open Inference Protocol codec: requests decode to the arrays runtimes take, every
mistake a client can make is a 400 naming its field, responses encode back."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest

from modelhub.domain.records import Signature, TensorSpec
from modelhub.errors import InvalidInput
from modelhub.serving.codec import (
    InferRequest,
    RequestDecoder,
    concat_rows,
    decode_request,
    encode_response,
    model_metadata,
    split_rows,
)

TABULAR = Signature(
    inputs=[TensorSpec(name="input", dtype="FP32", shape=[-1, 4])],
    outputs=[
        TensorSpec(name="logits", dtype="FP32", shape=[-1, 3]),
        TensorSpec(name="label", dtype="BYTES", shape=[-1]),
    ],
)
MIXED = Signature(
    inputs=[
        TensorSpec(name="text", dtype="BYTES", shape=[-1]),
        TensorSpec(name="ids", dtype="INT8", shape=[-1, 2]),
        TensorSpec(name="mask", dtype="BOOL", shape=[-1, "seq"]),
    ],
    outputs=[TensorSpec(name="out", dtype="FP32", shape=[-1])],
)
GENERATION = ("max_tokens", "temperature")


def body(value: Any) -> bytes:
    return json.dumps(value).encode()


def tabular_body(**overrides: Any) -> bytes:
    tensor = {"name": "input", "shape": [2, 4], "datatype": "FP32", "data": list(range(8))}
    tensor.update(overrides)
    return body({"inputs": [tensor]})


def mixed_inputs(rows: int = 2) -> list[dict[str, Any]]:
    return [
        {"name": "text", "shape": [rows], "datatype": "BYTES", "data": ["a", "b"][:rows]},
        {"name": "ids", "shape": [rows, 2], "datatype": "INT8", "data": [[1, -2], [3, 4]][:rows]},
        {"name": "mask", "shape": [rows, 3], "datatype": "BOOL", "data": [True] * 3 * rows},
    ]


def refused(raw: bytes, signature: Signature = TABULAR, accepted: tuple[str, ...] = ()) -> Any:
    with pytest.raises(InvalidInput) as caught:
        decode_request(raw, signature, accepted)
    return caught.value


# -- decoding what is right ----------------------------------------------------


def test_a_flat_fp32_tensor_decodes_to_rows() -> None:
    request = decode_request(tabular_body(), TABULAR, ())
    assert isinstance(request, InferRequest)
    array = request.inputs["input"]
    assert array.dtype == np.float32
    assert array.shape == (2, 4)
    assert array.tolist() == [[0, 1, 2, 3], [4, 5, 6, 7]]
    assert request.rows == 2
    assert (request.id, request.parameters, request.outputs) == (None, {}, None)


def test_nested_data_id_parameters_and_wanted_outputs() -> None:
    raw = body(
        {
            "id": "r-1",
            "inputs": [
                {"name": "input", "shape": [1, 4], "datatype": "FP32", "data": [[0.5, 1, 2, 3]]}
            ],
            "parameters": {"max_tokens": 3},
            "outputs": [{"name": "label"}, {"name": "logits", "parameters": {}}],
        }
    )
    request = decode_request(raw, TABULAR, GENERATION)
    assert request.inputs["input"].tolist() == [[0.5, 1, 2, 3]]
    assert request.id == "r-1"
    assert request.parameters == {"max_tokens": 3}
    assert request.outputs == ["label", "logits"]


def test_several_inputs_of_several_datatypes() -> None:
    request = decode_request(body({"inputs": mixed_inputs()}), MIXED, ())
    assert request.rows == 2
    assert request.inputs["text"].dtype == object
    assert request.inputs["text"].tolist() == ["a", "b"]
    assert request.inputs["ids"].dtype == np.int8
    assert request.inputs["ids"].tolist() == [[1, -2], [3, 4]]
    assert request.inputs["mask"].dtype == np.bool_
    assert request.inputs["mask"].shape == (2, 3)  # a named dim matches any size


def test_a_decoder_built_once_decodes_the_same() -> None:
    decoder = RequestDecoder(TABULAR, ())
    assert decoder.decode(tabular_body()).inputs["input"].tolist() == [
        [0, 1, 2, 3],
        [4, 5, 6, 7],
    ]


def test_zero_rows_decode_to_an_empty_batch() -> None:
    request = decode_request(tabular_body(shape=[0, 4], data=[]), TABULAR, ())
    assert request.rows == 0
    assert request.inputs["input"].shape == (0, 4)


# -- every mistake names its field ---------------------------------------------


@pytest.mark.parametrize(
    ("raw", "field", "words"),
    [
        (b"{not json", "body", "not valid JSON"),
        (b"\xff\xfe", "body", "not valid JSON"),
        (b"[1, 2]", "body", "JSON object"),
        (body({}), "inputs", "inputs"),
        (body({"inputs": []}), "inputs", "non-empty"),
        (body({"inputs": ["x"]}), "inputs[0]", "JSON object"),
        (body({"inputs": [{"shape": [1, 4], "datatype": "FP32"}]}), "inputs[0].name", "name"),
        (body({"id": 7, "inputs": []}), "inputs", "inputs"),
        (tabular_body(name="features"), "inputs[0].name", "'features'"),
        (tabular_body(datatype=None), "inputs[0].datatype", "datatype"),
        (tabular_body(datatype="FP64"), "inputs[0].datatype", "'FP64'"),
        (tabular_body(shape=None), "inputs[0].shape", "shape"),
        (tabular_body(shape=[2, "4"]), "inputs[0].shape", "non-negative integers"),
        (tabular_body(shape=[2, -4]), "inputs[0].shape", "non-negative integers"),
        (tabular_body(shape=[2, 5]), "inputs[0].shape", "[-1, 4]"),
        (tabular_body(shape=[8]), "inputs[0].shape", "[-1, 4]"),
        (tabular_body(data=None), "inputs[0].data", "data"),
        (tabular_body(data="0,1,2"), "inputs[0].data", "data"),
        (tabular_body(data=list(range(7))), "inputs[0].data", "holds 7 values"),
        (tabular_body(data=[*range(7), "x"]), "inputs[0].data", "strings"),
        (tabular_body(data=[*range(7), "7"]), "inputs[0].data", "strings"),
        (tabular_body(data=[*range(7), None]), "inputs[0].data", "null"),
        (tabular_body(data=[True] * 8), "inputs[0].data", "booleans"),
        (tabular_body(data=[[0, 1, 2, 3], [4, 5, 6]]), "inputs[0].data", "FP32"),
    ],
)
def test_a_bad_request_is_refused_naming_its_field(raw: bytes, field: str, words: str) -> None:
    error = refused(raw)
    assert error.details["field"] == field
    assert words in error.message


def test_a_non_string_id_is_refused() -> None:
    raw = body({"id": 7, "inputs": json.loads(tabular_body())["inputs"]})
    assert refused(raw).details["field"] == "id"


def test_a_datatype_mismatch_names_both_datatypes() -> None:
    error = refused(tabular_body(datatype="INT64"))
    assert "INT64" in error.message and "FP32" in error.message
    assert error.details["input"] == "input"


def test_inputs_must_agree_on_rows() -> None:
    inputs = mixed_inputs()
    inputs[1] = {"name": "ids", "shape": [1, 2], "datatype": "INT8", "data": [1, 2]}
    error = refused(body({"inputs": inputs}), MIXED)
    assert error.details["field"] == "inputs[1].shape"
    assert "rows" in error.message


def test_a_missing_input_is_named() -> None:
    error = refused(body({"inputs": mixed_inputs()[:2]}), MIXED)
    assert error.details == {"field": "inputs", "input": "mask"}


def test_an_input_given_twice_is_refused() -> None:
    inputs = mixed_inputs()
    error = refused(body({"inputs": [*inputs, inputs[0]]}), MIXED)
    assert error.details["field"] == "inputs[3].name"


@pytest.mark.parametrize(
    ("data", "words"),
    [([1, 200], "outside INT8"), ([1, 2.5], "fractions"), ([1, 2**70], "INT8")],
)
def test_integers_must_fit_their_datatype(data: list[Any], words: str) -> None:
    inputs = mixed_inputs(1)
    inputs[1]["data"] = data
    error = refused(body({"inputs": inputs}), MIXED)
    assert error.details["field"] == "inputs[1].data"
    assert words in error.message


def test_bytes_data_must_be_strings() -> None:
    inputs = mixed_inputs()
    inputs[0]["data"] = ["a", 3]
    error = refused(body({"inputs": inputs}), MIXED)
    assert error.details["field"] == "inputs[0].data"
    assert "int" in error.message


def test_bool_data_must_be_booleans() -> None:
    inputs = mixed_inputs(1)
    inputs[2]["data"] = [1, 0, 1]
    assert refused(body({"inputs": inputs}), MIXED).details["field"] == "inputs[2].data"


def test_an_unknown_parameter_is_refused() -> None:
    raw = body({"inputs": json.loads(tabular_body())["inputs"], "parameters": {"top_p": 0.9}})
    error = refused(raw, accepted=GENERATION)
    assert error.details["field"] == "parameters.top_p"
    assert "max_tokens" in error.message  # says what is accepted


def test_parameters_must_be_an_object() -> None:
    raw = body({"inputs": json.loads(tabular_body())["inputs"], "parameters": [1]})
    assert refused(raw).details["field"] == "parameters"


def test_a_requested_output_must_exist() -> None:
    inputs = json.loads(tabular_body())["inputs"]
    error = refused(body({"inputs": inputs, "outputs": [{"name": "logits"}, {"name": "x"}]}))
    assert error.details["field"] == "outputs[1].name"
    assert "'x'" in error.message
    assert refused(body({"inputs": inputs, "outputs": {"name": "x"}})).details == {
        "field": "outputs"
    }
    assert refused(body({"inputs": inputs, "outputs": [{}]})).details["field"] == (
        "outputs[0].name"
    )


# -- encoding -------------------------------------------------------------------


def test_a_response_carries_every_output_flat() -> None:
    outputs = {
        "logits": np.array([[0.5, -1.25, 3.0]], dtype=np.float32),
        "label": np.array(["dog"], dtype=object),
        "count": np.array([3], dtype=np.int64),
    }
    response = json.loads(encode_response("pets", "2", "r-1", outputs, None))
    assert response == {
        "model_name": "pets",
        "model_version": "2",
        "id": "r-1",
        "outputs": [
            {"name": "logits", "datatype": "FP32", "shape": [1, 3], "data": [0.5, -1.25, 3.0]},
            {"name": "label", "datatype": "BYTES", "shape": [1], "data": ["dog"]},
            {"name": "count", "datatype": "INT64", "shape": [1], "data": [3]},
        ],
    }


def test_a_response_holds_only_the_wanted_outputs_in_their_order() -> None:
    outputs = {"a": np.zeros(1, np.float32), "b": np.ones(1, np.float64), "c": np.zeros(1)}
    response = json.loads(encode_response("m", "1", None, outputs, ["b", "a"]))
    assert "id" not in response
    assert [(o["name"], o["datatype"]) for o in response["outputs"]] == [
        ("b", "FP64"),
        ("a", "FP32"),
    ]


def test_fp32_values_round_trip_exactly_and_short() -> None:
    values = np.random.default_rng(0).standard_normal(64).astype(np.float32) * 1e-3
    raw = encode_response("m", "1", None, {"x": values}, None)
    data = json.loads(raw)["outputs"][0]["data"]
    assert np.array_equal(np.array(data, dtype=np.float32), values)
    assert len(raw) < 64 * 16  # not the float64 expansion of each value


def test_non_finite_floats_still_encode() -> None:
    raw = encode_response("m", "1", None, {"x": np.array([np.nan, np.inf, 1.0])}, None)
    data = json.loads(raw)["outputs"][0]["data"]
    assert np.isnan(data[0]) and data[1] == float("inf") and data[2] == 1.0


def test_model_metadata_lists_the_signature() -> None:
    assert model_metadata("pets", ["1", "2"], "tabular_classifier", TABULAR) == {
        "name": "pets",
        "versions": ["1", "2"],
        "platform": "tabular_classifier",
        "inputs": [{"name": "input", "datatype": "FP32", "shape": [-1, 4]}],
        "outputs": [
            {"name": "logits", "datatype": "FP32", "shape": [-1, 3]},
            {"name": "label", "datatype": "BYTES", "shape": [-1]},
        ],
    }


# -- batching helpers ----------------------------------------------------------


def test_concat_then_split_gives_each_request_its_rows() -> None:
    first = {"x": np.arange(8, dtype=np.float32).reshape(2, 4), "t": np.array(["a", "b"], object)}
    second = {"x": np.full((1, 4), 9, np.float32), "t": np.array(["c"], object)}
    batch = concat_rows([first, second])
    assert batch["x"].shape == (3, 4)
    assert batch["t"].tolist() == ["a", "b", "c"]
    back = split_rows(batch, [2, 1])
    assert [part["t"].tolist() for part in back] == [["a", "b"], ["c"]]
    assert np.array_equal(back[0]["x"], first["x"])
    assert np.array_equal(back[1]["x"], second["x"])


def test_a_single_request_passes_through_untouched() -> None:
    only = {"x": np.zeros((2, 4), np.float32)}
    assert concat_rows([only]) is only
    assert split_rows(only, [2])[0] is only


def test_split_refuses_outputs_that_lost_rows() -> None:
    with pytest.raises(ValueError, match="rows"):
        split_rows({"x": np.zeros((2, 1))}, [2, 1])


def test_absurdly_nested_json_is_invalid_not_a_crash() -> None:
    assert refused(b"[" * 100_000 + b"]" * 100_000).details["field"] == "body"


# -- hostile bodies: bounded before anything is allocated (issue 19) ------------------

OPEN = Signature(
    inputs=[TensorSpec(name="x", dtype="FP32", shape=[-1, -1])],
    outputs=[TensorSpec(name="y", dtype="FP32", shape=[-1])],
)


def one_tensor(datatype: str, shape: list[int], data: list[Any], name: str = "x") -> bytes:
    return body({"inputs": [{"name": name, "shape": shape, "datatype": datatype, "data": data}]})


def typed(datatype: str) -> Signature:
    return Signature(
        inputs=[TensorSpec(name="x", dtype=datatype, shape=[-1])],
        outputs=[TensorSpec(name="y", dtype="FP32", shape=[-1])],
    )


@pytest.mark.parametrize("shape", [[0, 2**62], [0, 2**31], [2**40, 2**40, 0], [0, 2**63], [1] * 33])
def test_a_shape_too_large_on_an_open_dimension_is_refused_before_allocating(
    shape: list[int],
) -> None:
    error = refused(one_tensor("FP32", shape, []), OPEN)
    assert error.details["field"] == "inputs[0].shape"


def test_an_empty_tensor_with_a_sensible_shape_still_decodes() -> None:
    request = decode_request(one_tensor("FP32", [0, 7], []), OPEN, ())
    assert request.inputs["x"].shape == (0, 7)


def test_uint64_max_is_an_integer_not_a_fraction() -> None:
    data = [0, 2**64 - 1, 2**63]
    request = decode_request(one_tensor("UINT64", [3], data), typed("UINT64"), ())
    assert request.inputs["x"].dtype == np.uint64
    assert request.inputs["x"].tolist() == data


@pytest.mark.parametrize(
    ("datatype", "data", "words"),
    [
        ("UINT64", [-1, 2**64 - 1], "outside UINT64"),
        ("UINT64", [2**64], "outside UINT64"),
        ("INT64", [1, 2**63], "outside INT64"),
        ("INT64", [2**70], "outside INT64"),
        ("UINT64", [0.5, 2**64 - 1], "fractions"),
        ("UINT64", [None, 2**64 - 1], "mixed or null"),
    ],
)
def test_integers_beyond_64_bits_are_named_as_such(
    datatype: str, data: list[Any], words: str
) -> None:
    error = refused(one_tensor(datatype, [len(data)], data), typed(datatype))
    assert words in error.message and error.details["field"] == "inputs[0].data"


@pytest.mark.parametrize(
    ("datatype", "value"), [("FP16", 1e300), ("FP16", 70000), ("FP32", 1e300), ("FP32", -1e39)]
)
def test_a_number_beyond_the_datatype_is_refused_not_made_inf(datatype: str, value: Any) -> None:
    error = refused(one_tensor(datatype, [2], [1.0, value]), typed(datatype))
    assert f"beyond {datatype}" in error.message and error.details["field"] == "inputs[0].data"


def test_nan_and_infinity_sent_as_such_pass_through() -> None:
    raw = b'{"inputs":[{"name":"x","shape":[3],"datatype":"FP16","data":[NaN,Infinity,65504]}]}'
    values = decode_request(raw, typed("FP16"), ()).inputs["x"]
    assert np.isnan(values[0]) and np.isinf(values[1]) and values[2] == 65504


@pytest.mark.parametrize(
    ("value", "words"),
    [
        pytest.param(10**400, "beyond 64 bits", id="400-digits"),
        pytest.param([1, 2], "a list", id="list"),
        pytest.param({"a": 1}, "an object", id="object"),
        pytest.param(float("inf"), "inf", id="infinity"),
    ],
)
def test_a_parameter_must_be_a_bounded_scalar(value: Any, words: str) -> None:
    inputs = json.loads(tabular_body())["inputs"]
    raw = body({"inputs": inputs, "parameters": {"temperature": value}})
    error = refused(raw, TABULAR, GENERATION)
    assert words in error.message and error.details["field"] == "parameters.temperature"


def test_a_huge_integer_parameter_string_is_invalid_json_not_a_crash() -> None:
    raw = tabular_body()[:-1] + b', "parameters": {"temperature": ' + b"9" * 5000 + b"}}"
    assert refused(raw, TABULAR, GENERATION).details["field"] == "body"
