"""The physical limit: model A's forward pass in process, no server, no HTTP.

torch (`inference_mode`, one intra-op and one inter-op thread) and ONNX Runtime (one
thread each, sequential execution) at batch 1 and batch 32. Each sample times a
block of calls back to back and divides by their count (a single 16 µs call is too
close to the timer's own cost); the figure is the median of the samples, in µs per
call (a call at batch 32 predicts 32 rows).
"""

from __future__ import annotations

import contextlib
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from serving.model_a import INPUT_DIM, INPUT_NAME, ModelA, build_module, check_logits

BATCHES = (1, 32)


@dataclass(frozen=True)
class RawResult:
    engine: str  # "torch" or "onnxruntime"
    batch: int
    median_us: float  # per call
    min_us: float
    samples: int
    calls_per_sample: int

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _per_call_us(fn: Callable[[], object], seconds: float, block: int) -> list[float]:
    """Per-call µs of blocks of `block` calls, for about `seconds` after a warm-up."""
    for _ in range(block * 5):
        fn()
    samples: list[float] = []
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline or len(samples) < 5:
        start = time.perf_counter_ns()
        for _ in range(block):
            fn()
        samples.append((time.perf_counter_ns() - start) / block / 1000)
    return samples


def measure(model: ModelA, seconds_per_point: float = 2.0) -> list[RawResult]:
    """torch and ONNX Runtime, batch 1 and 32; checks both against torch's logits first."""
    import numpy as np
    import onnxruntime as ort
    import torch

    torch.set_num_threads(1)
    if torch.get_num_interop_threads() != 1:
        with contextlib.suppress(RuntimeError):  # already set once in this process
            torch.set_num_interop_threads(1)
    module = build_module()
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    session = ort.InferenceSession(str(model.onnx), options, providers=["CPUExecutionProvider"])
    results: list[RawResult] = []
    block = 200
    for batch in BATCHES:
        rows = np.tile(np.asarray(model.row, dtype=np.float32), (batch, 1))
        x = torch.from_numpy(rows)
        assert x.shape == (batch, INPUT_DIM)
        with torch.inference_mode():
            check_logits([float(v) for v in module(x)[0]], model.logits, "torch")
        check_logits(
            [float(v) for v in session.run(None, {INPUT_NAME: rows})[0][0]],
            model.logits,
            "onnxruntime",
        )

        def torch_call(x: Any = x) -> object:
            with torch.inference_mode():
                return module(x)

        def ort_call(rows: Any = rows) -> object:
            return session.run(None, {INPUT_NAME: rows})

        for engine, fn in (("torch", torch_call), ("onnxruntime", ort_call)):
            samples = _per_call_us(fn, seconds_per_point, block)
            results.append(
                RawResult(
                    engine=engine,
                    batch=batch,
                    median_us=round(statistics.median(samples), 2),
                    min_us=round(min(samples), 2),
                    samples=len(samples),
                    calls_per_sample=block,
                )
            )
    return results


if __name__ == "__main__":
    import json
    import sys
    import tempfile

    from serving.model_a import write

    with tempfile.TemporaryDirectory() as tmp:
        files = write(Path(tmp))
        for result in measure(files, float(sys.argv[1]) if len(sys.argv) > 1 else 2.0):
            print(json.dumps(result.as_dict()))
