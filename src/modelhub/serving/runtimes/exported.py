"""Runtimes for ONNX folders (see `modelhub.serving.export`): each serves a built-in
trainer's exported graph with ONNX Runtime under the same runtime name, signature,
parameters and outputs as the runtime that serves the source folder, so an exported
(or quantised) version replaces its source behind a deployment without a client noticing.

The graph is whatever `onnx_file` in config.json names: the export's fp32 graph or a
quantised one with the same input and output names. A graph converted to fp16 with its
inputs and outputs (no `keep_io_types`) is fed fp16 and answers FP32 as the signature
says. Each session runs on one thread, as the `onnx` runtime's do.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from modelhub.domain.records import Signature, TensorSpec
from modelhub.errors import InvalidInput
from modelhub.serving.export_graphs import TOKEN_INPUTS, TOKENIZER_DIR, TOKENIZER_FILE
from modelhub.serving.runtimes import generation, sentence, tabular
from modelhub.serving.runtimes._common import (
    MAX_SEED,
    float_parameter,
    int_parameter,
    text_array,
    text_column,
    unloaded,
)
from modelhub.serving.runtimes.base import RuntimeInfo

FORMAT = "onnx"


def onnx_session(path: Path) -> Any:
    """An ONNX Runtime CPU session over the graph at `path`, on one thread; InvalidInput
    when ONNX Runtime cannot load it."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    try:
        return ort.InferenceSession(
            str(path), sess_options=options, providers=["CPUExecutionProvider"]
        )
    except Exception as exc:  # onnxruntime raises its own unexported exception classes
        raise InvalidInput(
            f"{path.name} is not a model ONNX Runtime can load: {exc}", {"path": str(path)}
        ) from exc


class _OnnxFolder:
    """An ONNX folder's config.json and the session over its graph."""

    def __init__(self, folder: Path) -> None:
        self.config: dict[str, Any] = json.loads((folder / "config.json").read_text("utf-8"))
        name = self.config.get("onnx_file")
        if not isinstance(name, str) or Path(name).name != name or not name.endswith(".onnx"):
            raise InvalidInput(
                f"{folder.name}/config.json must name its graph in onnx_file (a .onnx file"
                f" in the folder), got {name!r}",
                {"path": str(folder)},
            )
        self.graph = folder / name
        if not self.graph.is_file():
            raise InvalidInput(f"{folder.name} lacks its graph {name}", {"path": str(folder)})
        self.session = onnx_session(self.graph)
        self.inputs = [node.name for node in self.session.get_inputs()]
        first = self.session.get_inputs()[0]
        # the float type the graph takes (fp16 for a graph converted with its inputs)
        self.float_type = np.float16 if first.type == "tensor(float16)" else np.float32

    def run(self, outputs: list[str], feed: dict[str, np.ndarray]) -> list[np.ndarray]:
        """`outputs` for `feed`, floating outputs as FP32 whatever the graph computes in."""
        results = self.session.run(outputs, feed)
        return [r.astype(np.float32, copy=False) if r.dtype == np.float16 else r for r in results]

    def details(self, **more: Any) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "onnx_file": self.graph.name,
            "quantization": self.config.get("quantization"),
            **more,
        }


class OnnxTabularRuntime:
    """`tabular_classifier` from its exported graph: logits, probabilities and label."""

    def __init__(self, folder: Path) -> None:
        onnx = _OnnxFolder(folder)
        self._onnx: _OnnxFolder | None = onnx
        config = onnx.config
        self._dim = int(config["input_dim"])
        self._labels = text_array([str(c) for c in config["classes"]])
        classes = len(self._labels)
        self.info = RuntimeInfo(
            runtime=tabular.RUNTIME,
            signature=Signature(
                inputs=[TensorSpec(name=tabular.INPUT, dtype="FP32", shape=[-1, self._dim])],
                outputs=[
                    TensorSpec(name="logits", dtype="FP32", shape=[-1, classes]),
                    TensorSpec(name="probabilities", dtype="FP32", shape=[-1, classes]),
                    TensorSpec(name="label", dtype="BYTES", shape=[-1]),
                ],
            ),
            memory_bytes=onnx.graph.stat().st_size,
            blocking=False,
            details=onnx.details(features=list(config["features"]), classes=self._labels.tolist()),
        )

    def infer(
        self, inputs: dict[str, np.ndarray], parameters: dict[str, Any]
    ) -> dict[str, np.ndarray]:
        onnx = self._onnx
        if onnx is None:
            raise unloaded(tabular.RUNTIME)
        x = inputs.get(tabular.INPUT)
        if x is None or x.ndim != 2 or x.shape[1] != self._dim:
            got = "nothing" if x is None else f"shape {list(x.shape)}"
            raise InvalidInput(
                f"input {tabular.INPUT!r} must be FP32 [rows, {self._dim}], got {got}",
                {"field": tabular.INPUT},
            )
        if not len(x):
            empty = np.zeros((0, len(self._labels)), np.float32)
            return {"logits": empty, "probabilities": empty.copy(), "label": text_array([])}
        rows = np.ascontiguousarray(x, dtype=onnx.float_type)
        logits, probabilities = onnx.run(["logits", "probabilities"], {tabular.INPUT: rows})
        return {
            "logits": logits,
            "probabilities": probabilities,
            "label": self._labels[logits.argmax(1)],
        }

    def unload(self) -> None:
        self._onnx = None


