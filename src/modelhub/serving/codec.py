"""Open Inference Protocol (V2) REST JSON to numpy and back, built for the hot path.

Only the standard library's `json` and numpy run per request: a request for a small
model costs about as much to decode as the model costs to run, so every check here is
one comparison, never a pydantic model or a loop over values (BYTES aside: each text
is checked to be a string).

Every problem a client can fix is an `InvalidInput` whose `details["field"]` names the
place in the body (`inputs[0].shape`, `parameters.max_tokens` ...).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from modelhub.domain.bounded_json import parse_error
from modelhub.domain.records import Signature
from modelhub.errors import InvalidInput

# OIP datatype -> numpy dtype. BYTES travels as object arrays of str.
NUMPY_DTYPES: dict[str, np.dtype[Any]] = {
    "BOOL": np.dtype(np.bool_),
    "UINT8": np.dtype(np.uint8),
    "UINT16": np.dtype(np.uint16),
    "UINT32": np.dtype(np.uint32),
    "UINT64": np.dtype(np.uint64),
    "INT8": np.dtype(np.int8),
    "INT16": np.dtype(np.int16),
    "INT32": np.dtype(np.int32),
    "INT64": np.dtype(np.int64),
    "FP16": np.dtype(np.float16),
    "FP32": np.dtype(np.float32),
    "FP64": np.dtype(np.float64),
    "BYTES": np.dtype(object),
}
_DATATYPES_BY_DTYPE: dict[np.dtype[Any], str] = {v: k for k, v in NUMPY_DTYPES.items()}
# The numpy kinds that JSON numbers of each OIP datatype may parse into.
_FLOAT_KINDS = frozenset("fiu")
_INT_KINDS = frozenset("iu")
_BOOL_KINDS = frozenset("b")
_DECODER_CACHE_SIZE = 256
# Bounds a shape must keep before anything is allocated: numpy, ONNX Runtime and torch
# all index with 64-bit integers and cap the rank, and no model takes more than this.
MAX_TENSOR_RANK = 32
MAX_TENSOR_ELEMENTS = 2**31 - 1  # counting a 0 dimension as 1: [0, 2**62] is refused too
# Parameters are scalars (OIP); an integer one fits 64 bits, a number one is finite.
_PARAMETER_INT_RANGE = (-(2**63), 2**64 - 1)


def datatype_of(array: np.ndarray) -> str:
    """The OIP datatype of a numpy array (str/bytes arrays are BYTES); ValueError if none fits."""
    datatype = _DATATYPES_BY_DTYPE.get(array.dtype)
    if datatype is not None:
        return datatype
    if array.dtype.kind in "US":
        return "BYTES"
    raise ValueError(f"no Open Inference Protocol datatype carries numpy {array.dtype}")


@dataclass(slots=True)
class InferRequest:
    id: str | None
    inputs: dict[str, np.ndarray]
    parameters: dict[str, Any]
    outputs: list[str] | None
    rows: int


@dataclass(frozen=True, slots=True)
class _InputSpec:
    name: str
    datatype: str
    dtype: np.dtype[Any]
    shape: tuple[int, ...] | None  # None: any rank; -1: any size on that axis
    kinds: frozenset[str]  # empty for BYTES
    limits: tuple[int, int] | None  # integer range of the dtype
    float_max: float  # the largest finite value of a float dtype narrower than FP64, else 0
    float_max_squared: float


def _input_spec(name: str, datatype: str, shape: list[int | str]) -> _InputSpec:
    dtype = NUMPY_DTYPES.get(datatype)
    if dtype is None:
        raise ValueError(f"signature input {name!r} has datatype {datatype!r}, not an OIP one")
    dims = tuple(d if isinstance(d, int) and d >= 0 else -1 for d in shape) if shape else None
    kinds: frozenset[str] = frozenset()
    limits = None
    float_max = 0.0
    if dtype.kind == "f":
        kinds = _FLOAT_KINDS
        if dtype.itemsize < 8:
            float_max = float(np.finfo(dtype).max)
    elif dtype.kind in "iu":
        kinds = _INT_KINDS
        info = np.iinfo(dtype)
        limits = (int(info.min), int(info.max))
    elif dtype.kind == "b":
        kinds = _BOOL_KINDS
    return _InputSpec(name, datatype, dtype, dims, kinds, limits, float_max, float_max**2)


def _fail(message: str, field: str, **details: Any) -> InvalidInput:
    return InvalidInput(message, {"field": field, **details})


class RequestDecoder:
    """Decodes requests for one model: build once per loaded model, call `decode` per request.

    Raises ValueError at construction when the signature uses a datatype OIP lacks.
    """

    def __init__(self, signature: Signature, accepted_parameters: tuple[str, ...]) -> None:
        self.signature = signature
        self.parameter_names = accepted_parameters
        self.accepted_parameters = frozenset(accepted_parameters)
        self._specs = {s.name: _input_spec(s.name, s.dtype, s.shape) for s in signature.inputs}
        self._outputs = frozenset(s.name for s in signature.outputs)
        self._only: _InputSpec | None = (
            next(iter(self._specs.values())) if len(self._specs) == 1 else None
        )

    def decode(self, body: bytes) -> InferRequest:
        """Parse and check one request body; raises InvalidInput naming the offending field."""
        try:  # deep nesting is an InvalidInput too; nothing below recurses into the body
            payload = json.loads(body)
        except (ValueError, RecursionError) as exc:
            raise parse_error(exc) from None
        if type(payload) is not dict:
            raise _fail("body must be a JSON object", "body")
        raw_inputs = payload.get("inputs")
        if type(raw_inputs) is not list or not raw_inputs:
            raise _fail('body needs "inputs": a non-empty list of tensors', "inputs")
        request_id = payload.get("id")
        if request_id is not None and type(request_id) is not str:
            raise _fail('"id" must be a string', "id")
        if len(raw_inputs) == 1 and self._only is not None:  # the common case, no dict churn
            array, rows = self._decode_input(raw_inputs[0], 0, -1)
            inputs = {self._only.name: array}
        else:
            inputs, rows = self._decode_inputs(raw_inputs)
        parameters = payload.get("parameters")
        if parameters is None:
            parameters = {}
        elif type(parameters) is not dict:
            raise _fail('"parameters" must be a JSON object', "parameters")
        elif parameters:
            self._check_parameters(parameters)
        outputs = payload.get("outputs")
        wanted = None if outputs is None else self._wanted(outputs)
        return InferRequest(request_id, inputs, parameters, wanted, rows)

    def _decode_inputs(self, raw_inputs: list[Any]) -> tuple[dict[str, np.ndarray], int]:
        inputs: dict[str, np.ndarray] = {}
        rows = -1
        for index, item in enumerate(raw_inputs):
            array, rows = self._decode_input(item, index, rows)
            name = item["name"]
            if name in inputs:
                raise _fail(f"input {name!r} is given twice", f"inputs[{index}].name", input=name)
            inputs[name] = array
        missing = [name for name in self._specs if name not in inputs]
        if missing:
            raise _fail(
                f"the model needs input {missing[0]!r}, which the request lacks",
                "inputs",
                input=missing[0],
            )
        return inputs, rows

    def _decode_input(self, item: Any, index: int, rows: int) -> tuple[np.ndarray, int]:
        if type(item) is not dict:
            raise _fail(f"inputs[{index}] must be a JSON object", f"inputs[{index}]")
        name = item.get("name")
        spec = self._specs.get(name) if type(name) is str else None
        if spec is None:
            self._unknown_input(name, index)
        assert spec is not None
        if item.get("datatype") != spec.datatype:
            _wrong_datatype(item.get("datatype"), spec, index)
        shape = _checked_shape(item.get("shape"), spec, index)
        if rows == -1:
            rows = shape[0]
        elif shape[0] != rows:
            raise _fail(
                f"input {spec.name!r} has {shape[0]} rows, another input has {rows};"
                " all inputs must have the same first dimension",
                f"inputs[{index}].shape",
                input=spec.name,
            )
        data = item.get("data")
        if type(data) is not list:
            raise _fail(
                f'input {spec.name!r} needs "data": a list of values',
                f"inputs[{index}].data",
                input=spec.name,
            )
        return _to_array(data, shape, spec, index), rows

    def _unknown_input(self, name: Any, index: int) -> None:
        if type(name) is not str:
            raise _fail(f'inputs[{index}] needs a "name" string', f"inputs[{index}].name")
        known = ", ".join(sorted(self._specs)) or "none"
        raise _fail(
            f"the model has no input {name!r} (its inputs: {known})",
            f"inputs[{index}].name",
            input=name,
        )

    def _check_parameters(self, parameters: dict[str, Any]) -> None:
        for key, value in parameters.items():
            if key not in self.accepted_parameters:
                accepted = ", ".join(sorted(self.accepted_parameters)) or "none"
                raise _fail(
                    f"unknown parameter {key!r} (this model accepts: {accepted})",
                    f"parameters.{key}",
                )
            check_parameter_value(value, f"parameters.{key}")

    def _wanted(self, outputs: Any) -> list[str]:
        if type(outputs) is not list:
            raise _fail('"outputs" must be a list of {"name": ...} objects', "outputs")
        wanted: list[str] = []
        for index, item in enumerate(outputs):
            name = item.get("name") if type(item) is dict else None
            if type(name) is not str:
                raise _fail(f'outputs[{index}] needs a "name" string', f"outputs[{index}].name")
            if name not in self._outputs:
                known = ", ".join(sorted(self._outputs)) or "none"
                raise _fail(
                    f"the model has no output {name!r} (its outputs: {known})",
                    f"outputs[{index}].name",
                    output=name,
                )
            wanted.append(name)
        return wanted


def check_parameter_value(value: Any, field: str) -> None:
    """A request parameter is a scalar: text, a boolean, null, an integer that fits 64
    bits or a finite number. Raises InvalidInput naming `field` otherwise, so nothing
    downstream (batching keys, runtimes) meets a nested or unbounded value."""
    kind = type(value)
    if kind is str or kind is bool or value is None:
        return
    if kind is int:
        low, high = _PARAMETER_INT_RANGE
        if low <= value <= high:
            return
        problem = "an integer beyond 64 bits"
    elif kind is float:
        if math.isfinite(value):
            return
        problem = f"{value!r}"
    else:
        problem = "a list" if kind is list else "an object" if kind is dict else kind.__name__
    raise _fail(
        f"parameter {field} must be a string, boolean or finite number, not {problem}", field
    )


def _wrong_datatype(datatype: Any, spec: _InputSpec, index: int) -> None:
    field = f"inputs[{index}].datatype"
    if datatype is None:
        raise _fail(f'input {spec.name!r} needs a "datatype"', field, input=spec.name)
    raise _fail(
        f"input {spec.name!r} has datatype {datatype!r}, the model expects {spec.datatype}",
        field,
        input=spec.name,
    )


def _checked_shape(value: Any, spec: _InputSpec, index: int) -> tuple[int, ...]:
    if type(value) is not list or not value:
        raise _fail(
            f'input {spec.name!r} needs a "shape": a non-empty list of sizes, rows first',
            f"inputs[{index}].shape",
            input=spec.name,
        )
    if len(value) > MAX_TENSOR_RANK:
        raise _fail(
            f"shape of input {spec.name!r} has {len(value)} dimensions;"
            f" at most {MAX_TENSOR_RANK} are served",
            f"inputs[{index}].shape",
            input=spec.name,
        )
    elements = 1
    for dim in value:
        if type(dim) is not int or dim < 0:
            raise _fail(
                f"shape of input {spec.name!r} must hold non-negative integers, got {value!r}",
                f"inputs[{index}].shape",
                input=spec.name,
            )
        if dim > 1:
            elements *= dim
            if elements > MAX_TENSOR_ELEMENTS:
                raise _fail(
                    f"shape of input {spec.name!r} is too large: {value!r} spans more than"
                    f" {MAX_TENSOR_ELEMENTS} values",
                    f"inputs[{index}].shape",
                    input=spec.name,
                )
    expected = spec.shape
    if expected is None:
        return tuple(value)
    if len(value) == len(expected):
        for got, want in zip(value, expected, strict=True):
            if want != got and want != -1:
                break
        else:
            return tuple(value)
    raise _fail(
        f"input {spec.name!r} has shape {value}, the model expects {list(expected)} (-1: any size)",
        f"inputs[{index}].shape",
        input=spec.name,
    )


def _to_array(data: list[Any], shape: tuple[int, ...], spec: _InputSpec, index: int) -> np.ndarray:
    if not spec.kinds:
        array = _text_array(data, spec, index)
    else:
        try:
            array = np.array(data)
        except (ValueError, OverflowError) as exc:  # ragged nesting, huge integers
            raise _data_error(f"is not a {spec.datatype} tensor: {exc}", spec, index) from exc
        if array.dtype.kind not in spec.kinds and array.size:
            if spec.limits is None or array.dtype.kind not in "fO":
                found = _KIND_NAMES.get(array.dtype.kind, "other values")
                raise _data_error(
                    f"holds values that are not {spec.datatype} ({found})", spec, index
                )
            # numpy found no integer dtype for them all ([-1, 2**64 - 1], 2**70): check
            # each value as a Python int, the slow path that only such bodies take.
            array = _integer_array(data, spec, index)
        if spec.limits is not None and array.size:
            low, high = spec.limits
            if int(array.min()) < low or int(array.max()) > high:
                raise _data_error(
                    f"holds values outside {spec.datatype} ({low}..{high})", spec, index
                )
        if array.dtype != spec.dtype:
            # Narrowing FP64 (what JSON numbers parse to) to FP32 or FP16, the hot path:
            # one vdot clears it when the sum of squares stays within the datatype's
            # largest value squared (vdot flattens, and does not warn when a huge value
            # overflows the sum; NaN or Infinity, which pass as themselves, fail it).
            if (
                spec.float_max
                and (
                    array.dtype.kind != "f"
                    or not float(np.vdot(array, array)) <= spec.float_max_squared
                )
                and _overflows(array, spec)
            ):
                raise _data_error(
                    f"holds values beyond {spec.datatype}'s range (±{spec.float_max:.6g})",
                    spec,
                    index,
                )
            array = array.astype(spec.dtype)
    size = math.prod(shape)
    if array.size != size:
        raise _data_error(
            f"holds {array.size} values, its shape {list(shape)} needs {size}", spec, index
        )
    return array.reshape(shape)


def _overflows(source: np.ndarray, spec: _InputSpec) -> bool:
    """Whether casting to the spec's narrower float turns a finite value into inf
    (1e300 as FP32 or FP16, 70000 as FP16), which the model would silently run on.
    The exact test, for what `_to_array`'s one-`vdot` probe could not clear."""
    if not source.size or (source.dtype.kind != "f" and spec.dtype.itemsize > 2):
        return False  # every 64-bit integer fits FP32 and FP64
    with np.errstate(over="ignore"):
        cast = source.astype(spec.dtype)
    return bool((np.isfinite(source) & np.isinf(cast)).any())


