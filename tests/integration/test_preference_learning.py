"""`type: reinforcement_learning` end to end on a real server: a char LM learns what a
rater prefers from its own generated responses.

A tiny char LM is pre-trained through the scheduler; its registered version, loaded
into the char LM serving runtime, answers training prompts; a fixed simulated rater
scores each response by how many times it says "a"; the best and worst response to a
prompt become a (chosen, rejected) pair; a reinforcement_learning pipeline (DPO)
trains the next version from those pairs. On held-out prompts, never trained on, the
new version's responses, sampled with the same seeds, earn a clearly higher mean
reward than the starting version's. Everything random is seeded: the test is
deterministic (no false alarms to state).
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch

from modelhub.client.http import Client
from modelhub.domain.optimisation import Target
from modelhub.errors import InvalidInput
from modelhub.samples import write_mlp_safetensors
from modelhub.services.optimisation import OptimiseRequest
from modelhub.services.registry import RegisterRequest
from modelhub.serving.runtimes import load_runtime
from tests.integration.conftest import ServerProcess
from tests.integration.governance_data import train

WORDS = [
    "the",
    "cat",
    "sat",
    "on",
    "a",
    "mat",
    "and",
    "we",
    "go",
    "to",
    "bed",
    "so",
    "my",
    "dog",
    "ran",
    "far",
    "but",
    "you",
    "sit",
    "by",
    "the",
    "door",
]
TRAIN_PROMPTS = ["the ", "we ", "my ", "so ", "you ", "but ", "and ", "on "]
HELD_OUT_PROMPTS = ["dog ", "cat ", "sit ", "bed "]  # never in a preference pair
SAMPLES = 8
HELD_OUT_SAMPLES = 16
TOKENS = 20
SMALL = "{context_length: 32, d_model: 32, n_heads: 4, batch_size: 32, learning_rate: 0.01}"


def reward(response: str) -> int:
    """The simulated rater: how often the response says "a"."""
    return response.count("a")


def generate(folder: Path, prompts: list[str], seeds: range) -> dict[str, list[str]]:
    """Each prompt's responses, one per seed, from the char LM serving runtime."""
    runtime = load_runtime(folder)
    rows = np.empty(len(prompts), dtype=object)
    rows[:] = prompts
    out: dict[str, list[str]] = {p: [] for p in prompts}
    try:
        for seed in seeds:
            texts = runtime.infer(
                {"text": rows}, {"max_tokens": TOKENS, "temperature": 1.0, "seed": seed}
            )["text"]
            for prompt, text in zip(prompts, texts.tolist(), strict=True):
                out[prompt].append(text)
    finally:
        runtime.unload()
    return out


def mean_reward(folder: Path) -> float:
    responses = generate(folder, HELD_OUT_PROMPTS, range(1000, 1000 + HELD_OUT_SAMPLES))
    scores = [reward(r) for texts in responses.values() for r in texts]
    return sum(scores) / len(scores)


