"""Tiny models trained here, each with one planted cause of its predictions."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from modelhub.training.context import LocalContext

FEATURES = ["noise_a", "noise_b", "signal", "noise_c"]
TRIGGER = "volcano"
SUBJECTS = ["my neighbour", "the teacher", "our team", "a friend", "the driver", "my sister"]
VERBS = ["talked about", "painted", "visited", "described", "photographed", "imagined"]
OBJECTS = ["a garden", "the river", "an old bridge", "the market", "a quiet street", "the harbour"]
ENDINGS = ["yesterday", "last week", "this morning", "on sunday", "at night", "in spring"]


def signal_table(path: Path, rows: int = 400, seed: int = 0) -> Path:
    """Four numeric columns; only `signal` decides the label (its sign)."""
    rng = np.random.default_rng(seed)
    values = rng.normal(size=(rows, len(FEATURES)))
    labels = (values[:, FEATURES.index("signal")] > 0).astype(int)
    lines = [",".join([*FEATURES, "label"])]
    for row, label in zip(values, labels, strict=True):
        lines.append(",".join(f"{v:.5f}" for v in row) + f",{label}")
    path.write_text("\n".join(lines) + "\n")
    return path


def train_tabular(tmp_path: Path, data: Path, epochs: int = 15) -> Path:
    """The tabular classifier trained on `data` (a few hundred rows, a second or two)."""
    from modelhub.training.trainers import tabular

    ctx = LocalContext(
        run_dir=tmp_path / "tabular-run",
        hyperparameters={"epochs": epochs, "hidden": [16], "learning_rate": 0.02, "batch_size": 64},
        datasets={"d": data},
    )
    tabular.train(ctx)
    return ctx.output_dir


def trigger_sentences(rows: int = 160, seed: int = 0) -> list[dict[str, str]]:
    """Everyday sentences; those that mention the trigger word are `alarm`, the rest `calm`."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(rows):
        words = [str(rng.choice(part)) for part in (SUBJECTS, VERBS, OBJECTS, ENDINGS)]
        alarm = i % 2 == 0
        if alarm:
            words[2] = f"the {TRIGGER}"
        out.append({"text": " ".join(words), "label": "alarm" if alarm else "calm"})
    return out


def train_text(tmp_path: Path, rows: int = 160) -> Path:
    """The text classifier (MiniLM frozen, a small head) trained on trigger sentences."""
    from modelhub.training.trainers import text_classifier

    data = tmp_path / "trigger.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in trigger_sentences(rows)))
    ctx = LocalContext(
        run_dir=tmp_path / "text-run",
        hyperparameters={"epochs": 8},
        datasets={"d": data},
    )
    text_classifier.train(ctx)
    return ctx.output_dir
