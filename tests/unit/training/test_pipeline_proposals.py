"""The proposal rules, from synthetic phase breakdowns: each names its change and its reason."""

from __future__ import annotations

from typing import Any

import pytest

from modelhub.domain.pipeline_optimization import PhaseProfile
from modelhub.domain.pipelines import PipelineSpec, TrainerName
from modelhub.training.pipeline_proposals import compare, helps, profile_of, propose

ROWS = 10_000


def spec(trainer: str = "tabular_classifier", **fields: Any) -> PipelineSpec:
    data: dict[str, Any] = {
        "name": "p",
        "type": "pre_training",
        "trainer": trainer,
        "datasets": ["d"],
        "result_model": {"name": "m"},
    }
    return PipelineSpec.model_validate(data | fields)


def profile(steps: int = 100, samples: int | None = None, **seconds: float) -> PhaseProfile:
    """A run whose phases took `seconds` (the rest 0), `steps` steps of batch 1."""
    phases = {
        "data": 0.0,
        "forward": 0.0,
        "backward": 0.0,
        "optimizer": 0.0,
        "validation": 0.0,
        "checkpoint": 0.0,
        "logging": 0.0,
        "other": 0.0,
    } | seconds
    total = sum(phases.values())
    count = samples if samples is not None else steps
    return PhaseProfile(
        run_id=1,
        phases=phases,
        seconds=total,
        steps=steps,
        samples=count,
        checkpoints=steps if phases["checkpoint"] else 0,
        samples_per_s=count / total if total else 0.0,
        validation=0.9,
    )


def fields(proposal: Any) -> dict[str, tuple[Any, Any]]:
    return {c.field: (c.old, c.new) for c in proposal.changes}


def test_per_step_overhead_asks_for_a_bigger_batch() -> None:
    found = propose(
        spec(hyperparameters={"batch_size": 2}),
        profile(data=0.1, forward=0.3, backward=0.3, optimizer=0.5, other=0.1),
        ROWS,
        gpu=False,
    )
    # overhead 0.6 of 1.3 s = 46%: 8x brings it near 10%; the rate grows by sqrt(8)
    assert fields(found) == {
        "hyperparameters.batch_size": (2, 16),
        "hyperparameters.learning_rate": (1e-3, 0.00283),
    }
    assert "46%" in found.changes[0].reason and "sqrt(8)" in found.changes[1].reason
    assert found.spec is not None and found.spec["hyperparameters"]["batch_size"] == 16
    assert found.spec["hyperparameters"]["learning_rate"] == 0.00283


def test_the_bigger_batch_leaves_a_few_steps_an_epoch() -> None:
    found = propose(
        spec(hyperparameters={"batch_size": 4}),
        profile(forward=0.1, optimizer=0.9),
        train_rows=40,
        gpu=False,
    )
    assert fields(found)["hyperparameters.batch_size"] == (4, 10)  # 40 rows / 4 steps
    stuck = propose(
        spec(hyperparameters={"batch_size": 10}),
        profile(forward=0.1, optimizer=0.9),
        train_rows=40,
        gpu=False,
    )
    assert stuck.changes == [] and stuck.spec is None
    assert "fewer than 4 steps an epoch" in stuck.notes[0]


def test_compute_bound_steps_keep_their_batch() -> None:
    found = propose(
        spec(), profile(data=0.05, forward=0.4, backward=0.5, optimizer=0.05), ROWS, gpu=False
    )
    assert found.changes == [] and found.notes == [] and found.spec is None


def test_costly_checkpoints_ask_for_a_longer_interval() -> None:
    found = propose(
        spec(checkpoint={"every_steps": 1}),
        # 100 steps of 1 ms compute, a 1 ms checkpoint after each
        profile(forward=0.04, backward=0.05, optimizer=0.01, checkpoint=0.1),
        ROWS,
        gpu=False,
    )
    # 1 ms a checkpoint at most 2% of the steps between: every 50
    assert fields(found) == {"checkpoint.every_steps": (1, 50)}
    assert "50%" in found.changes[0].reason
    assert found.spec is not None and found.spec["checkpoint"]["every_steps"] == 50


def test_the_interval_may_live_in_the_hyperparameters() -> None:
    found = propose(
        spec("char_lm", hyperparameters={"checkpoint_every": 10}),
        profile(forward=0.4, backward=0.5, optimizer=0.05, checkpoint=0.3),
        ROWS,
        gpu=False,
    )
    assert fields(found) == {"hyperparameters.checkpoint_every": (10, 20)}


def test_epoch_end_checkpoints_have_no_interval_to_lengthen() -> None:
    found = propose(
        spec(), profile(forward=0.4, backward=0.5, optimizer=0.05, checkpoint=0.3), ROWS, False
    )
    assert found.changes == []