def _integer_array(data: list[Any], spec: _InputSpec, index: int) -> np.ndarray:
    try:
        values = np.array(data, dtype=object)
    except ValueError as exc:
        raise _data_error(f"is not a {spec.datatype} tensor: {exc}", spec, index) from exc
    low, high = spec.limits or (0, 0)
    for value in values.flat:
        if type(value) is not int:
            found = "fractions" if type(value) is float else "mixed or null values"
            raise _data_error(f"holds values that are not {spec.datatype} ({found})", spec, index)
        if not low <= value <= high:
            raise _data_error(f"holds values outside {spec.datatype} ({low}..{high})", spec, index)
    return values.astype(spec.dtype)


def _data_error(problem: str, spec: _InputSpec, index: int) -> InvalidInput:
    return _fail(f"data of input {spec.name!r} {problem}", f"inputs[{index}].data", input=spec.name)


def _text_array(data: list[Any], spec: _InputSpec, index: int) -> np.ndarray:
    try:
        array = np.array(data, dtype=object)
    except ValueError as exc:
        raise _data_error(f"is not a BYTES tensor: {exc}", spec, index) from exc
    for value in array.flat:
        if type(value) is not str:
            raise _data_error(f"must hold strings, found {type(value).__name__}", spec, index)
    return array


