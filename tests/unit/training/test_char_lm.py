from __future__ import annotations

import json
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch

from modelhub.errors import InvalidInput, TrainingDiverged
from modelhub.training.context import LocalContext
from modelhub.training.trainers import char_lm

CORPUS = "the quick brown fox jumps over the lazy dog. hello world. " * 40
SMALL = {"context_length": 32, "d_model": 32, "n_heads": 4, "batch_size": 16, "learning_rate": 1e-2}


def corpus_file(folder: Path, text: str = CORPUS, name: str = "corpus.txt") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(text)
    return path


def context(run_dir: Path, data: Path, **hyperparameters: Any) -> LocalContext:
    return LocalContext(
        run_dir, hyperparameters={**SMALL, **hyperparameters}, datasets={"corpus": data}
    )


def logged(ctx: LocalContext, name: str) -> list[tuple[int, float]]:
    return [(m["step"], m["value"]) for m in ctx.metrics() if m["name"] == name]


@pytest.fixture(autouse=True, scope="module")
def one_thread() -> Iterator[None]:
    """Tiny models train fastest on one thread, and the test machine is shared."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory: pytest.TempPathFactory) -> LocalContext:
    root = tmp_path_factory.mktemp("pretrain")
    ctx = context(root / "run", corpus_file(root), steps=150, log_every=1, checkpoint_every=150)
    char_lm.train(ctx)
    return ctx


def test_pre_training_learns_the_corpus(pretrained: LocalContext) -> None:
    config = json.loads((pretrained.output_dir / "config.json").read_text())
    assert config["trainer"] == "char_lm"
    assert set(config["vocab"]) == set(CORPUS)
    uniform = math.log(len(config["vocab"]) + 1)
    val_losses = logged(pretrained, "val_loss")
    assert val_losses[-1][1] < 0.2 * uniform
    assert {"loss", "learning_rate", "samples_per_s"} <= {m["name"] for m in pretrained.metrics()}
    model = char_lm.load(pretrained.output_dir)
    assert "world" in model.generate("hello", max_new_tokens=20, temperature=0)


def test_load_matches_the_trained_model(pretrained: LocalContext) -> None:
    checkpoint = pretrained.latest_checkpoint()
    assert checkpoint is not None and checkpoint[0] == 150
    config = char_lm.CharLMConfig.from_json(checkpoint[1]["config"])
    in_memory = char_lm.CharTransformer(config)
    in_memory.load_state_dict(checkpoint[1]["model"])
    trained, loaded = char_lm.CharLM(in_memory), char_lm.load(pretrained.output_dir)
    text = "over the lazy dog. hello"
    assert torch.equal(trained.logits(text), loaded.logits(text))
    assert trained.generate("the", 30, temperature=0) == loaded.generate("the", 30, temperature=0)
    sampled = loaded.generate("the", 30, temperature=1.0, top_k=3, seed=7)
    assert sampled == loaded.generate("the", 30, temperature=1.0, top_k=3, seed=7)
    assert len(sampled) == 30


def test_fine_tuning_starts_from_the_base_weights(pretrained: LocalContext, tmp_path: Path) -> None:
    data = corpus_file(tmp_path, CORPUS + "ZZZ new characters")
    fresh = context(tmp_path / "fresh", data, steps=1, log_every=1)
    char_lm.train(fresh)
    tuned = LocalContext(
        tmp_path / "tuned",
        hyperparameters={"steps": 3, "log_every": 1, "batch_size": 16},
        datasets={"corpus": data},
        base_model=pretrained.output_dir,
    )
    char_lm.train(tuned)
    assert logged(tuned, "loss")[0][1] < 0.25 * logged(fresh, "loss")[0][1]
    base_config = json.loads((pretrained.output_dir / "config.json").read_text())
    assert json.loads((tuned.output_dir / "config.json").read_text()) == base_config


class StopAfter(LocalContext):
    """Asks the trainer to stop once `stop_at` has been logged."""

    stop_at = 0

    def log(self, name: str, value: float, step: int) -> None:
        super().log(name, value, step)
        if step == self.stop_at:
            self.stop_requested = True


def test_resume_continues_at_the_saved_step(tmp_path: Path) -> None:
    data = corpus_file(tmp_path)
    hps = {**SMALL, "steps": 30, "log_every": 1, "checkpoint_every": 10}
    interrupted = StopAfter(tmp_path / "run", hyperparameters=hps, datasets={"c": data})
    interrupted.stop_at = 13
    first = char_lm.train(interrupted)
    assert first.metrics["stopped"] == 1.0 and first.metrics["steps"] == 13
    resumed = LocalContext(tmp_path / "run", hyperparameters=hps, datasets={"c": data})
    assert resumed.latest_checkpoint() is not None
    result = char_lm.train(resumed)
    assert [step for step, _ in logged(resumed, "loss")] == list(range(1, 31))
    assert json.loads((resumed.run_dir / "progress.json").read_text())["step"] == 30

    straight = LocalContext(tmp_path / "straight", hyperparameters=hps, datasets={"c": data})
    assert char_lm.train(straight).metrics["loss"] == pytest.approx(result.metrics["loss"])


def test_stop_before_the_first_step(tmp_path: Path) -> None:
    ctx = context(tmp_path / "run", corpus_file(tmp_path), steps=10)
    ctx.stop_requested = True
    result = char_lm.train(ctx)
    assert result.metrics["steps"] == 0 and result.metrics["stopped"] == 1.0
    assert ctx.latest_checkpoint() is None
    assert (result.output_dir / "model.safetensors").exists()


def test_jsonl_corpus(tmp_path: Path) -> None:
    rows = "".join(json.dumps({"text": "hello world. " * 5, "id": i}) + "\n" for i in range(4))
    ctx = context(tmp_path / "run", corpus_file(tmp_path, rows, "corpus.jsonl"), steps=2)
    char_lm.train(ctx)
    vocab = json.loads((ctx.output_dir / "config.json").read_text())["vocab"]
    assert set(vocab) == set("hello world.\n")


def test_divergence_names_the_step(tmp_path: Path) -> None:
    ctx = context(tmp_path / "run", corpus_file(tmp_path), steps=5, learning_rate=1e30)
    with pytest.raises(TrainingDiverged) as caught:
        char_lm.train(ctx)
    assert caught.value.code == "training_diverged"
    assert caught.value.details["step"] > 1
    assert f"step {caught.value.details['step']}" in caught.value.message


@pytest.mark.parametrize(
    ("text", "name", "hps", "message"),
    [
        ("", "c.txt", {}, "empty"),
        ("too short", "c.txt", {}, "fewer than context_length"),
        ('{"body": "x"}\n', "c.jsonl", {}, '"text"'),
        ("not json\n", "c.jsonl", {}, "not JSON"),
        (CORPUS, "c.txt", {"d_model": 30, "n_heads": 4}, "multiple of n_heads"),
    ],
)
def test_bad_input(tmp_path: Path, text: str, name: str, hps: dict[str, Any], message: str) -> None:
    ctx = context(tmp_path / "run", corpus_file(tmp_path, text, name), steps=1, **hps)
    with pytest.raises(InvalidInput, match=message):
        char_lm.train(ctx)


def test_epochs_set_the_step_count(tmp_path: Path) -> None:
    ctx = context(tmp_path / "run", corpus_file(tmp_path), epochs=2)
    result = char_lm.train(ctx)
    train_chars = len(CORPUS) - int(len(CORPUS) * ctx.validation_split)
    per_epoch = train_chars // (SMALL["batch_size"] * SMALL["context_length"])
    assert result.metrics["steps"] == 2 * per_epoch
    assert json.loads((ctx.run_dir / "progress.json").read_text())["epoch"] == 2
