"""A pipeline's hyperparameters are checked against its trainer's model when it is created:
each unknown key, wrong type and out-of-range value is named under its field path, with
the spec's other problems, and nothing is stored."""

from __future__ import annotations

from pathlib import Path

import pytest

from modelhub.domain.auth import Caller, Role
from modelhub.errors import InvalidInput
from modelhub.services import Services

ADMIN = Caller(name="root", role=Role.ADMIN)


def spec(trainer: str, hyperparameters: str, extra: str = "") -> str:
    return (
        f"name: p\ntype: pre_training\ntrainer: {trainer}\ndatasets: [points]\n"
        f"result_model: {{name: m}}\nhyperparameters: {hyperparameters}\n{extra}"
    )


@pytest.fixture(autouse=True)
def _points(services: Services, tmp_path: Path) -> None:
    csv = tmp_path / "points.csv"
    csv.write_text("a,label\n" + "".join(f"{i},{i % 2}\n" for i in range(20)))
    services.datasets.register(ADMIN, csv, "points")


def refused(services: Services, text: str) -> dict[str, str]:
    with pytest.raises(InvalidInput) as caught:
        services.training.create_pipeline(ADMIN, text)
    assert services.training.list_pipelines(ADMIN) == []  # nothing stored
    return {e["field"]: e["message"] for e in caught.value.details["errors"]}


def test_unknown_key_wrong_type_and_out_of_range_are_each_named(services: Services) -> None:
    problems = refused(
        services,
        spec(
            "tabular_classifier",
            "{hiden: [8], batch_size: eight, learning_rate: -1, log_every: 0}",
            extra="validation_split: 2\n",
        ),
    )
    assert problems["hyperparameters.hiden"].startswith("unknown hyperparameter")
    assert "hidden" in problems["hyperparameters.hiden"]  # the keys it does take
    assert "batch_size" in {k.removeprefix("hyperparameters.") for k in problems}
    assert "greater than 0" in problems["hyperparameters.learning_rate"]
    assert "greater than or equal to 1" in problems["hyperparameters.log_every"]
    assert "validation_split" in problems  # reported with every other spec problem


@pytest.mark.parametrize(
    ("trainer", "hyperparameters", "field", "message"),
    [
        ("char_lm", "{lr_schedule: linear}", "lr_schedule", "'cosine' or 'constant'"),
        ("char_lm", "{steps: 1.5}", "steps", "valid integer"),
        ("char_lm", "{d_model: 30, n_heads: 4}", "", "multiple of n_heads"),
        ("text_classifier", "{tune: everything}", "tune", "'head' or 'last_layers'"),
        ("text_classifier", "{unfreeze_layers: true}", "unfreeze_layers", "valid integer"),
        ("text_classifier", "{max_epochs: 3}", "max_epochs", "unknown hyperparameter"),
    ],
)
def test_each_trainer_checks_its_own_keys(
    services: Services, trainer: str, hyperparameters: str, field: str, message: str
) -> None:
    problems = refused(services, spec(trainer, hyperparameters))
    path = "hyperparameters" + (f".{field}" if field else "")
    assert message in problems[path], problems


def test_epochs_is_max_epochs_and_a_script_takes_any_key(services: Services) -> None:
    assert (
        "max_epochs" in refused(services, spec("char_lm", "{epochs: 3}"))["hyperparameters.epochs"]
    )
    services.training.create_pipeline(
        ADMIN,
        spec("tabular_classifier", "{hidden: 8, batch_size: 4}", "max_epochs: 3\n"),
    )
    created = services.training.create_pipeline(
        ADMIN,
        spec("script", "{anything: 1, steps: 5}", "name: s\nscript: {path: train.py}\n").replace(
            "name: p\n", "", 1
        ),
        {"train.py": b"def train(ctx):\n    return {}\n"},
    )
    assert created.pipeline.spec["hyperparameters"] == {"anything": 1, "steps": 5}