_KIND_NAMES = {"U": "strings", "O": "mixed or null values", "b": "booleans", "f": "fractions"}
_decoders: dict[int, RequestDecoder] = {}


def decode_request(
    body: bytes, signature: Signature, accepted_parameters: tuple[str, ...]
) -> InferRequest:
    """Decode one OIP request body against a model's signature; raises InvalidInput.

    Keeps a small cache of decoders by signature object; a server holding a model
    may build its own `RequestDecoder` instead.
    """
    decoder = _decoders.get(id(signature))
    if (
        decoder is None
        or decoder.signature is not signature
        or decoder.parameter_names != accepted_parameters
    ):
        if len(_decoders) >= _DECODER_CACHE_SIZE:
            _decoders.clear()
        decoder = _decoders[id(signature)] = RequestDecoder(signature, accepted_parameters)
    return decoder.decode(body)


def encode_response(
    model_name: str,
    model_version: str,
    request_id: str | None,
    outputs: dict[str, np.ndarray],
    wanted: list[str] | None,
) -> bytes:
    """The OIP response body: every output, or only `wanted` ones in that order.

    Raises ValueError when an output has no OIP datatype, KeyError when a wanted
    output is missing (both are the runtime's fault, not the client's).
    """
    names = outputs if wanted is None else wanted
    parts = []
    for name in names:
        array = outputs[name]
        parts.append(
            f'{{"name":{json.dumps(name)},"datatype":"{datatype_of(array)}",'
            f'"shape":{list(array.shape)},"data":{_data_json(array)}}}'
        )
    head = f'{{"model_name":{json.dumps(model_name)},"model_version":{json.dumps(model_version)}'
    if request_id is not None:
        head += f',"id":{json.dumps(request_id)}'
    return f'{head},"outputs":[{",".join(parts)}]}}'.encode()


