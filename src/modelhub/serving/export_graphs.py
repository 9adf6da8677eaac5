"""The ONNX graph of each built-in trainer's network, and the sample outputs that check it.

Graphs are written by torch's TorchScript-based exporter (`dynamo=False`), not the
torch.export-based one: with torch 2.13 and onnxscript 0.7 the dynamo exporter wrote
an invalid graph for the sentence-transformers encoder (a duplicated value name that
ONNX Runtime refuses), and it took 3 to 7 times longer on all three networks. The
TorchScript exporter is deprecated upstream; when torch removes it, this module is the
one place to change.

- tabular_classifier: input `input` FP32 [batch, features] -> `logits`, `probabilities`
  (the input normalisation folded into the first layer, as the tabular runtime does).
- text_classifier: the tokenizer's outputs (`input_ids`, `attention_mask`, and
  `token_type_ids` where the encoder takes them) INT64 [batch, sequence] -> `logits`,
  `probabilities`: the whole sentence-transformers pipeline (transformer, pooling,
  normalisation where the source normalises) and the head. The tokenizer travels as
  `tokenizer/tokenizer.json`, configured to pad and truncate as the source does.
- char_lm: `ids` INT64 [batch, sequence <= context_length] -> `logits` FP32 [batch,
  sequence, vocab]: one full forward over the window, no key/value cache (a decoder
  step recomputes the window; at the char LM's context lengths that is cheap).
"""

from __future__ import annotations

import contextlib
import io
import json
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from modelhub.errors import InvalidInput

OPSET = 18
TOKENIZER_DIR = "tokenizer"
TOKENIZER_FILE = "tokenizer.json"
# A few texts of different lengths (so the batch pads), with odd spacing and
# characters outside ASCII, and one longer than MiniLM's 256-token window.
SAMPLE_TEXTS = (
    "the persona greets the user",
    "  Goodbye, see you tomorrow!  ",
    "café au lait, ünïcode and 東京",
    "a model server answers quickly " * 60,
    "?",
    "How do I reset my password?",
    "the weather is nice today and the deployment is healthy",
    "refund",
)


def write_export(folder: Path, config: dict[str, Any], path: Path) -> None:
    """Write the ONNX graph of `folder`'s model to `path`, and beside it the other files
    its runtime needs."""
    trainer = config["trainer"]
    if trainer == "tabular_classifier":
        _export_tabular(folder, path)
    elif trainer == "text_classifier":
        _export_text_classifier(folder, path)
    else:
        _export_char_lm(folder, path)


def sample_outputs(
    folder: Path, config: dict[str, Any], samples: int, onnx: bool
) -> dict[str, np.ndarray]:
    """Numeric outputs of the model in `folder` (the source, or its ONNX folder when
    `onnx`) on `samples` deterministic inputs made from the source's `config`."""
    from modelhub.serving.runtimes import load_runtime

    trainer = config["trainer"]
    if trainer == "char_lm":
        return {"logits": _char_lm_logits(folder, config, samples, onnx)}
    runtime = load_runtime(folder)
    try:
        if trainer == "tabular_classifier":
            rng = np.random.default_rng(0)
            mean = np.asarray(config["mean"], np.float64)
            std = np.asarray(config["std"], np.float64)
            rows = (mean + std * rng.normal(0.0, 1.5, (samples, len(mean)))).astype(np.float32)
            out = runtime.infer({"input": rows}, {})
            return {"logits": out["logits"], "probabilities": out["probabilities"]}
        from modelhub.serving.runtimes._common import text_array

        texts = [SAMPLE_TEXTS[i % len(SAMPLE_TEXTS)] for i in range(samples)]
        return {"probabilities": runtime.infer({"text": text_array(texts)}, {})["probabilities"]}
    finally:
        runtime.unload()


@contextlib.contextmanager
def _quiet_exporter() -> Iterator[None]:
    """The TorchScript exporter announces its deprecation and warns about traced shapes
    and about gathers with negative indices (none here; the exported graphs are checked
    against the source instead), and prints to stdout."""
    import torch

    with (
        warnings.catch_warnings(),
        contextlib.redirect_stdout(io.StringIO()),
        torch.no_grad(),
    ):
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", torch.jit.TracerWarning)  # type: ignore[attr-defined]
        warnings.filterwarnings("ignore", category=UserWarning, module=r"torch\.onnx")
        yield


def _export(
    module: Any, args: tuple[Any, ...], path: Path, inputs: list[str], axes: dict[str, Any]
) -> None:
    import torch

    with _quiet_exporter():
        torch.onnx.export(
            module,
            args,
            str(path),
            input_names=inputs,
            output_names=[name for name in axes if name not in inputs],
            dynamic_axes=axes,
            opset_version=OPSET,
            dynamo=False,
        )


