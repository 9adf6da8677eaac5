"""The text classifier trains on a tiny intents set, reloads offline and rejects bad data."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from modelhub.errors import InvalidInput, TrainingDiverged
from modelhub.training.context import LocalContext
from modelhub.training.trainers import text_classifier

INTENTS = {
    "greeting": [
        "hello there",
        "hi",
        "good morning",
        "hey, how are you?",
        "good evening to you",
        "hiya",
        "greetings, friend",
        "howdy partner",
        "nice to meet you",
        "hello everyone",
        "hey there, what's up",
        "good afternoon",
        "hi, how's it going",
        "yo, hello",
        "morning! how are things",
        "hello, glad to see you",
        "hi again",
        "hey buddy",
        "salutations",
        "well hello",
    ],
    "farewell": [
        "goodbye",
        "bye",
        "see you later",
        "take care",
        "catch you tomorrow",
        "farewell, my friend",
        "have a good night",
        "talk to you soon",
        "i'm leaving now",
        "see ya",
        "until next time",
        "bye bye",
        "so long",
        "i have to go now",
        "good night, sleep well",
        "later!",
        "have a nice day, bye",
        "see you around",
        "cheerio",
        "i'm off, goodbye",
    ],
    "weather": [
        "what's the weather like today",
        "will it rain tomorrow",
        "is it sunny outside",
        "how cold is it",
        "what is the temperature",
        "do i need an umbrella",
        "is there a storm coming",
        "forecast for the weekend",
        "will it snow tonight",
        "how hot will it be",
        "is it windy out there",
        "any chance of showers",
        "what's the humidity",
        "is it going to be cloudy",
        "weather forecast please",
        "how warm is it this afternoon",
        "will there be thunder",
        "is it freezing outside",
        "tell me the weather in paris",
        "should i wear a jacket, is it chilly",
    ],
}
HELD_OUT = ["hey, good to see you", "bye for now", "is it raining in london"]


def write_rows(path: Path, rows: list[object]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def intents_file(path: Path) -> Path:
    rows = [{"text": t, "label": label} for label, texts in INTENTS.items() for t in texts]
    return write_rows(path, rows)


def flat(rows: list[list[float]]) -> list[float]:
    return [value for row in rows for value in row]


def context(tmp_path: Path, dataset: Path, **hp: object) -> LocalContext:
    return LocalContext(run_dir=tmp_path / "run", hyperparameters=dict(hp), datasets={"d": dataset})


def test_head_mode_learns_intents_and_reloads(tmp_path: Path) -> None:
    ctx = context(tmp_path, intents_file(tmp_path / "intents.jsonl"))
    result, model = text_classifier.fit(ctx)

    assert result.metrics["val_accuracy"] >= 0.8
    config = json.loads((ctx.output_dir / "config.json").read_text())
    assert config["classes"] == ["farewell", "greeting", "weather"]
    assert config["embedding_dim"] == 384 and config["base"] == "minilm"
    assert not (ctx.output_dir / "encoder").exists()
    names = {m["name"] for m in ctx.metrics()}
    assert {"loss", "accuracy", "learning_rate", "samples_per_s", "val_loss"} <= names

    loaded = text_classifier.load(ctx.output_dir)
    assert loaded.predict(HELD_OUT) == model.predict(HELD_OUT)
    assert loaded.predict(HELD_OUT) == ["greeting", "farewell", "weather"]
    assert flat(loaded.predict_proba(HELD_OUT)) == pytest.approx(
        flat(model.predict_proba(HELD_OUT))
    )


def test_resume_continues_from_the_last_epoch(tmp_path: Path) -> None:
    ctx = context(tmp_path, intents_file(tmp_path / "intents.jsonl"), epochs=2)
    text_classifier.train(ctx)
    again = context(tmp_path, ctx.dataset(), epochs=3)
    result = text_classifier.train(again)
    per_epoch = -(-48 // 16)
    assert result.metrics["steps"] == 3 * per_epoch
    val_steps = [m["step"] for m in again.metrics() if m["name"] == "val_loss"]
    assert val_steps == [per_epoch, 2 * per_epoch, 3 * per_epoch]


def test_last_layers_trains_and_reloads(tmp_path: Path) -> None:
    rows = [{"text": t, "label": label} for label, texts in INTENTS.items() for t in texts[:4]]
    ctx = context(
        tmp_path,
        write_rows(tmp_path / "few.jsonl", rows),
        tune="last_layers",
        epochs=1,
        batch_size=4,
    )
    result, model = text_classifier.fit(ctx)
    assert result.metrics["steps"] > 0

    from safetensors.torch import load_file

    saved = load_file(str(ctx.output_dir / "model.safetensors"))
    assert any(name.startswith("encoder.") for name in saved)
    assert json.loads((ctx.output_dir / "config.json").read_text())["tune"] == "last_layers"
    loaded = text_classifier.load(ctx.output_dir)
    assert loaded.predict(HELD_OUT) == model.predict(HELD_OUT)
    expected = flat(model.predict_proba(HELD_OUT))
    assert flat(loaded.predict_proba(HELD_OUT)) == pytest.approx(expected, abs=1e-5)


def test_should_stop_ends_early_with_a_checkpoint(tmp_path: Path) -> None:
    ctx = context(tmp_path, intents_file(tmp_path / "intents.jsonl"))
    (ctx.run_dir / "STOP").write_text("")
    result = text_classifier.train(ctx)
    assert result.metrics["stopped"] == 1.0
    assert result.metrics["steps"] == 0
    assert ctx.latest_checkpoint() is not None


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        ([], "empty"),
        ([{"text": "hi", "label": "a"}, {"text": "bye"}], "line 2"),
        ([{"label": "a"}], "line 1"),
        ([{"text": "hi", "label": "a"}, {"text": "hello", "label": "a"}], "2 classes"),
    ],
)
def test_bad_datasets_are_refused(tmp_path: Path, rows: list[object], message: str) -> None:
    ctx = context(tmp_path, write_rows(tmp_path / "bad.jsonl", rows))
    with pytest.raises(InvalidInput, match=message):
        text_classifier.train(ctx)


def test_unknown_tune_is_refused(tmp_path: Path) -> None:
    ctx = context(tmp_path, intents_file(tmp_path / "intents.jsonl"), tune="everything")
    with pytest.raises(InvalidInput, match="tune"):
        text_classifier.train(ctx)


def test_a_base_that_is_not_a_sentence_transformers_folder_is_refused(tmp_path: Path) -> None:
    ctx = context(tmp_path, intents_file(tmp_path / "intents.jsonl"))
    ctx.base_model = tmp_path
    with pytest.raises(InvalidInput, match="no modules"):
        text_classifier.train(ctx)


def test_a_non_finite_loss_fails_the_run_naming_the_step(tmp_path: Path) -> None:
    ctx = context(
        tmp_path, intents_file(tmp_path / "intents.jsonl"), hidden=8, learning_rate=1e30, epochs=5
    )
    with pytest.raises(TrainingDiverged) as caught:
        text_classifier.train(ctx)
    assert f"step {caught.value.details['step']}" in caught.value.message
    steps = [c.name for c in ctx.checkpoint_dir.glob("step-*.pt")]
    assert all(int(name[5:14]) < caught.value.details["step"] for name in steps)


def test_a_mid_epoch_checkpoint_resumes_at_its_batch(tmp_path: Path) -> None:
    data = intents_file(tmp_path / "intents.jsonl")
    hps = {"epochs": 1, "batch_size": 4, "checkpoint_every": 5}
    straight = text_classifier.train(context(tmp_path / "straight", data, **hps))
    ctx = context(tmp_path / "cut", data, **hps)
    text_classifier.train(ctx)
    steps = sorted(int(p.name[5:14]) for p in ctx.checkpoint_dir.glob("step-*.pt"))
    assert steps == [5, 10, 12]  # every 5 steps, and the epoch's end
    for step in steps[1:]:  # as if killed just after step 5's checkpoint
        (ctx.checkpoint_dir / f"step-{step:09d}.pt").unlink()
    resumed = text_classifier.train(context(tmp_path / "cut", data, **hps))
    assert resumed.metrics["steps"] == 12
    assert resumed.metrics["val_loss"] == pytest.approx(straight.metrics["val_loss"], rel=1e-5)