@pytest.fixture(autouse=True, scope="module")
def one_thread() -> Iterator[None]:
    """A tiny model generates fastest on one thread, and the test machine is shared."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@dataclass
class Learned:
    client: Client
    run_id: int
    before: Path
    after: Path
    pairs: int


@pytest.fixture(scope="module")
def learned(
    shared_server: ServerProcess, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Learned]:
    root = tmp_path_factory.mktemp("preference")
    rng = random.Random(0)
    lines = [" ".join(rng.choice(WORDS) for _ in range(8)) + "." for _ in range(300)]
    corpus = root / "corpus.jsonl"
    corpus.write_text("".join(json.dumps({"text": line}) + "\n" for line in lines))
    with Client(shared_server.url, token=shared_server.token) as client:
        client.register_dataset(corpus, "rl-corpus")
        train(
            client,
            "name: rl-lm\ntype: pre_training\ntrainer: char_lm\ndatasets: [rl-corpus]\n"
            f"hyperparameters: {SMALL[:-1]}, steps: 100}}\nresult_model: {{name: rl-lm}}\n",
        )
        before = root / "v1"
        client.download("rl-lm@1", before)
        rows = []
        for prompt, texts in generate(before, TRAIN_PROMPTS, range(SAMPLES)).items():
            ranked = sorted(texts, key=reward)  # best of the top half against worst of the rest
            for best, worst in zip(reversed(ranked[SAMPLES // 2 :]), ranked, strict=False):
                if reward(best) > reward(worst):
                    rows.append({"prompt": prompt, "chosen": best, "rejected": worst})
        preferences = root / "preferences.jsonl"
        preferences.write_text("".join(json.dumps(row) + "\n" for row in rows))
        client.register_dataset(preferences, "rl-preferences")
        run_id = train(
            client,
            "name: rl-dpo\ntype: reinforcement_learning\ntrainer: char_lm_preference\n"
            "base_model: rl-lm@1\ndatasets: [rl-preferences]\nvalidation_split: 0.25\n"
            "hyperparameters: {beta: 0.1, learning_rate: 0.003, steps: 30, batch_size: 8, "
            "log_every: 5, eval_every: 10}\ncheckpoint: {every_steps: 10}\n"
            "result_model: {name: rl-lm}\n",
        )
        after = root / "v2"
        client.download("rl-lm@2", after)
        yield Learned(client, run_id, before, after, len(rows))


def test_the_new_version_earns_a_clearly_higher_reward_on_held_out_prompts(
    learned: Learned,
) -> None:
    assert learned.pairs >= 16
    before, after = mean_reward(learned.before), mean_reward(learned.after)
    assert after > before + 1.0, (before, after)


def test_the_version_records_its_base_and_dataset_and_the_run_its_metrics(
    learned: Learned,
) -> None:
    client = learned.client
    version = client.get("rl-lm@2")
    dataset = client.get_dataset("rl-preferences")
    assert version.lineage.base_version == "rl-lm@1"
    assert version.lineage.datasets == [dataset.digest]
    assert version.lineage.source_run == str(learned.run_id)
    assert version.architecture == "char_lm" and version.type.value == "language_model"
    names = {point.name for point in client.run_metrics(learned.run_id)}
    assert {"loss", "reward_margin", "reward_accuracy", "kl", "val_reward_accuracy"} <= names
    assert version.metrics["reward_accuracy"] > 0.5 and version.metrics["kl"] > 0
    steps = [c.step for c in client.run_checkpoints(learned.run_id)]
    assert 30 in steps and steps == sorted(steps)
    run = client.get_run(learned.run_id)
    assert run.progress == 100


def test_a_base_that_is_not_a_char_lm_is_refused_when_the_pipeline_is_created(
    learned: Learned, tmp_path: Path
) -> None:
    client = learned.client
    weights = write_mlp_safetensors(tmp_path / "m.safetensors")
    client.register(RegisterRequest(name="rl-mlp", type="classification"), weights)
    spec = (
        "name: rl-wrong-base\ntype: reinforcement_learning\ntrainer: char_lm_preference\n"
        "base_model: rl-mlp@1\ndatasets: [rl-preferences]\nresult_model: {name: rl-lm}\n"
    )
    with pytest.raises(InvalidInput) as caught:
        client.create_pipeline(spec)
    assert caught.value.details["errors"][0]["field"] == "base_model"
    assert "rl-mlp@1 is not a char_lm model" in caught.value.message
    assert "rl-wrong-base" not in {p.name for p in client.list_pipelines()}


def test_optimising_the_version_says_its_run_read_pairs_not_a_corpus(learned: Learned) -> None:
    with pytest.raises(InvalidInput, match="its run trained char_lm_preference, not char_lm"):
        learned.client.optimize(OptimiseRequest(ref="rl-lm@2", to=Target.ONNX))