def _export_tabular(folder: Path, path: Path) -> None:
    import torch
    from torch import Tensor, nn

    from modelhub.serving.runtimes.tabular import INPUT, folded_model

    model, config = folded_model(folder)

    class Classifier(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, features: Tensor) -> tuple[Tensor, Tensor]:
            logits = self.model(features)
            return logits, logits.softmax(dim=1)

    batch = {0: "batch"}
    example = torch.zeros(2, int(config["input_dim"]))
    axes = {INPUT: batch, "logits": batch, "probabilities": batch}
    _export(Classifier().eval(), (example,), path, [INPUT], axes)


def _export_text_classifier(folder: Path, path: Path) -> None:
    import torch
    from torch import Tensor, nn

    from modelhub.networks import text_classifier

    classifier = text_classifier.load(folder, "cpu")
    encoder, head = classifier.encoder.eval(), classifier.head.eval()
    names = [n for n in encoder.tokenizer.model_input_names if n in TOKEN_INPUTS]
    tokenizer = _configured_tokenizer(encoder)

    class Classifier(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.encoder, self.head = encoder, head

        def forward(self, *tokens: Tensor) -> tuple[Tensor, Tensor]:
            embedding = self.encoder(dict(zip(names, tokens, strict=True)))["sentence_embedding"]
            logits = self.head(embedding.float())
            return logits, logits.softmax(dim=-1)

    encodings = tokenizer.encode_batch(["a short text", "a somewhat longer text to pad"])
    example = tuple(
        torch.tensor([getattr(e, TOKEN_INPUTS[n]) for e in encodings], dtype=torch.int64)
        for n in names
    )
    tokens = {0: "batch", 1: "sequence"}
    axes = {**dict.fromkeys(names, tokens), "logits": {0: "batch"}, "probabilities": {0: "batch"}}
    _export(Classifier().eval(), example, path, names, axes)
    (path.parent / TOKENIZER_DIR).mkdir()
    tokenizer.save(str(path.parent / TOKENIZER_DIR / TOKENIZER_FILE))


# Encoder input -> the `tokenizers.Encoding` attribute that holds it.
TOKEN_INPUTS = {
    "input_ids": "ids",
    "attention_mask": "attention_mask",
    "token_type_ids": "type_ids",
}


def _configured_tokenizer(encoder: Any) -> Any:
    """The encoder's fast tokenizer set to truncate at its max_seq_length and pad to the
    longest text, as sentence-transformers tokenizes a batch."""
    import copy

    hf = encoder.tokenizer
    backend = getattr(hf, "backend_tokenizer", None)
    if backend is None:
        raise InvalidInput(
            "the text classifier's encoder has no fast (tokenizers) tokenizer, which the"
            " ONNX runtime needs; its slow tokenizer cannot be exported",
            {"tokenizer": type(hf).__name__},
        )
    tokenizer = copy.deepcopy(backend)
    tokenizer.enable_truncation(max_length=int(encoder.max_seq_length))
    tokenizer.enable_padding(
        pad_id=int(hf.pad_token_id), pad_token=str(hf.pad_token), direction=hf.padding_side
    )
    return tokenizer


def _export_char_lm(folder: Path, path: Path) -> None:
    import torch

    from modelhub.networks import char_lm

    lm = char_lm.load(folder)
    length = max(2, min(5, lm.config.context_length))
    example = torch.zeros(2, length, dtype=torch.int64)
    tokens = {0: "batch", 1: "sequence"}
    _export(lm.model, (example,), path, ["ids"], {"ids": tokens, "logits": tokens})


def _char_lm_logits(folder: Path, config: dict[str, Any], samples: int, onnx: bool) -> np.ndarray:
    """Each sample window's logits, flattened and joined: windows of every length from
    one token to the whole context, so a graph fixed to one length would fail."""
    import torch

    context, vocab = int(config["context_length"]), len(str(config["vocab"])) + 1
    rng = np.random.default_rng(0)
    lengths = np.linspace(1, context, num=samples).round().astype(int)
    windows = [rng.integers(0, vocab, (1, int(n)), dtype=np.int64) for n in lengths]
    if onnx:
        from modelhub.serving.runtimes.exported import onnx_session

        graph = json.loads((folder / "config.json").read_text("utf-8"))["onnx_file"]
        session = onnx_session(folder / str(graph))
        parts = [session.run(["logits"], {"ids": w})[0] for w in windows]
    else:
        from modelhub.networks import char_lm

        model = char_lm.load(folder).model
        with torch.no_grad():
            parts = [model(torch.from_numpy(w)).numpy() for w in windows]
    return np.concatenate([p.ravel() for p in parts]).astype(np.float32)
