"""int8 against fp32 ONNX for the tabular and text classifiers: size, p50 latency, accuracy.

Each model is trained here (the tabular MLP on two blobs, the text classifier's head
on templated intents over the shipped MiniLM encoder), exported to an fp32 ONNX folder
(`serving.export.export_onnx`), and quantised to dynamic int8
(`serving.quantize.optimise_folder`), the same steps `modelhub optimize --to int8`
takes. **Reference: the fp32 ONNX export, measured in the same run.**

Latency is measured through the serving runtime (`load_runtime`, as a replica loads
the folder, without HTTP): the median of single-row calls after a warm-up, over
`--rounds` rounds (the median of the rounds' medians). Accuracy is on held-out rows
the trainer never saw. Goal (issue 15): on the text classifier, int8 at least 2x
smaller and 1.5x faster with an accuracy drop under 1 point.

    python bench/bench_quantize.py [--quick] [--rounds 3] [--repeats 300]
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from benchlib import emit, isolate_from_user_env, log, rounded

GREET = ["hello", "hi", "hey", "good morning", "good evening", "greetings", "howdy", "hiya"]
BYE = ["goodbye", "bye", "see you later", "take care", "farewell", "so long", "good night"]
WEATHER = [
    "what's the weather like",
    "will it rain",
    "is it sunny",
    "how cold is it",
    "what is the temperature",
    "is a storm coming",
    "will it snow",
    "is it windy",
]
WHO = ["", " friend", " everyone", " there", " team", " buddy", " all", " folks"]
WHEN = ["", " today", " tomorrow", " tonight", " this weekend", " in paris", " in london"]


def intents(rows: int, seed: int) -> list[dict[str, str]]:
    rng = random.Random(seed)
    out = []
    for i in range(rows):
        kind = i % 3
        if kind == 0:
            text, label = rng.choice(GREET) + rng.choice(WHO) + rng.choice(["", "!", ","]), "greet"
        elif kind == 1:
            text, label = rng.choice(BYE) + rng.choice(WHO) + rng.choice(["", "!", "."]), "bye"
        else:
            text, label = rng.choice(WEATHER) + rng.choice(WHEN) + "?", "weather"
        out.append({"text": text, "label": label})
    return out


def blobs(rows: int, seed: int) -> list[tuple[float, float, int]]:
    import numpy as np

    rng = np.random.default_rng(seed)
    labels = np.arange(rows) % 2
    a, b = rng.normal(labels * 2.0, 1.0), rng.normal(-labels * 2.0, 1.0)
    return [(float(x), float(y), int(c)) for x, y, c in zip(a, b, labels, strict=True)]


def train_tabular(work: Path, rows: int) -> tuple[Path, Any]:
    from modelhub.domain.optimisation import EvalRows
    from modelhub.training.context import LocalContext
    from modelhub.training.trainers import tabular

    data = work / "blobs.csv"
    data.write_text("a,b,label\n" + "".join(f"{a},{b},{c}\n" for a, b, c in blobs(rows, 0)))
    ctx = LocalContext(
        run_dir=work / "tabular-run",
        hyperparameters={"epochs": 3, "batch_size": 32, "hidden": [64, 64]},
        datasets={"blobs": data},
    )
    tabular.train(ctx)
    held = blobs(max(200, rows // 4), 1)
    rows_ = EvalRows("input", [[a, b] for a, b, _ in held], [str(c) for *_, c in held], "held")
    return ctx.output_dir, rows_


def train_text(work: Path, rows: int, epochs: int) -> tuple[Path, Any]:
    from modelhub.domain.optimisation import EvalRows
    from modelhub.training.context import LocalContext
    from modelhub.training.trainers import text_classifier

    data = work / "intents.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in intents(rows, 0)))
    ctx = LocalContext(
        run_dir=work / "text-run",
        hyperparameters={"epochs": epochs, "batch_size": 32},
        datasets={"intents": data},
    )
    text_classifier.train(ctx)
    held = intents(max(150, rows // 4), 1)
    rows_ = EvalRows("text", [r["text"] for r in held], [r["label"] for r in held], "held")
    return ctx.output_dir, rows_


def request_body(rows: Any) -> dict[str, Any]:
    """One row of `rows` as an Open Inference Protocol request, as a client sends it."""
    value = rows.rows[0]
    if rows.input == "text":
        return {"inputs": [{"name": "text", "shape": [1], "datatype": "BYTES", "data": [value]}]}
    shape = [1, len(value)]
    return {"inputs": [{"name": "input", "shape": shape, "datatype": "FP32", "data": value}]}


def endpoint_p50(
    name: str, folders: dict[str, Path], rows: Any, work: Path, rounds: int, repeats: int
) -> dict[str, float]:
    """Median single-row request latency through each folder's deployment endpoint
    (a real `modelhub server`, one replica each, keep-alive HTTP), rounds interleaved."""
    from serving.ours import platform

    body = request_body(rows)
    times: dict[str, list[float]] = {label: [] for label in folders}
    with platform(work, f"{name}-endpoint", MODELHUB_SERVE_WARM_SPARES="0") as hub:
        for label, folder in folders.items():
            version = hub.register(folder, f"bench-{name}", "classification")
            hub.deploy(f"bench-{name}@{version}", f"{name}-{label}", replicas=1)
        for _ in range(rounds):
            for label in folders:
                path = f"/v2/models/{name}-{label}/infer"
                samples = []
                for i in range(10 + repeats):
                    began = time.perf_counter()
                    hub.http.post(path, json=body).raise_for_status()
                    if i >= 10:
                        samples.append((time.perf_counter() - began) * 1000)
                times[label].append(statistics.median(samples))
    return {label: statistics.median(values) for label, values in times.items()}


def compare(
    name: str, source: Path, rows: Any, work: Path, rounds: int, repeats: int, endpoint: bool
) -> dict[str, Any]:
    from modelhub.domain.optimisation import Method
    from modelhub.serving.export import export_onnx
    from modelhub.serving.measure import measure
    from modelhub.serving.quantize import optimise_folder

    fp32 = export_onnx(source, work / f"{name}-fp32")
    int8 = optimise_folder(fp32, work / f"{name}-int8", Method.INT8_DYNAMIC)
    figures: dict[str, list[Any]] = {"fp32": [], "int8": []}
    for round_ in range(rounds):
        # Interleaved, so drift on a shared machine moves both sides together.
        for label, folder in (("fp32", fp32), ("int8", int8)):
            figures[label].append(measure(folder, rows, repeats=repeats))
        log(
            f"{name} round {round_ + 1}: fp32 {figures['fp32'][-1].p50_ms:.3f} ms, "
            f"int8 {figures['int8'][-1].p50_ms:.3f} ms"
        )
    p50 = {k: statistics.median(f.p50_ms for f in v) for k, v in figures.items()}
    size = {k: v[0].size_bytes for k, v in figures.items()}
    accuracy = {k: v[0].value for k, v in figures.items()}
    served: dict[str, Any] = {}
    if endpoint:
        http = endpoint_p50(name, {"fp32": fp32, "int8": int8}, rows, work, rounds, repeats)
        served = {
            "endpoint_fp32_p50_ms": rounded(http["fp32"], 3),
            "endpoint_int8_p50_ms": rounded(http["int8"], 3),
            "endpoint_speedup": rounded(http["fp32"] / http["int8"]),
        }
        log(f"{name} endpoint: {served}")
    return {
        **served,
        "fp32_bytes": size["fp32"],
        "int8_bytes": size["int8"],
        "size_ratio": rounded(size["fp32"] / size["int8"]),
        "fp32_p50_ms": rounded(p50["fp32"], 4),
        "int8_p50_ms": rounded(p50["int8"], 4),
        "speedup": rounded(p50["fp32"] / p50["int8"]),
        "fp32_accuracy": rounded(accuracy["fp32"], 4),
        "int8_accuracy": rounded(accuracy["int8"], 4),
        "accuracy_drop_points": rounded(100 * (accuracy["fp32"] - accuracy["int8"]), 2),
        "eval_rows": len(rows.rows),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--quick", action="store_true", help="Fewer rows, rounds, repeats.")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=300)
    parser.add_argument(
        "--no-endpoint", action="store_true", help="Skip the deployment endpoint timings."
    )
    args = parser.parse_args()
    endpoint = not args.no_endpoint
    isolate_from_user_env()
    rounds, repeats = (1, 50) if args.quick else (args.rounds, args.repeats)
    with tempfile.TemporaryDirectory(prefix="bench-quantize-") as tmp:
        work = Path(tmp)
        log("training the tabular classifier")
        tabular_folder, tabular_rows = train_tabular(work, 400 if args.quick else 2000)
        tabular = compare("tabular", tabular_folder, tabular_rows, work, rounds, repeats, endpoint)
        log("training the text classifier's head over MiniLM")
        text_folder, text_rows = train_text(
            work, 150 if args.quick else 600, 2 if args.quick else 4
        )
        text = compare("text", text_folder, text_rows, work, rounds, repeats, endpoint)
    # The goal reads latency through the deployment endpoint; without it, the
    # runtime's own figure stands in.
    faster = text.get("endpoint_speedup", text["speedup"])
    goal = bool(text["size_ratio"] >= 2.0 and faster >= 1.5 and text["accuracy_drop_points"] < 1.0)
    emit(
        {
            "bench": "quantize",
            "mode": "quick" if args.quick else "full",
            "measured_through": "load_runtime (the serving runtime, no HTTP), single rows; "
            "endpoint_*: POST /v2/models/{deployment}/infer on a modelhub server",
            "reference": "fp32 ONNX export, same run",
            "rounds": rounds,
            "repeats": repeats,
            "tabular": tabular,
            "text_classifier": text,
            "goal": "text classifier int8: >=2x smaller, >=1.5x faster, drop < 1 point",
            "goal_met": goal,
        }
    )


if __name__ == "__main__":
    main()
