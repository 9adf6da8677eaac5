"""Read an ONNX model's graph (never run it): signature, opsets, parameters, op families."""

from __future__ import annotations

import math
from collections import Counter
from pathlib import Path
from typing import Any

from modelhub.domain.enums import Framework
from modelhub.domain.records import Inspection, Signature, TensorSpec
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
    import onnx

    name: str = onnx.TensorProto.DataType.Name(elem_type)
    return _DTYPE_NAMES.get(name, name.lower())


def inspect_onnx(path: Path) -> Inspection:
    """Load (without external data), check and describe an ONNX model."""
    import onnx

    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as exc:  # protobuf raises DecodeError and others on arbitrary bytes
        problem = f"cannot be parsed as ONNX protobuf ({_first_line(exc)})"
        raise invalid(path, WHAT, problem) from exc
    try:
        onnx.checker.check_model(model)
    except (onnx.checker.ValidationError, ValueError, RuntimeError) as exc:
        raise invalid(path, WHAT, f"checker failed: {_first_line(exc)}") from exc

    graph = model.graph
    params_by_dtype: Counter[str] = Counter()
    initializer_names = set()
    for init in graph.initializer:
        initializer_names.add(init.name)
        params_by_dtype[dtype_name(init.data_type)] += math.prod(init.dims)
    for sparse in graph.sparse_initializer:
        initializer_names.add(sparse.values.name)
        params_by_dtype[dtype_name(sparse.values.data_type)] += math.prod(sparse.dims)
    precision, precision_details = precision_of(params_by_dtype)
    op_types = Counter(node.op_type for node in graph.node)

    signature = Signature(
        inputs=[_spec(v) for v in graph.input if v.name not in initializer_names],
        outputs=[_spec(v) for v in graph.output],
    )
    details: dict[str, Any] = {
        "format": "onnx",
        "ir_version": int(model.ir_version),
        "opsets": {(o.domain or "ai.onnx"): int(o.version) for o in model.opset_import},
        "producer": " ".join(p for p in (model.producer_name, model.producer_version) if p),
        "op_types": dict(op_types.most_common()),
        **precision_details,
    }
    if model.metadata_props:
        details["metadata"] = {p.key: p.value for p in model.metadata_props}
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


def _spec(value: Any) -> TensorSpec:
    kind = value.type.WhichOneof("value")
    if kind != "tensor_type":
        return TensorSpec(name=value.name, dtype=kind or "unknown")
    tensor = value.type.tensor_type
    shape: list[int | str] = []
    if tensor.HasField("shape"):
        for dim in tensor.shape.dim:
            if dim.HasField("dim_value"):
                shape.append(int(dim.dim_value))
            elif dim.HasField("dim_param"):
                shape.append(str(dim.dim_param))
            else:
                shape.append(-1)
    return TensorSpec(name=value.name, dtype=dtype_name(tensor.elem_type), shape=shape)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0][:200]
