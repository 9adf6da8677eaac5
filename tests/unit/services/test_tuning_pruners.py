"""The search's pruner names become Optuna pruners that work the way the driver uses them:
ask with the search's distributions, report on a re-attached trial, prune, tell."""

from __future__ import annotations

import optuna
import pytest

from modelhub.domain.search import Search
from modelhub.services.tuning import distributions, pruner


def _pruned(name: str) -> int:
    """How many of 12 trials the pruner stops; a trial's loss is its distance from 0.01."""
    search = Search.model_validate(
        {
            "params": {"learning_rate": {"type": "float", "low": 1e-4, "high": 1, "log": True}},
            "pruner": name,
            "startup_trials": 2,
        }
    )
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(pruner=pruner(search))
    count = 0
    for number in range(12):
        study.sampler = optuna.samplers.TPESampler(seed=number)
        asked = study.ask(distributions(search))
        live = optuna.trial.Trial(study, asked._trial_id)  # as the driver re-attaches
        loss = abs(asked.params["learning_rate"] - 0.01)
        for step in range(1, 10):
            live.report(loss + 1.0 / step, step)
            if live.should_prune():
                study.tell(asked.number, state=optuna.trial.TrialState.PRUNED)
                count += 1
                break
        else:
            study.tell(asked.number, loss)
    return count


@pytest.mark.parametrize("name", ["median", "hyperband"])
def test_a_pruner_stops_some_trials(name: str) -> None:
    assert 0 < _pruned(name) < 12


def test_no_pruner_stops_none() -> None:
    assert _pruned("none") == 0
