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
        policy=PersonaPolicy(epochs=2, seed=5), created_at=now, updated_at=now,
    )  # fmt: skip
    spec = yaml.safe_load(chat_spec(persona, "persona-ada-pairs", 3))
    assert spec == {
        "name": "persona-ada-chat",
        "type": "reinforcement_learning",
        "trainer": "char_lm_preference",
        "base_model": "chat@latest",
        "datasets": [{"name": "persona-ada-pairs", "version": 3}],
        "max_epochs": 2,
        "seed": 5,
        "result_model": {"name": "chat"},
    }