def test_slow_data_loading_is_a_note_without_a_loader_to_tune() -> None:
    found = propose(
        spec(), profile(data=0.6, forward=0.2, backward=0.2, optimizer=0.05), ROWS, gpu=False
    )
    assert found.changes == [] and found.spec is None
    assert "data loading is 57%" in found.notes[0] and "no data-loader workers" in found.notes[0]


def test_mixed_precision_is_named_only_where_a_gpu_trains() -> None:
    busy = profile(forward=0.5, backward=0.45, optimizer=0.05)
    assert propose(spec(), busy, ROWS, gpu=False).notes == []
    [note] = propose(spec(), busy, ROWS, gpu=True).notes
    assert "mixed precision" in note and "95%" in note


def test_a_text_classifier_tunes_fewer_layers_when_backward_dominates() -> None:
    layers = spec("text_classifier", hyperparameters={"tune": "last_layers", "unfreeze_layers": 4})
    heavy = profile(forward=0.3, backward=0.6, optimizer=0.1)
    assert fields(propose(layers, heavy, ROWS, gpu=False)) == {
        "hyperparameters.unfreeze_layers": (4, 2)
    }
    one = spec("text_classifier", hyperparameters={"tune": "last_layers", "unfreeze_layers": 1})
    found = propose(one, heavy, ROWS, gpu=False)
    assert fields(found) == {"hyperparameters.tune": ("last_layers", "head")}
    assert "backward is 60%" in found.changes[0].reason
    # tuning the head alone has no encoder layers to drop
    assert propose(spec("text_classifier"), heavy, ROWS, gpu=False).changes == []


def test_rules_combine_into_one_changed_spec() -> None:
    found = propose(
        spec(hyperparameters={"batch_size": 1}, checkpoint={"every_steps": 1}),
        profile(forward=0.03, backward=0.03, optimizer=0.06, other=0.01, checkpoint=0.3),
        ROWS,
        gpu=False,
    )
    assert set(fields(found)) == {
        "hyperparameters.batch_size",
        "hyperparameters.learning_rate",
        "checkpoint.every_steps",
    }
    assert found.spec is not None
    PipelineSpec.model_validate(found.spec)  # still a valid spec


def test_a_run_without_steps_proposes_nothing() -> None:
    found = propose(spec(), profile(steps=0), ROWS, gpu=False)
    assert found.changes == [] and "no step" in found.notes[0]


@pytest.mark.parametrize(
    ("trainer", "before", "after", "holds"),
    [
        (TrainerName.TABULAR_CLASSIFIER, 0.90, 0.89, True),
        (TrainerName.TABULAR_CLASSIFIER, 0.90, 0.87, False),
        (TrainerName.CHAR_LM, 2.00, 2.01, True),  # a loss: lower is better
        (TrainerName.CHAR_LM, 2.00, 2.05, False),
    ],
)
def test_validation_holds_within_the_tolerance(
    trainer: TrainerName, before: float, after: float, holds: bool
) -> None:
    old = profile(forward=1.0).model_copy(update={"validation": before})
    new = profile(forward=0.5).model_copy(update={"validation": after})
    gain, check = compare(old, new, trainer, tolerance=0.02)
    assert gain == pytest.approx(2.0)
    assert check.holds is holds
    assert helps(gain, check) is holds


def test_a_change_must_be_measurably_faster() -> None:
    old = profile(forward=1.0)
    _, check = compare(old, old, TrainerName.TABULAR_CLASSIFIER, 0.02)
    assert check.holds and not helps(1.02, check)
    missing = old.model_copy(update={"validation": None})
    assert not compare(old, missing, TrainerName.TABULAR_CLASSIFIER, 0.02)[1].holds


def test_the_profile_is_read_from_a_runs_metrics() -> None:
    metrics = {
        "profile_forward_s": 0.5,
        "profile_checkpoint_s": 0.25,
        "profile_other_s": 0.25,
        "profile_seconds": 1.0,
        "profile_steps": 10.0,
        "profile_samples": 80.0,
        "profile_checkpoints": 10.0,
        "profile_samples_per_s": 80.0,
        "val_accuracy": 0.75,
    }
    found = profile_of(7, metrics, TrainerName.TABULAR_CLASSIFIER)
    assert found is not None
    assert (found.run_id, found.steps, found.samples, found.validation) == (7, 10, 80, 0.75)
    assert found.share("checkpoint") == 0.25 and found.phases["data"] == 0.0
    assert profile_of(7, {"val_accuracy": 0.75}, TrainerName.TABULAR_CLASSIFIER) is None
