"""Make a smaller or faster copy of an ONNX folder: int8 (dynamic or static) or fp16.

An ONNX folder is what `serving.export.export_onnx` writes: the graph (config.json's
"onnx_file") beside the source's config, tokenizer and labels, served by
`load_runtime` with the source's signature. Only the graph changes here; every other
file is copied as it is, so the copy serves the same requests.

- dynamic int8 (`quantize_dynamic`): weights stored as int8, activations quantised
  on the fly at each call; needs no data.
- static int8 (`quantize_static`, QDQ format): activations' ranges measured first on
  calibration rows; those rows feed the graph directly, so it covers graphs whose one
  input is the rows' input (the tabular classifier's features), not graphs fed token
  ids by a tokenizer outside the graph.
- fp16 (`onnxruntime.transformers.float16`): weights and arithmetic in half precision,
  inputs and outputs kept fp32; it only pays on a GPU, so it is refused without one.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from modelhub.domain.optimisation import EvalRows, Method
from modelhub.errors import InvalidInput

CALIBRATION_BATCH = 16
MAX_CALIBRATION_ROWS = 512


def graph_file(folder: Path) -> Path:
    """The ONNX graph of an ONNX folder (config.json's "onnx_file", else its one .onnx)."""
    config_path = folder / "config.json"
    if config_path.is_file():
        config: Any = json.loads(config_path.read_text(encoding="utf-8"))
        name = config.get("onnx_file") if isinstance(config, dict) else None
        if isinstance(name, str) and (folder / name).is_file():
            return folder / name
    graphs = sorted(folder.glob("*.onnx"))
    if len(graphs) != 1:
        raise InvalidInput(f"{folder.name} holds {len(graphs)} ONNX graphs, not one")
    return graphs[0]


def gpu_available() -> bool:
    """Whether ONNX Runtime can run on a CUDA GPU here."""
    import onnxruntime as ort

    return "CUDAExecutionProvider" in ort.get_available_providers()


def graph_inputs(folder: Path) -> list[str]:
    import onnx

    model = onnx.load(str(graph_file(folder)), load_external_data=False)
    initializers = {i.name for i in model.graph.initializer}
    return [i.name for i in model.graph.input if i.name not in initializers]


def check_calibration(folder: Path, rows: EvalRows) -> None:
    """Raise InvalidInput unless `rows` can feed the graph in `folder` directly."""
    inputs = graph_inputs(folder)
    if inputs != [rows.input]:
        raise InvalidInput(
            f"static int8 calibration feeds the graph's inputs with the data's rows, and this "
            f"graph takes {', '.join(inputs)} (made from {rows.input!r} by the runtime); "
            "quantise it without --calibration (dynamic int8)",
            {"field": "calibration", "graph_inputs": inputs},
        )


def check_machine(method: Method) -> None:
    """Raise InvalidInput when this machine cannot make `method` (fp16 without a GPU)."""
    if method is Method.FP16 and not gpu_available():
        raise InvalidInput(
            "fp16 needs a GPU: ONNX Runtime has no CUDAExecutionProvider on this server "
            "(on a CPU half precision is slower, not faster); use --to int8",
            {"field": "to", "providers": _providers()},
        )


def optimise_folder(
    source: Path, target: Path, method: Method, calibration: EvalRows | None = None
) -> Path:
    """Copy the ONNX folder `source` to `target` (which must not exist) with its graph
    made by `method`; returns `target`. Raises InvalidInput for a method this graph or
    machine cannot take (fp16 without a GPU, static int8 without fitting rows)."""
    check_machine(method)
    if method is Method.INT8_STATIC:
        if calibration is None or not calibration.rows:
            raise InvalidInput("static int8 needs calibration rows", {"field": "calibration"})
        check_calibration(source, calibration)
    graph = graph_file(source)
    shutil.copytree(source, target)
    out = target / graph.relative_to(source)
    with tempfile.TemporaryDirectory(prefix="modelhub-quant-") as work:
        made = Path(work) / "model.onnx"
        if method is Method.INT8_DYNAMIC:
            _dynamic(graph, made)
        elif method is Method.INT8_STATIC:
            assert calibration is not None
            _static(graph, made, calibration)
        elif method is Method.FP16:
            _fp16(graph, made)
        else:
            shutil.copyfile(graph, made)
        shutil.copyfile(made, out)
    if method is not Method.ONNX:
        _mark(target, method)
    return target


def _mark(folder: Path, method: Method) -> None:
    """Say in config.json how the graph was made (the runtime reports it in its details)."""
    path = folder / "config.json"
    config: Any = json.loads(path.read_text(encoding="utf-8"))
    path.write_text(json.dumps({**config, "quantization": method.value}, indent=2), "utf-8")


def _providers() -> list[str]:
    import onnxruntime as ort

    return list(ort.get_available_providers())


def _dynamic(graph: Path, out: Path) -> None:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quantize_dynamic(str(graph), str(out), weight_type=QuantType.QInt8)


class _Rows:
    """onnxruntime's CalibrationDataReader over batches of rows."""

    def __init__(self, name: str, rows: list[Any]) -> None:
        self._batches = self._iterate(name, rows[:MAX_CALIBRATION_ROWS])

    @staticmethod
    def _iterate(name: str, rows: list[Any]) -> Iterator[dict[str, np.ndarray]]:
        for start in range(0, len(rows), CALIBRATION_BATCH):
            yield {name: np.asarray(rows[start : start + CALIBRATION_BATCH], dtype=np.float32)}

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self._batches, None)


def _static(graph: Path, out: Path, rows: EvalRows) -> None:
    from onnxruntime.quantization import (
        CalibrationDataReader,
        QuantFormat,
        QuantType,
        quantize_static,
    )

    class Reader(_Rows, CalibrationDataReader):  # type: ignore[misc]
        pass

    quantize_static(
        str(graph),
        str(out),
        Reader(rows.input, rows.rows),
        quant_format=QuantFormat.QDQ,
        activation_type=QuantType.QInt8,
        weight_type=QuantType.QInt8,
    )


def _fp16(graph: Path, out: Path) -> None:
    import onnx
    from onnxruntime.transformers.float16 import convert_float_to_float16

    model = onnx.load(str(graph))
    onnx.save(convert_float_to_float16(model, keep_io_types=True), str(out))
