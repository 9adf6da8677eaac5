"""Each built-in trainer's output against its ONNX export, through `load_runtime`.

Reference (same run, same process, interleaved): the source folder served by its own
runtime (torch). Both sides on one thread (`torch.set_num_threads(1)`; the ONNX
runtimes run ONNX Runtime sessions on one thread, as the server runs every model).

Models, written as the trainers write them (untrained weights: latency does not
depend on the values):
- tabular_classifier: model A's shape, 32 features -> 64 -> 10 classes; one row a call;
- text_classifier: the shipped MiniLM-L6 encoder and a linear head over 4 classes; one
  short sentence a call, and a batch of 8 sentences;
- char_lm: the trainer's default shape (d_model 64, 2 layers, 4 heads, context 64) over
  a 40-character vocabulary; 32 new tokens a call, greedy.

Per trainer: the export time, the largest output difference `compare_outputs` finds,
the folder sizes, and p50 latency (ms) of one `infer` call for source and export: the
median over --repeat rounds of each round's median over --calls calls.

    .venv/bin/python bench/bench_export.py [--repeat N] [--calls N] [--quick]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from benchlib import emit, isolate_from_user_env, log, median, rounded

SENTENCES = [
    "how do I reset my password",
    "the deployment answered in time",
    "please cancel my subscription today",
    "what a lovely morning it is",
    "my invoice shows the wrong amount",
    "can the persona speak French",
    "goodbye and thanks for the help",
    "the model server is down again",
]


def write_tabular(folder: Path) -> Path:
    import torch

    from modelhub.networks import tabular

    torch.manual_seed(0)
    folder.mkdir(parents=True)
    features = [f"f{i}" for i in range(32)]
    model = tabular.build_model(32, [64], 10)
    classes = [f"c{i}" for i in range(10)]
    tabular.write_output(folder, model, features, "label", classes, [64], np.zeros(32), np.ones(32))
    return folder


def write_text_classifier(folder: Path) -> Path:
    import json

    from safetensors.numpy import save_file

    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    classes = ["account", "billing", "greeting", "other"]
    save_file(
        {
            "head.0.weight": rng.normal(0, 0.1, (len(classes), 384)).astype(np.float32),
            "head.0.bias": np.zeros(len(classes), np.float32),
        },
        str(folder / "model.safetensors"),
    )
    config = {
        "trainer": "text_classifier",
        "classes": classes,
        "embedding_dim": 384,
        "tune": "head",
        "base": "minilm",
        "head": {"type": "linear", "hidden": 0},
        "text_field": "text",
        "label_field": "label",
    }
    (folder / "config.json").write_text(json.dumps(config))
    return folder


def write_char_lm(folder: Path) -> Path:
    import torch

    from modelhub.networks import char_lm

    torch.manual_seed(0)
    folder.mkdir(parents=True)
    config = char_lm.CharLMConfig(vocab="abcdefghijklmnopqrstuvwxyz .,;:!?'-0123")
    char_lm.write_output(folder, char_lm.CharTransformer(config), config)
    return folder


def texts(values: list[str]) -> np.ndarray:
    array = np.empty(len(values), dtype=object)
    array[:] = values
    return array


def folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def p50_ms(call: Callable[[], object], calls: int) -> float:
    for _ in range(max(3, calls // 10)):
        call()
    samples = []
    for _ in range(calls):
        start = time.perf_counter()
        call()
        samples.append(time.perf_counter() - start)
    return median(samples) * 1000


def measure(
    name: str,
    source: Path,
    root: Path,
    cases: dict[str, tuple[dict[str, np.ndarray], dict[str, Any], int]],
    repeat: int,
) -> dict[str, Any]:
    from modelhub.serving.export import compare_outputs, export_onnx
    from modelhub.serving.runtimes import load_runtime

    log(f"{name}: export")
    start = time.perf_counter()
    exported = export_onnx(source, root / f"{name}-onnx")
    export_s = time.perf_counter() - start
    runtimes = {"source": load_runtime(source), "onnx": load_runtime(exported)}
    result: dict[str, Any] = {
        "export_s": rounded(export_s, 2),
        "max_abs_diff": float(f"{compare_outputs(source, exported):.3g}"),
        "source_bytes": folder_bytes(source),
        "onnx_bytes": folder_bytes(exported),
    }
    for case, (inputs, parameters, calls) in cases.items():
        rounds: dict[str, list[float]] = {"source": [], "onnx": []}
        for _ in range(repeat):
            for side, runtime in runtimes.items():
                call = partial(runtime.infer, inputs, parameters)
                rounds[side].append(p50_ms(call, calls))
        source_ms, onnx_ms = median(rounds["source"]), median(rounds["onnx"])
        log(f"{name} {case}: source {source_ms:.3f} ms, onnx {onnx_ms:.3f} ms")
        result[case] = {
            "source_p50_ms": rounded(source_ms, 4),
            "onnx_p50_ms": rounded(onnx_ms, 4),
            "speedup": rounded(source_ms / onnx_ms, 2),
        }
    for runtime in runtimes.values():
        runtime.unload()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5, help="rounds per case")
    parser.add_argument("--calls", type=int, default=200, help="calls per round (scaled down)")
    parser.add_argument("--quick", action="store_true", help="one round of a few calls")
    args = parser.parse_args()
    repeat, calls = (1, 10) if args.quick else (args.repeat, args.calls)
    isolate_from_user_env()
    import torch

    torch.set_num_threads(1)
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="bench-export-") as tmp:
        root = Path(tmp)
        rows = np.random.default_rng(0).normal(size=(1, 32)).astype(np.float32)
        results["tabular_classifier"] = measure(
            "tabular_classifier",
            write_tabular(root / "tabular"),
            root,
            {"one_row": ({"input": rows}, {}, calls * 10)},
            repeat,
        )
        results["text_classifier"] = measure(
            "text_classifier",
            write_text_classifier(root / "text"),
            root,
            {
                "one_text": ({"text": texts(SENTENCES[:1])}, {}, calls),
                "eight_texts": ({"text": texts(SENTENCES)}, {}, max(3, calls // 4)),
            },
            repeat,
        )
        greedy = {"max_tokens": 32, "temperature": 0}
        results["char_lm"] = measure(
            "char_lm",
            write_char_lm(root / "char"),
            root,
            {"generate_32": ({"text": texts(["the model "])}, greedy, max(3, calls // 4))},
            repeat,
        )
    emit(
        {
            "bench": "export",
            "threads": 1,
            "repeat": repeat,
            "torch": torch.__version__,
            **results,
        }
    )


if __name__ == "__main__":
    main()
