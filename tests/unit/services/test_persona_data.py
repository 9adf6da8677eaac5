"""What interactions become: scrubbed drafts, a stable held-out side, preference pairs,
and the cycle's McNemar test (scipy's exact binomial test on the discordant pairs)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from modelhub.domain.personas import Feedback, Interaction, InteractionIn
from modelhub.services.persona_cycle import mcnemar
from modelhub.services.persona_data import held_out, preference_rows, scrub


def test_personal_data_is_blanked_and_counted_before_storage() -> None:
    items = [
        InteractionIn(
            id="1",
            message="write to ada@example.com or call +44 20 7946 0958",
            response="ok",
            version=1,
            feedback=Feedback(correction="card 4111 1111 1111 1111 please"),
        )
    ]
    done = scrub("ada", "intents", items, 0.2)
    draft = done.drafts[0]
    assert draft.message == "write to [EMAIL] or call [PHONE]"
    assert draft.feedback["correction"] == "card [PAYMENT_CARD] please"
    assert draft.label == "card [PAYMENT_CARD] please"
    assert done.kinds == {"email": 1, "phone": 1, "payment_card": 1} and draft.scrubbed == 3
    assert "example.com" not in repr(done)


def test_the_held_out_side_is_stable_and_near_its_fraction() -> None:
    ids = [f"interaction-{i}" for i in range(2000)]
    sides = [held_out("ada", i, 0.2) for i in ids]
    assert sides == [held_out("ada", i, 0.2) for i in ids]
    assert 0.17 < sum(sides) / len(sides) < 0.23  # 2000 draws: sd 0.009
    assert sides != [held_out("bea", i, 0.2) for i in ids]


def interaction(seq: int, message: str, response: str, **feedback: object) -> Interaction:
    return Interaction(
        seq=seq, id=str(seq), persona="ada", model="chat", version=1, request_id=None,
        message=message, response=response, feedback=Feedback.model_validate(feedback),
        label=None, held_out=False, scrubbed=0, created_at=datetime.now(UTC),
    )  # fmt: skip


def test_preference_pairs_put_the_best_rated_answer_against_the_worst() -> None:
    rows = preference_rows(
        [
            interaction(1, "hi", "hello there!", rating=5),
            interaction(2, "hi", "what", rating=2),
            interaction(3, "hi", "hey", thumbs="down"),
            interaction(4, "bye", "bye", rating=3),  # one answer: no pair
            interaction(5, "sup", "same", rating=3),
            interaction(6, "sup", "same", rating=4),  # the same answer: no pair
        ],
        "chat",
    )
    assert rows == [{"prompt": "hi", "chosen": "hello there!", "rejected": "hey"}]


def test_mcnemar_is_the_exact_one_sided_test_on_the_discordant_pairs() -> None:
    serving = [False] * 6 + [True] * 10 + [True, False]
    candidate = [True] * 6 + [True] * 10 + [False, False]
    wins, losses, p = mcnemar(serving, candidate)
    assert (wins, losses) == (6, 1)
    assert p == pytest.approx(8 / 128)  # P(X >= 6), X ~ Binomial(7, 1/2)
    assert mcnemar([True], [True]) == (0, 0, 1.0)


def test_the_chat_models_run_is_a_preference_pipeline_of_its_pairs() -> None:
    import yaml

    from modelhub.domain.personas import Persona, PersonaPolicy
    from modelhub.services.persona_cycle import chat_spec

    now = datetime.now(UTC)
    persona = Persona(
        name="ada", model="intents", alias="ada", chat_model="chat", owner="alice",
            policy=PersonaPolicy(epochs=2, seed=5, chat_hyperparameters={"steps": 4}),
        created_at=now, updated_at=now,
    )  # fmt: skip
    spec = yaml.safe_load(chat_spec(persona, "persona-ada-pairs", 3, 7))
    assert spec == {
        "name": "persona-ada-chat",
        "type": "reinforcement_learning",
        "trainer": "char_lm_preference",
        "base_model": "chat@7",
        "datasets": [{"name": "persona-ada-pairs", "version": 3}],
        "max_epochs": 2,
        "seed": 5,
        "hyperparameters": {"steps": 4},
        "result_model": {"name": "chat"},
    }


def test_the_regression_check_flags_a_candidate_clearly_worse_on_trusted_rows() -> None:
    from modelhub.services.persona_cycle import regression_check

    serving = [True] * 20
    worse = [False] * 8 + [True] * 12  # 8 serving-only right, none the other way
    flagged = regression_check(serving, worse, tolerance=0.05, alpha=0.05)
    assert flagged.regressed and flagged.serving_only_right == 8
    assert flagged.p_value == pytest.approx(1 / 256)  # P(X >= 8), X ~ Binomial(8, 1/2)
    slightly = [False] + [True] * 19  # one loss: within chance and within tolerance
    assert not regression_check(serving, slightly, tolerance=0.05, alpha=0.05).regressed
    # significant but inside the tolerance: not a regression either
    assert not regression_check(serving, worse, tolerance=0.5, alpha=0.05).regressed
    empty = regression_check([], [], tolerance=0.02, alpha=0.05)
    assert (empty.heldout, empty.regressed, empty.serving_accuracy) == (0, False, None)


def labelled_interaction(seq: int, message: str, label: str) -> Interaction:
    return interaction(seq, message, "").model_copy(update={"model": "intents", "label": label})


def test_contradicting_labels_are_counted_against_earlier_labels_of_the_same_message() -> None:
    from modelhub.services.persona_data import contradictions

    rows = [
        labelled_interaction(1, "hi", "greeting"),
        labelled_interaction(2, "bye", "farewell"),
        labelled_interaction(3, "hi", "farewell"),  # new: contradicts seq 1
        labelled_interaction(4, "bye", "farewell"),  # new: agrees
        labelled_interaction(5, "rain?", "weather"),  # new message: nothing to contradict
    ]
    assert contradictions(rows, "intents", since=2) == 1
    assert contradictions(rows, "intents", since=0) == 0


def test_chat_pairs_hold_out_whole_prompts_and_the_wilcoxon_test_is_one_sided() -> None:
    from modelhub.services.persona_cycle import wilcoxon_greater
    from modelhub.services.persona_data import chat_pairs

    rows = [
        interaction(2 * k + j, f"prompt {k}", f"answer {j}", rating=5 if j else 1)
        for k in range(200)
        for j in (0, 1)
    ]
    train, held = chat_pairs(rows, "chat", "ada", 0.2)
    assert len(train) + len(held) == 200 and 25 < len(held) < 55  # sd 5.7
    assert not {r["prompt"] for r in train} & {r["prompt"] for r in held}
    assert chat_pairs(rows, "chat", "ada", 0.2) == (train, held)
    serving = [0.0] * 8
    assert wilcoxon_greater(serving, [1.0] * 8) == pytest.approx(1 / 256)
    assert wilcoxon_greater(serving, [-1.0] * 8) > 0.99
    assert wilcoxon_greater(serving, serving) == 1.0
