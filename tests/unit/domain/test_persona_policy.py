"""A persona's learning policy: defaults, and each refusal names the key at fault."""

from __future__ import annotations

import pytest

from modelhub.domain.personas import InteractionIn, PersonaPolicy
from modelhub.errors import InvalidInput


def test_an_empty_policy_is_the_defaults_and_every_key_is_read() -> None:
    assert PersonaPolicy.parse(None) == PersonaPolicy.parse("  ") == PersonaPolicy()
    policy = PersonaPolicy.parse(
        "triggers: {new_labels: 20, drift: true, schedule: 12h}\nmargin: 0.1\nalpha: 0.01\n"
        "holdout: 0.25\nmin_heldout: 5\nepochs: 3\nseed: 4\ngovernance_stage: production\n"
        "canary: {percent: 10, min_requests: 100, max_duration: 2h}\n"
        "hyperparameters: {learning_rate: 0.01}\nchat_min_pairs: 3\n"
    )
    assert policy.triggers.new_labels == 20 and policy.triggers.drift
    assert policy.triggers.schedule_every is not None
    assert policy.triggers.schedule_every.total_seconds() == 12 * 3600
    assert (policy.margin, policy.canary.percent, policy.governance_stage) == (
        0.1,
        10,
        "production",
    )


@pytest.mark.parametrize(
    ("text", "field", "words"),
    [
        ("triggers: {new_labels: 5, sometimes: 1}", "triggers.sometimes", "unknown trigger"),
        ("margin: 1.5", "margin", "less than or equal to 1"),
        ("margin: -0.1", "margin", "greater than or equal to 0"),
        ("alpha: 1", "alpha", "less than 1"),
        ("holdout: 0.9", "holdout", "0.5"),
        ("triggers: {schedule: weekly}", "triggers.schedule", "schedule"),
        ("canary: {percent: 100}", "canary.percent", "99"),
        ("epochs: 99999999999999999999999", "policy", "not valid YAML"),
        ("surprise: 1", "surprise", "Extra inputs"),
        ("[1, 2]", "policy", "mapping"),
        ("governance_stage: anywhere", "governance_stage", "staging"),
    ],
)
def test_a_bad_policy_is_refused_naming_its_key(text: str, field: str, words: str) -> None:
    with pytest.raises(InvalidInput, match=words) as caught:
        PersonaPolicy.parse(text)
    assert caught.value.details["field"] == field


def test_the_label_an_interaction_teaches() -> None:
    base = {"id": "1", "message": "hi", "response": "greeting", "version": 1}
    assert (
        InteractionIn.model_validate({**base, "feedback": {"thumbs": "up"}}).label() == "greeting"
    )
    assert InteractionIn.model_validate({**base, "feedback": {"thumbs": "down"}}).label() is None
    corrected = {**base, "feedback": {"thumbs": "down", "correction": "farewell"}}
    assert InteractionIn.model_validate(corrected).label() == "farewell"
    labelled = {**base, "feedback": {"correction": "farewell", "label": "weather"}}
    assert InteractionIn.model_validate(labelled).label() == "weather"
