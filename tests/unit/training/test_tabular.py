from __future__ import annotations

import csv
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from modelhub.errors import InvalidInput, TrainingDiverged
from modelhub.training.context import LocalContext
from modelhub.training.trainers import tabular


def blobs(path: Path, rows: int = 300, labels: tuple[Any, Any] = (0, 1), seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    half = rows // 2
    x = np.concatenate([rng.normal(-2.0, 1.0, (half, 3)), rng.normal(2.0, 1.0, (rows - half, 3))])
    y = [labels[0]] * half + [labels[1]] * (rows - half)
    with open(path, "w", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(["a", "b", "c", "label"])
        for features, label in zip(x.tolist(), y, strict=True):
            writer.writerow([*features, label])
    return path


def write_csv(path: Path, header: list[str], rows: list[list[Any]]) -> Path:
    with open(path, "w", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def context(run_dir: Path, data: Path, **hp: Any) -> LocalContext:
    return LocalContext(run_dir=run_dir, hyperparameters=hp, datasets={"train": data}, seed=7)


def logged(ctx: LocalContext, name: str) -> list[tuple[int, float]]:
    return [(m["step"], m["value"]) for m in ctx.metrics() if m["name"] == name]


def test_learns_separable_blobs_and_reports(tmp_path: Path) -> None:
    ctx = context(tmp_path / "run", blobs(tmp_path / "d.csv"), epochs=5, log_every=2)
    result = tabular.train(ctx)
    assert result.metrics["val_accuracy"] > 0.9
    assert result.output_dir == ctx.output_dir
    losses = [v for _, v in logged(ctx, "loss")]
    third = len(losses) // 3
    assert np.mean(losses[-third:]) < np.mean(losses[:third])
    assert {"learning_rate", "samples_per_s", "val_loss", "val_accuracy"} <= {
        m["name"] for m in ctx.metrics()
    }
    assert len(logged(ctx, "val_accuracy")) == 5
    progress = json.loads((ctx.run_dir / "progress.json").read_text())
    assert progress["step"] == progress["total_steps"] == 5 * 8
    checkpoints = list(ctx.checkpoint_dir.glob("step-*.pt"))
    assert 0 < len(checkpoints) <= ctx.keep_checkpoints
    config = json.loads((ctx.output_dir / "config.json").read_text())
    assert config["features"] == ["a", "b", "c"]
    assert config["classes"] == [0, 1]
    assert config["input_dim"] == 3 and config["hidden"] == [64]


def test_loaded_model_predicts_exactly_like_the_trained_one(tmp_path: Path) -> None:
    ctx = context(tmp_path / "run", blobs(tmp_path / "d.csv"), epochs=2, hidden=[16, 8])
    tabular.train(ctx)
    predictor = tabular.load(ctx.output_dir)
    assert not predictor.model.training
    held_out = blobs(tmp_path / "held.csv", rows=50, seed=99)
    with open(held_out) as handle:
        rows = [{k: float(v) for k, v in r.items() if k != "label"} for r in csv.DictReader(handle)]

    saved = ctx.latest_checkpoint()
    assert saved is not None
    trained = tabular.build_model(3, [16, 8], 2)
    trained.load_state_dict(saved[1]["model"])
    trained.eval()
    config = predictor.config
    x = torch.tensor([[r[f] for f in config["features"]] for r in rows], dtype=torch.float32)
    x = (x - torch.tensor(config["mean"])) / torch.tensor(config["std"])
    with torch.no_grad():
        expected = trained(x).argmax(dim=1).tolist()
    assert predictor.predict(rows) == expected
    proba = predictor.predict_proba(rows)
    assert [int(np.argmax(p)) for p in proba] == expected
    assert all(abs(sum(p) - 1.0) < 1e-5 for p in proba)


def test_string_labels(tmp_path: Path) -> None:
    ctx = context(tmp_path / "run", blobs(tmp_path / "d.csv", labels=("cat", "dog")), epochs=3)
    result = tabular.train(ctx)
    assert result.metrics["val_accuracy"] > 0.9
    predictor = tabular.load(ctx.output_dir)
    assert predictor.classes == ["cat", "dog"]
    assert predictor.predict([{"a": -2.0, "b": -2.0, "c": -2.0}, {"a": 2, "b": 2, "c": 2}]) == [
        "cat",
        "dog",
    ]


def test_resume_continues_after_the_last_checkpoint(tmp_path: Path) -> None:
    data = blobs(tmp_path / "d.csv")
    run = tmp_path / "run"
    tabular.train(context(run, data, epochs=2, log_every=1))
    first = context(run, data)
    steps_before = [s for s, _ in logged(first, "loss")]
    assert steps_before == list(range(1, 17))

    second = context(run, data, epochs=4, log_every=1)
    result = tabular.train(second)
    steps_after = [s for s, _ in logged(second, "loss")][len(steps_before) :]
    assert steps_after == list(range(17, 33))
    assert len(logged(second, "val_accuracy")) == 4
    assert result.metrics["val_accuracy"] > 0.9


def test_resuming_from_the_final_checkpoint_reports_the_train_loss_it_logged(
    tmp_path: Path,
) -> None:
    # A server killed after the last step but before the run was recorded complete:
    # the next attempt trains nothing, and must not report train_loss as NaN (JSON
    # carries it as null, which no client can read back as a number).
    data = blobs(tmp_path / "d.csv")
    run = tmp_path / "run"
    done = tabular.train(context(run, data, epochs=2, log_every=1))
    again = tabular.train(context(run, data, epochs=2, log_every=1))
    assert math.isfinite(again.metrics["train_loss"])
    assert again.metrics["train_loss"] == done.metrics["train_loss"]


def test_resume_mid_epoch_skips_trained_batches(tmp_path: Path) -> None:
    data = blobs(tmp_path / "d.csv")
    run = tmp_path / "run"
    ctx = context(run, data, epochs=1, checkpoint_every=3, log_every=1)
    tabular.train(ctx)
    # pretend the run was killed after step 6: keep only that checkpoint and its metrics
    for path in ctx.checkpoint_dir.glob("step-*.pt"):
        if path.name != "step-000000006.pt":
            path.unlink()
    kept = [
        line for line in ctx.metrics_file.read_text().splitlines() if json.loads(line)["step"] <= 6
    ]
    ctx.metrics_file.write_text("\n".join(kept) + "\n")
    resumed = context(run, data, epochs=1, checkpoint_every=3, log_every=1)
    tabular.train(resumed)
    assert [s for s, _ in logged(resumed, "loss")] == list(range(1, 9))


def test_stop_file_stops_early_with_a_checkpoint(tmp_path: Path) -> None:
    run = tmp_path / "run"
    run.mkdir()
    (run / "STOP").touch()
    ctx = context(run, blobs(tmp_path / "d.csv"), epochs=3)
    result = tabular.train(ctx)
    assert result.metrics["stopped_at_step"] == 0
    saved = ctx.latest_checkpoint()
    assert saved is not None and saved[0] == 0
    assert (ctx.output_dir / "model.safetensors").exists()


def test_diverging_loss_raises_with_the_step(tmp_path: Path) -> None:
    ctx = context(tmp_path / "run", blobs(tmp_path / "d.csv"), epochs=2, learning_rate=1e30)
    with pytest.raises(TrainingDiverged) as caught:
        tabular.train(ctx)
    assert caught.value.code == "training_diverged"
    assert caught.value.details["step"] >= 1


@pytest.mark.parametrize(
    ("header", "rows", "hp", "needle"),
    [
        (["a", "y"], [[1, 0], [2, 1]], {}, "label column 'label'"),
        (
            ["a", "name", "label"],
            [[1, "x", 0], [2, "z", 1]],
            {"features": ["a", "name"]},
            "'name' is not numeric",
        ),
        (["a", "label"], [[1, 0], [2, 0], [3, 0]], {}, "at least 2"),
        (["a", "b", "label"], [[1, 1, 0], [2, "nan", 1]], {}, "'b' holds NaN"),
        (["a", "b", "label"], [[1, 1, 0], [2, "inf", 1]], {}, "'b' holds NaN"),
        (["a", "b", "label"], [[1, 1, 0], [2, "", 1]], {}, "'b' holds NaN"),
        (["a", "label"], [], {}, "no rows"),
        (["a", "label"], [[1, 0], [2, 1]], {"features": ["zz"]}, "'zz' is not in"),
    ],
)
def test_bad_input_is_named(
    tmp_path: Path, header: list[str], rows: list[list[Any]], hp: dict[str, Any], needle: str
) -> None:
    data = write_csv(tmp_path / "bad.csv", header, rows)
    with pytest.raises(InvalidInput, match=needle):
        tabular.train(context(tmp_path / "run", data, **hp))


def test_empty_file_is_invalid(tmp_path: Path) -> None:
    data = tmp_path / "empty.csv"
    data.write_text("")
    with pytest.raises(InvalidInput, match="empty"):
        tabular.train(context(tmp_path / "run", data))


def test_jsonl_and_parquet(tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(1)
    records = [{"x": float(v), "label": "hi" if v > 0 else "lo"} for v in rng.normal(0, 2, 200)]
    jsonl = tmp_path / "d.jsonl"
    jsonl.write_text("".join(json.dumps(r) + "\n" for r in records))
    parquet = tmp_path / "d.parquet"
    pq.write_table(pa.Table.from_pylist(records), parquet)
    for i, path in enumerate((jsonl, parquet)):
        result = tabular.train(context(tmp_path / f"run{i}", path, epochs=3, learning_rate=1e-2))
        assert result.metrics["val_accuracy"] > 0.9


def test_resumed_run_ends_with_the_same_weights_as_an_uninterrupted_one(tmp_path: Path) -> None:
    data = blobs(tmp_path / "d.csv")
    whole = context(tmp_path / "whole", data, epochs=2)
    tabular.train(whole)
    part = context(tmp_path / "part", data, epochs=2, checkpoint_every=5)
    tabular.train(part)
    for path in part.checkpoint_dir.glob("step-*.pt"):
        if path.name != "step-000000010.pt":
            path.unlink()
    tabular.train(context(tmp_path / "part", data, epochs=2, checkpoint_every=5))
    from safetensors.torch import load_file

    a = load_file(str(whole.output_dir / "model.safetensors"))
    b = load_file(str(part.output_dir / "model.safetensors"))
    assert a and a.keys() == b.keys()  # an empty or partial file cannot pass below
    assert all(torch.equal(a[k], b[k]) for k in a)