def _data_json(array: np.ndarray) -> str:
    flat = array.ravel()
    if flat.dtype.kind == "f":
        # numpy prints each float at its own precision's shortest round-trip form
        # ("0.56685066" for an FP32, not the FP64 expansion "0.5668506622314453").
        text = ",".join(flat.astype(str).tolist())
        if "n" not in text:  # no nan or inf, which only json.dumps spells (NaN, Infinity)
            return "[" + text + "]"
    return json.dumps(flat.tolist(), separators=(",", ":"))


def model_metadata(
    name: str, versions: list[str], platform: str, signature: Signature
) -> dict[str, Any]:
    """The body of `GET /v2/models/{name}`."""
    return {
        "name": name,
        "versions": list(versions),
        "platform": platform,
        "inputs": [
            {"name": s.name, "datatype": s.dtype, "shape": list(s.shape)} for s in signature.inputs
        ],
        "outputs": [
            {"name": s.name, "datatype": s.dtype, "shape": list(s.shape)} for s in signature.outputs
        ],
    }


def concat_rows(batches: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """Join requests along the rows axis (every batch must carry the same names)."""
    if len(batches) == 1:
        return batches[0]
    return {name: np.concatenate([b[name] for b in batches]) for name in batches[0]}


def split_rows(outputs: dict[str, np.ndarray], counts: list[int]) -> list[dict[str, np.ndarray]]:
    """Cut a batch's outputs back into one dict per request (views, no copies).

    Raises ValueError when an output's rows do not add up to `sum(counts)`.
    """
    total = sum(counts)
    for name, array in outputs.items():
        if array.shape[:1] != (total,):
            raise ValueError(f"output {name!r} has shape {array.shape}, expected {total} rows")
    if len(counts) == 1:
        return [outputs]
    parts: list[dict[str, np.ndarray]] = []
    start = 0
    for count in counts:
        end = start + count
        parts.append({name: array[start:end] for name, array in outputs.items()})
        start = end
    return parts
