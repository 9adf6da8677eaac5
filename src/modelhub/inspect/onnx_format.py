"""Read an ONNX model's graph (never run it): signature, opsets, parameters, op families.

External data is resolved against the model file's own folder and must stay inside
it; its files are checked to exist and hold the bytes the tensors claim, but never
read. Strings the protobuf runtime could not decode as UTF-8 (it hands them over as
bytes) and element types this onnx release does not know are refused.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from modelhub.domain.enums import Framework
from modelhub.domain.records import Inspection, Signature, TensorSpec
from modelhub.errors import InvalidInput
from modelhub.inspect.paths import inside
from modelhub.inspect.sniff import invalid
from modelhub.inspect.tensors import precision_of

WHAT = "ONNX model"

# onnx.TensorProto.DataType names -> numpy-style names used across modelhub.
_DTYPE_NAMES: dict[str, str] = {
    "FLOAT": "float32", "FLOAT16": "float16", "BFLOAT16": "bfloat16", "DOUBLE": "float64",
    "INT8": "int8", "UINT8": "uint8", "INT16": "int16", "UINT16": "uint16",
    "INT32": "int32", "UINT32": "uint32", "INT64": "int64", "UINT64": "uint64",
    "INT4": "int4", "UINT4": "uint4", "BOOL": "bool", "STRING": "string",
    "COMPLEX64": "complex64", "COMPLEX128": "complex128",
}  # fmt: skip

_TRANSFORMER_OPS = {
    "Attention",
    "MultiHeadAttention",
    "GroupQueryAttention",
    "EmbedLayerNormalization",
}
_RNN_OPS = {"LSTM", "GRU", "RNN"}
_CONV_OPS = {"Conv", "ConvTranspose", "QLinearConv", "ConvInteger"}
_DENSE_OPS = {"Gemm", "MatMul", "QLinearMatMul", "MatMulInteger"}
_MLP_OPS = _DENSE_OPS | {
    "Relu", "LeakyRelu", "Sigmoid", "Tanh", "Gelu", "Elu", "Selu", "Softmax", "LogSoftmax",
    "Add", "Identity", "Flatten", "Reshape", "Dropout", "BatchNormalization",
    "QuantizeLinear", "DequantizeLinear",
}  # fmt: skip


def dtype_name(elem_type: int) -> str:
    """The numpy-style name of an ONNX element type; ValueError for a number onnx lacks."""
    import onnx

    name: str = onnx.TensorProto.DataType.Name(elem_type)
    return _DTYPE_NAMES.get(name, name.lower())


def inspect_onnx(path: Path) -> Inspection:
    """Load (without external data), check and describe an ONNX model."""
    import onnx
    from google.protobuf.message import DecodeError  # type: ignore[import-untyped]

    try:
        model = onnx.load(str(path), load_external_data=False)
    except (DecodeError, ValueError, RuntimeError, OSError, MemoryError, RecursionError) as exc:
        problem = f"cannot be parsed as ONNX protobuf ({_first_line(exc)})"
        raise invalid(path, WHAT, problem) from exc
    external = _check_external_data(path, model)
    try:
        # By path, so the checker resolves external data beside the file, not in the cwd.
        onnx.checker.check_model(str(path))
    except (onnx.checker.ValidationError, ValueError, RuntimeError, MemoryError) as exc:
        raise invalid(path, WHAT, f"checker failed: {_first_line(exc)}") from exc
    inspection = _describe(path, model)
    if external:
        inspection.details["external_data"] = external
    return inspection


def _describe(path: Path, model: Any) -> Inspection:
    def text(value: str | bytes, what: str) -> str:
        if isinstance(value, bytes):  # upb hands over undecodable strings as bytes
            raise invalid(path, WHAT, f"{what} is not valid UTF-8")
        return value

    def dtype(elem_type: int, what: str) -> str:
        try:
            return dtype_name(elem_type)
        except ValueError:
            raise invalid(path, WHAT, f"{what} has unknown element type {elem_type}") from None

    graph = model.graph
    params_by_dtype: Counter[str] = Counter()
    initializer_names = set()
    for init in graph.initializer:
        name = text(init.name, "an initializer name")
        initializer_names.add(name)
        params_by_dtype[dtype(init.data_type, f"initializer {name!r}")] += math.prod(init.dims)
    for sparse in graph.sparse_initializer:
        name = text(sparse.values.name, "a sparse initializer name")
        initializer_names.add(name)
        params_by_dtype[dtype(sparse.values.data_type, f"initializer {name!r}")] += math.prod(
            sparse.dims
        )
    precision, precision_details = precision_of(params_by_dtype)
    op_types = Counter(text(node.op_type, "an operator type") for node in graph.node)

    def spec(value: Any) -> TensorSpec:
        name = text(value.name, "a graph input or output name")
        kind = value.type.WhichOneof("value")
        if kind != "tensor_type":
            return TensorSpec(name=name, dtype=kind or "unknown")
        tensor = value.type.tensor_type
        shape: list[int | str] = []
        if tensor.HasField("shape"):
            for dim in tensor.shape.dim:
                if dim.HasField("dim_value"):
                    shape.append(int(dim.dim_value))
                elif dim.HasField("dim_param"):
                    shape.append(text(dim.dim_param, f"a dimension of {name!r}"))
                else:
                    shape.append(-1)
        return TensorSpec(name=name, dtype=dtype(tensor.elem_type, repr(name)), shape=shape)

    inputs = [v for v in graph.input if v.name not in initializer_names]
    signature = Signature(inputs=[spec(v) for v in inputs], outputs=[spec(v) for v in graph.output])
    producer = (
        text(model.producer_name, "producer_name"),
        text(model.producer_version, "producer_version"),
    )
    details: dict[str, Any] = {
        "format": "onnx",
        "ir_version": int(model.ir_version),
        "opsets": {
            (text(o.domain, "an opset domain") or "ai.onnx"): int(o.version)
            for o in model.opset_import
        },
        "producer": " ".join(p for p in producer if p),
        "op_types": dict(op_types.most_common()),
        **precision_details,
    }
    if model.metadata_props:
        details["metadata"] = {
            text(p.key, "a metadata key"): text(p.value, "a metadata value")
            for p in model.metadata_props
        }
    return Inspection(
        framework=Framework.ONNX,
        architecture=guess_from_ops(set(op_types)),
        parameters=sum(params_by_dtype.values()),
        precision=precision,
        dtypes=dict(params_by_dtype),
        tensor_count=len(graph.initializer) + len(graph.sparse_initializer),
        signature=signature,
        details=details,
    )


def guess_from_ops(ops: set[str]) -> str | None:
    attention_like = "LayerNormalization" in ops and "Softmax" in ops and ops & _DENSE_OPS
    if ops & _TRANSFORMER_OPS or attention_like:
        return "transformer"
    if ops & _RNN_OPS:
        return "rnn"
    if ops & _CONV_OPS:
        return "cnn"
    if ops & _DENSE_OPS and ops <= _MLP_OPS:
        return "mlp"
    return None


def _check_external_data(path: Path, model: Any) -> list[str]:
    """Every external tensor names a file beside `path` (never outside its folder) that
    holds the bytes it claims. Nothing is read from those files. Returns their paths,
    relative to the model file's folder."""
    import onnx

    files: set[str] = set()
    for tensor in _all_tensors(model.graph):
        if tensor.data_location != onnx.TensorProto.EXTERNAL:
            continue
        name = tensor.name if isinstance(tensor.name, str) else repr(tensor.name)
        where = f"{path.name}: tensor {name[:100]!r} external data location"
        info = {entry.key: entry.value for entry in tensor.external_data}
        try:
            target = inside(path.parent, info.get("location"), where)
        except InvalidInput as exc:
            raise InvalidInput(exc.message, {"path": str(path), **exc.details}) from exc
        if not target.is_file():
            raise invalid(path, WHAT, f"external data file {info['location']!r} is missing")
        offset, length = (info.get("offset", "0"), info.get("length"))
        if not offset.isdigit() or (length is not None and not length.isdigit()):
            raise invalid(path, WHAT, f"tensor {name[:100]!r} has a malformed external offset")
        end = int(offset) + int(length or 0)
        if end > target.stat().st_size:
            raise invalid(
                path,
                WHAT,
                f"tensor {name[:100]!r} reads past the end of {info['location']!r}",
            )
        files.add(target.relative_to(path.parent).as_posix())
    return sorted(files)


def _all_tensors(graph: Any) -> Iterator[Any]:
    """Every tensor of a graph: initializers and node attributes, subgraphs included."""
    graphs = [graph]
    while graphs:
        current = graphs.pop()
        yield from current.initializer
        yield from (sparse.values for sparse in current.sparse_initializer)
        for node in current.node:
            for attribute in node.attribute:
                if attribute.HasField("t"):
                    yield attribute.t
                yield from attribute.tensors
                if attribute.HasField("g"):
                    graphs.append(attribute.g)
                graphs.extend(attribute.graphs)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0][:200]