class OnnxTextClassificationRuntime:
    """`text_classification` from its exported graph, tokenized by the copied tokenizer."""

    def __init__(self, folder: Path) -> None:
        from tokenizers import Tokenizer

        onnx = _OnnxFolder(folder)
        self._onnx: _OnnxFolder | None = onnx
        path = folder / TOKENIZER_DIR / TOKENIZER_FILE
        try:
            self._tokenizer: Any = Tokenizer.from_file(str(path))
        except Exception as exc:  # tokenizers raises a bare Exception for a bad file
            raise InvalidInput(
                f"{folder.name} lacks a readable {TOKENIZER_DIR}/{TOKENIZER_FILE}: {exc}",
                {"path": str(folder)},
            ) from exc
        self._labels = text_array([str(c) for c in onnx.config["classes"]])
        self.info = RuntimeInfo(
            runtime=sentence.CLASSIFICATION,
            signature=Signature(
                inputs=[TensorSpec(name="text", dtype="BYTES", shape=[-1])],
                outputs=[
                    TensorSpec(name="probabilities", dtype="FP32", shape=[-1, len(self._labels)]),
                    TensorSpec(name="label", dtype="BYTES", shape=[-1]),
                ],
            ),
            memory_bytes=onnx.graph.stat().st_size,
            blocking=True,
            details=onnx.details(classes=self._labels.tolist()),
        )

    def infer(
        self, inputs: dict[str, np.ndarray], parameters: dict[str, Any]
    ) -> dict[str, np.ndarray]:
        onnx = self._onnx
        if onnx is None:
            raise unloaded(sentence.CLASSIFICATION)
        texts = text_column(inputs, "text")
        if not texts:
            empty = np.zeros((0, len(self._labels)), dtype=np.float32)
            return {"probabilities": empty, "label": text_array([])}
        parts = []
        for start in range(0, len(texts), sentence.ENCODE_BATCH):
            encodings = self._tokenizer.encode_batch(texts[start : start + sentence.ENCODE_BATCH])
            feed = {
                name: np.array([getattr(e, TOKEN_INPUTS[name]) for e in encodings], np.int64)
                for name in onnx.inputs
            }
            parts.append(onnx.run(["probabilities"], feed)[0])
        probabilities = np.concatenate(parts)
        return {"probabilities": probabilities, "label": self._labels[probabilities.argmax(1)]}

    def unload(self) -> None:
        self._onnx = self._tokenizer = None


class OnnxTextGenerationRuntime:
    """`text_generation` from the exported char_lm: the same sampling loop as the source,
    each step one full forward of the window through ONNX Runtime (no key/value cache)."""

    def __init__(self, folder: Path) -> None:
        from modelhub.networks.char_lm import CharLMConfig

        onnx = _OnnxFolder(folder)
        self._onnx: _OnnxFolder | None = onnx
        self._config = CharLMConfig.from_json(onnx.config)
        self.info = RuntimeInfo(
            runtime=generation.RUNTIME,
            signature=Signature(
                inputs=[TensorSpec(name="text", dtype="BYTES", shape=[-1])],
                outputs=[TensorSpec(name="text", dtype="BYTES", shape=[-1])],
            ),
            memory_bytes=onnx.graph.stat().st_size,
            blocking=True,
            parameters=generation.PARAMETERS,
            details=onnx.details(
                context_length=self._config.context_length, vocab_size=self._config.vocab_size
            ),
        )

    def infer(
        self, inputs: dict[str, np.ndarray], parameters: dict[str, Any]
    ) -> dict[str, np.ndarray]:
        """Raises InvalidInput for a bad prompt or parameter (the field names it)."""
        import torch

        from modelhub.networks.char_lm import continue_text

        onnx = self._onnx
        if onnx is None:
            raise unloaded(generation.RUNTIME)
        prompts = text_column(inputs, "text")
        max_tokens = int_parameter(
            parameters, "max_tokens", generation.DEFAULT_MAX_TOKENS, 1, generation.MAX_TOKENS
        )
        temperature = float_parameter(parameters, "temperature", 1.0, 0.0)
        top_k = int_parameter(parameters, "top_k", None, 1, generation.MAX_TOP_K)
        seed = int_parameter(parameters, "seed", None, 0, MAX_SEED)

        def next_logits(window: list[int]) -> Any:
            logits = onnx.run(["logits"], {"ids": np.array([window], dtype=np.int64)})[0]
            return torch.from_numpy(logits[0, -1])

        texts = [
            continue_text(
                self._config,
                next_logits,
                prompt,
                max_new_tokens=max_tokens or generation.DEFAULT_MAX_TOKENS,
                temperature=temperature,
                top_k=top_k,
                seed=seed,
            )
            for prompt in prompts
        ]
        return {"text": text_array(texts)}

    def unload(self) -> None:
        self._onnx = None
