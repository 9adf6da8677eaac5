"""A study's SVG chart: well-formed, one point per finished trial, a bar per parameter."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import UTC, datetime

from modelhub.domain.search import Search
from modelhub.domain.tuning import Study, StudyStatus, Trial, TrialState
from modelhub.services.tuning import distributions
from modelhub.training.tune_chart import study_chart

SVG = "{http://www.w3.org/2000/svg}"


def _study(importance: dict[str, float]) -> Study:
    trials = [
        Trial(number=0, state=TrialState.COMPLETE, params={"lr": 0.1}, value=0.5, run_id=1),
        Trial(number=1, state=TrialState.COMPLETE, params={"lr": 0.01}, value=0.2, run_id=2),
        Trial(number=2, state=TrialState.PRUNED, params={"lr": 1e-6}, value=0.9, run_id=3),
        Trial(number=3, state=TrialState.RUNNING, params={"lr": 0.02}, run_id=4),
        Trial(number=4, state=TrialState.FAIL, params={"lr": 0.03}, reason="lost"),
    ]
    return Study(
        name="intents",
        pipeline_version=1,
        status=StudyStatus.RUNNING,
        metric="val_loss",
        direction="minimize",
        pruner="median",
        trials=6,
        parallel=2,
        created_by="alice",
        started_at=datetime.now(UTC),
        trial_list=trials,
        importance=importance,
    )


def test_the_chart_plots_finished_trials_and_the_best_so_far() -> None:
    root = ET.fromstring(study_chart(_study({"lr": 0.8, "<hidden>": 0.2})))
    assert len(root.findall(f".//{SVG}circle")) == 3  # two complete, one pruned
    best = root.findall(f".//{SVG}polyline")
    # A step line: trial 0, across to trial 1, down to its better value, on to the end.
    assert len(best) == 1 and len(best[0].get("points", "").split()) == 4
    bars = root.findall(f".//{SVG}rect")
    assert len(bars) == 2
    assert float(bars[0].get("width", "0")) > float(bars[1].get("width", "0"))
    texts = [t.text for t in root.iter(f"{SVG}text")]
    assert "<hidden>" in texts  # escaped in the source, read back whole


def test_a_study_without_results_says_so() -> None:
    empty = _study({}).model_copy(update={"trial_list": []})
    text = study_chart(empty)
    ET.fromstring(text)
    assert "no finished trial yet" in text and "needs at least two complete trials" in text


def test_each_parameter_type_becomes_its_optuna_distribution() -> None:
    search = Search.model_validate(
        {
            "params": {
                "learning_rate": {"type": "float", "low": 1e-4, "high": 1, "log": True},
                "batch_size": {"type": "int", "low": 8, "high": 64, "step": 8},
                "hidden": {"type": "categorical", "choices": [16, 64]},
            }
        }
    )
    found = distributions(search)
    assert found["learning_rate"].log and found["learning_rate"].low == 1e-4
    assert (found["batch_size"].low, found["batch_size"].high, found["batch_size"].step) == (
        8,
        64,
        8,
    )
    assert found["hidden"].choices == (16, 64)
