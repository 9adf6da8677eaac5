"""With checkpoint.keep_best, a built-in trainer writes the best checkpoint, not its last state."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from modelhub.training.context import LocalContext
from modelhub.training.trainers import char_lm, tabular, text_classifier
from tests.unit.training.test_char_lm import SMALL, corpus_file
from tests.unit.training.test_tabular import blobs
from tests.unit.training.test_text_classifier import flat, intents_file


@pytest.fixture(autouse=True, scope="module")
def one_thread() -> Iterator[None]:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def random_labels(path: Path, rows: int = 80) -> Path:
    """Features that say nothing about the label: the longer a model trains, the worse it
    does on held-out rows, so its best validation loss comes before its last epoch."""
    rng = np.random.default_rng(0)
    with open(path, "w", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(["a", "b", "c", "label"])
        for _ in range(rows):
            writer.writerow([*rng.normal(size=3).tolist(), int(rng.integers(0, 2))])
    return path


def logged(ctx: LocalContext, name: str) -> list[tuple[int, float]]:
    return [(m["step"], m["value"]) for m in ctx.metrics() if m["name"] == name]


def assert_same_tensors(written: dict[str, torch.Tensor], state: dict[str, torch.Tensor]) -> None:
    assert set(written) == set(state)
    for name, tensor in state.items():
        assert torch.equal(written[name], tensor), name


def test_tabular_registers_its_best_epoch_when_later_ones_overfit(tmp_path: Path) -> None:
    ctx = LocalContext(
        tmp_path / "run",
        hyperparameters={"epochs": 12, "learning_rate": 0.03, "batch_size": 16},
        datasets={"noise": random_labels(tmp_path / "noise.csv")},
        seed=1,
        keep_checkpoints=2,
        keep_best=("val_loss", "min"),
    )
    result = tabular.train(ctx)

    val_losses = logged(ctx, "val_loss")  # one per epoch, each at a checkpoint step
    assert len(val_losses) == 12
    best_step, best_value = min(val_losses, key=lambda entry: entry[1])
    last_step = val_losses[-1][0]
    assert best_step != last_step, "the engineered overfitting did not happen"
    assert json.loads(ctx.best_file.read_text()) == {
        "metric": "val_loss",
        "mode": "min",
        "value": best_value,
        "step": best_step,
    }
    assert sorted(p.name for p in ctx.checkpoint_dir.iterdir()) == [
        "best.pt",
        f"step-{last_step - 4:09d}.pt",
        f"step-{last_step:09d}.pt",
    ]

    best = ctx.best_checkpoint()
    last = ctx.latest_checkpoint()
    assert best is not None and best[0] == best_step
    assert last is not None and last[0] == last_step
    written = load_file(str(ctx.output_dir / "model.safetensors"))
    assert_same_tensors(written, best[1]["model"])
    assert not torch.equal(written["0.weight"], last[1]["model"]["0.weight"])

    assert result.metrics["best_step"] == best_step
    assert result.metrics["val_loss"] == pytest.approx(best_value, rel=1e-6)
    assert result.metrics["train_loss"] == dict(logged(ctx, "train_loss"))[best_step]
    assert tabular.load(ctx.output_dir).predict([{"a": 0.0, "b": 0.0, "c": 0.0}])[0] in (0, 1)


def test_tabular_keeps_the_last_epoch_when_it_is_the_best(tmp_path: Path) -> None:
    ctx = LocalContext(
        tmp_path / "run",
        hyperparameters={"epochs": 3},
        datasets={"blobs": blobs(tmp_path / "blobs.csv")},
        keep_best=("val_accuracy", "max"),
    )
    result = tabular.train(ctx)
    accuracies = logged(ctx, "val_accuracy")
    best_step, best_value = accuracies[0]
    for step, value in accuracies[1:]:  # the first of equal values stays best
        if value > best_value:
            best_step, best_value = step, value
    assert result.metrics["best_step"] == best_step
    best = ctx.best_checkpoint()
    assert best is not None and best[0] == best_step
    assert_same_tensors(load_file(str(ctx.output_dir / "model.safetensors")), best[1]["model"])


def test_char_lm_checkpoints_its_final_state_and_writes_the_best(tmp_path: Path) -> None:
    # "max" makes the earliest, least trained state the best one.
    ctx = LocalContext(
        tmp_path / "run",
        hyperparameters={
            **SMALL,
            "steps": 10,
            "eval_every": 4,
            "checkpoint_every": 4,
            "log_every": 1,
        },
        datasets={"corpus": corpus_file(tmp_path)},
        keep_best=("val_loss", "max"),
    )
    result = char_lm.train(ctx)

    val_losses = logged(ctx, "val_loss")
    assert [step for step, _ in val_losses] == [4, 8, 10]
    latest = ctx.latest_checkpoint()
    assert latest is not None and latest[0] == 10  # the final state, though 10 % 4 != 0
    best_step, best_value = max(val_losses, key=lambda entry: entry[1])
    assert best_step != 10, "training did not lower the validation loss"
    assert json.loads(ctx.best_file.read_text())["value"] == best_value

    best = ctx.best_checkpoint()
    assert best is not None and best[0] == best_step
    assert_same_tensors(load_file(str(ctx.output_dir / "model.safetensors")), best[1]["model"])
    assert result.metrics["best_step"] == best_step
    assert result.metrics["steps"] == 10.0
    assert result.metrics["val_loss"] == pytest.approx(best_value, rel=1e-6)
    assert result.metrics["loss"] == dict(logged(ctx, "loss"))[best_step]
    loaded = char_lm.load(ctx.output_dir)
    assert len(loaded.generate("the", 5, temperature=0)) == 5


def test_text_classifier_writes_the_best_epoch(tmp_path: Path) -> None:
    ctx = LocalContext(
        run_dir=tmp_path / "run",
        hyperparameters={"epochs": 3},
        datasets={"d": intents_file(tmp_path / "intents.jsonl")},
        keep_best=("val_loss", "max"),  # the first epoch's, before it learned much
    )
    result, model = text_classifier.fit(ctx)

    val_losses = logged(ctx, "val_loss")
    assert len(val_losses) == 3
    best_step, best_value = max(val_losses, key=lambda entry: entry[1])
    assert best_step == val_losses[0][0]
    best = ctx.best_checkpoint()
    assert best is not None and best[0] == best_step
    written = load_file(str(ctx.output_dir / "model.safetensors"))
    head = {name.removeprefix("head."): t for name, t in written.items()}
    assert_same_tensors(head, best[1]["head"])
    assert result.metrics["best_step"] == best_step
    assert result.metrics["val_loss"] == pytest.approx(best_value, rel=1e-5)
    assert result.metrics["steps"] == val_losses[-1][0]
    texts = ["hello there", "see you later"]
    loaded = text_classifier.load(ctx.output_dir)
    assert flat(loaded.predict_proba(texts)) == pytest.approx(flat(model.predict_proba(texts)))
