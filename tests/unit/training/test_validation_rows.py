"""The rows optimisation measures on: a trainer's validation split rebuilt, and the
`--eval` / `--calibration` files checked against the model's columns."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from modelhub.errors import InvalidInput
from modelhub.training.trainers.tabular_data import split_rows
from modelhub.training.trainers.text_classifier import split_indices
from modelhub.training.validation import file_rows, validation_rows

TABULAR = {"trainer": "tabular_classifier", "features": ["a", "b"], "label": "label"}
TEXT = {"trainer": "text_classifier", "text_field": "utterance", "label_field": "intent"}


def blobs(path: Path, rows: int = 50) -> Path:
    lines = ["a,b,label"] + [f"{i * 0.5},{-i * 0.25},{i % 2}" for i in range(rows)]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_the_tabular_split_is_the_trainers_held_out_rows(tmp_path: Path) -> None:
    data = blobs(tmp_path / "blobs.csv")
    rows = validation_rows("tabular_classifier", data, {}, seed=7, fraction=0.2, name="b@1")
    _, held = split_rows(50, 0.2, 7)
    assert rows.input == "input" and len(rows.rows) == len(held) == 10
    assert rows.rows == [[i * 0.5, -i * 0.25] for i in held]
    assert rows.labels == [str(i % 2) for i in held]
    assert rows.source == "the validation split of b@1 (seed 7, 20%)"


def test_the_text_split_is_the_trainers_stratified_one(tmp_path: Path) -> None:
    data = tmp_path / "intents.jsonl"
    examples = [{"utterance": f"text {i}", "intent": "ab"[i % 2]} for i in range(20)]
    data.write_text("".join(json.dumps(e) + "\n" for e in examples))
    hp = {"text_field": "utterance", "label_field": "intent"}
    rows = validation_rows("text_classifier", data, hp, seed=1, fraction=0.25, name="i@2")
    _, held = split_indices([i % 2 for i in range(20)], 0.25, 1)
    assert rows.input == "text"
    assert rows.rows == [f"text {i}" for i in held]
    assert rows.labels == ["ab"[i % 2] for i in held]


def test_a_file_without_the_models_columns_names_what_is_missing(tmp_path: Path) -> None:
    wrong = tmp_path / "wrong.csv"
    wrong.write_text("a,c,label\n1,2,0\n")
    with pytest.raises(InvalidInput, match=r"lacks column.*b: the model needs a, b") as caught:
        file_rows(wrong, TABULAR, labelled=False, option="--calibration")
    assert caught.value.details["missing"] == ["b"]
    unlabelled = tmp_path / "unlabelled.csv"
    unlabelled.write_text("a,b\n1,2\n")
    assert file_rows(unlabelled, TABULAR, labelled=False, option="--calibration").rows == [
        [1.0, 2.0]
    ]
    with pytest.raises(InvalidInput, match=r"--eval unlabelled\.csv lacks column.*label"):
        file_rows(unlabelled, TABULAR, labelled=True, option="--eval")


def test_text_rows_come_from_the_models_own_fields(tmp_path: Path) -> None:
    data = tmp_path / "eval.jsonl"
    data.write_text('{"utterance": "hi", "intent": "greet"}\n')
    rows = file_rows(data, TEXT, labelled=True, option="--eval")
    assert (rows.input, rows.rows, rows.labels) == ("text", ["hi"], ["greet"])
    plain = tmp_path / "plain.jsonl"
    plain.write_text('{"text": "hi", "label": "greet"}\n')
    with pytest.raises(InvalidInput, match="utterance, intent"):
        file_rows(plain, TEXT, labelled=True, option="--eval")


def test_a_feature_with_missing_values_is_refused(tmp_path: Path) -> None:
    holes = tmp_path / "holes.csv"
    holes.write_text("a,b,label\n1,,0\n2,3,1\n")
    with pytest.raises(InvalidInput, match="'b' holds NaN"):
        file_rows(holes, TABULAR, labelled=True, option="--eval")
