"""A char LM is measured by its validation loss: on the windows its trainer held out,
the same for the torch source and its ONNX export, and finite for an int8 copy."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from modelhub.domain.optimisation import Figures, Method, metric_drop
from modelhub.serving.export import export_onnx
from modelhub.serving.measure import measure
from modelhub.serving.quantize import optimise_folder
from modelhub.training.context import LocalContext
from modelhub.training.trainers import char_lm
from modelhub.training.validation import validation_rows

CORPUS = "the persona answers kindly and briefly. she remembers names and thanks people.\n" * 30


def test_a_char_lm_is_measured_by_its_validation_loss(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus.txt"
    corpus.write_text(CORPUS)
    hp = {"steps": 30, "context_length": 16, "d_model": 32, "n_layers": 1, "n_heads": 2}
    ctx = LocalContext(run_dir=tmp_path / "run", hyperparameters=hp, datasets={"c": corpus}, seed=2)
    result = char_lm.train(ctx)
    config = json.loads((ctx.output_dir / "config.json").read_text())
    rows = validation_rows("char_lm", corpus, hp, 2, 0.2, "c@1", config)
    assert rows.input == "ids" and all(len(w) == 17 for w in rows.rows)
    assert len(rows.rows) == min(64, (int(len(CORPUS) * 0.2) - 1) // 16)

    source = measure(ctx.output_dir, rows, repeats=5)
    assert source.metric == "val_loss"
    # The trainer's own validation loss, on the same windows.
    assert source.value == pytest.approx(result.metrics["val_loss"], rel=1e-4)
    exported = export_onnx(ctx.output_dir, tmp_path / "onnx")
    assert measure(exported, rows, repeats=5).value == pytest.approx(source.value, rel=1e-4)
    int8 = measure(optimise_folder(exported, tmp_path / "int8", Method.INT8_DYNAMIC), rows, 5)
    assert 0 < int8.value < 10 and int8.p50_ms > 0


def test_for_a_loss_the_drop_is_how_much_it_grew() -> None:
    def figures(metric: str, value: float) -> Figures:
        return Figures(size_bytes=1, p50_ms=1.0, metric=metric, value=value, rows=1)

    assert metric_drop(figures("val_loss", 1.0), figures("val_loss", 1.25)) == 0.25
    assert metric_drop(figures("accuracy", 0.9), figures("accuracy", 0.85)) == pytest.approx(0.05)
