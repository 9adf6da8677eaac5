"""Measure a model folder as the server would serve it: size, p50 latency, accuracy.

The folder is loaded with `load_runtime`, the same call a replica makes, so the
latency is what one request costs the runtime (without HTTP). Latency is the median
of `repeats` single-row calls after a short warm-up, cycling through the rows;
accuracy is the share of rows whose `label` output is the expected class, computed
over batches of rows.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from modelhub.domain.optimisation import EvalRows, Figures
from modelhub.errors import InvalidInput

IDS = "ids"  # a language model's windows of token ids (EvalRows.input)
PROMPT = "the "
REPEATS = 200
WARMUP = 10
BATCH = 64


def folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def batch_of(rows: EvalRows, values: list[Any]) -> np.ndarray:
    """The runtime input for `values`: float32 rows, or an object array of strings."""
    if rows.input == "text":
        return np.array(values, dtype=object)
    return np.asarray(values, dtype=np.float32)


def _p50_ms(call: Callable[[int], object], repeats: int) -> float:
    """The median of `repeats` timed calls (ms) after WARMUP untimed ones; `call` gets
    the call's index."""
    for i in range(WARMUP):
        call(i)
    timings = []
    for i in range(WARMUP, WARMUP + repeats):
        began = time.perf_counter()
        call(i)
        timings.append((time.perf_counter() - began) * 1000.0)
    return round(statistics.median(timings), 4)


def measure(folder: Path, rows: EvalRows, repeats: int = REPEATS) -> Figures:
    """Figures of the model in `folder` on `rows`; InvalidInput when the runtime cannot
    take the rows or gives no `label` output to score."""
    from modelhub.serving.runtimes import load_runtime

    if not rows.rows:
        raise InvalidInput(f"no rows to measure on ({rows.source})")
    if rows.input == IDS:
        return _language_model(folder, rows, repeats)
    runtime = load_runtime(folder)
    try:
        correct = 0
        for start in range(0, len(rows.rows), BATCH):
            chunk = rows.rows[start : start + BATCH]
            outputs = runtime.infer({rows.input: batch_of(rows, chunk)}, {})
            if "label" not in outputs:
                raise InvalidInput(
                    f"{folder.name} answers {', '.join(outputs)}, not a label to score",
                    {"outputs": sorted(outputs)},
                )
            got = [str(v) for v in outputs["label"].tolist()]
            correct += sum(
                g == e for g, e in zip(got, rows.labels[start : start + BATCH], strict=True)
            )
        singles = [batch_of(rows, [value]) for value in rows.rows[: max(1, min(64, repeats))]]
        p50 = _p50_ms(lambda i: runtime.infer({rows.input: singles[i % len(singles)]}, {}), repeats)
    finally:
        runtime.unload()
    return Figures(
        size_bytes=folder_bytes(folder),
        p50_ms=p50,
        metric="accuracy",
        value=correct / len(rows.rows),
        rows=len(rows.rows),
    )


def _language_model(folder: Path, rows: EvalRows, repeats: int) -> Figures:
    """A char LM's validation loss over `rows` (windows of ids: the mean next-token
    cross-entropy, lower is better) and the p50 of one generated token through the
    runtime (one window's forward)."""
    from modelhub.serving.runtimes import load_runtime

    logits = _window_logits(folder)
    total, count = 0.0, 0
    for window in rows.rows:
        ids = np.asarray(window, dtype=np.int64)
        scores = logits(ids[None, :-1])[0].astype(np.float64)
        shifted = scores - scores.max(axis=1, keepdims=True)
        log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
        total -= float(log_probs[np.arange(len(ids) - 1), ids[1:]].sum())
        count += len(ids) - 1
    runtime = load_runtime(folder)
    try:
        prompt = np.array([PROMPT], dtype=object)
        one_token = {"max_tokens": 1, "temperature": 0.0}
        p50 = _p50_ms(lambda _: runtime.infer({"text": prompt}, one_token), repeats)
    finally:
        runtime.unload()
    return Figures(
        size_bytes=folder_bytes(folder),
        p50_ms=p50,
        metric="val_loss",
        value=total / count,
        rows=len(rows.rows),
    )


def _window_logits(folder: Path) -> Any:
    """ids [1, n] -> logits [1, n, vocab], from the folder's ONNX graph or its torch model."""
    import json

    config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    if config.get("format") == "onnx":
        from modelhub.serving.runtimes.exported import onnx_session

        session = onnx_session(folder / str(config["onnx_file"]))
        return lambda ids: session.run(["logits"], {"ids": ids})[0]
    import torch

    from modelhub.networks import char_lm

    model = char_lm.load(folder).model.eval()

    def forward(ids: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return np.asarray(model(torch.from_numpy(ids)).numpy())

    return forward
