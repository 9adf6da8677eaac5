"""The char LM preference trainer: its DPO loss, its rows, and runs of it on a tiny model.

The loss is checked against its definition with torch directly; the trainer runs on a
char LM pre-trained for a few steps here, with pairs whose chosen response holds more
of one character.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch

from modelhub.errors import InvalidInput
from modelhub.training.context import LocalContext
from modelhub.training.trainers import char_lm, char_lm_preference
from modelhub.training.trainers.char_lm_preference import dpo_loss, encode_pairs
from modelhub.training.trainers.preference_data import Pair, read_pairs

CORPUS = "the cat sat on a mat. we go to bed so my dog ran far. " * 30
SMALL = {"context_length": 32, "d_model": 32, "n_heads": 4, "batch_size": 16, "learning_rate": 1e-2}
PAIRS = [
    {"prompt": p, "chosen": "a mat a cat", "rejected": "we go to bed"}
    for p in ("the ", "so ", "my ", "we ", "on ", "to ")
] * 3


@pytest.fixture(autouse=True, scope="module")
def one_thread() -> Iterator[None]:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("base")
    (root / "corpus.txt").write_text(CORPUS)
    ctx = LocalContext(
        root / "run",
        hyperparameters={**SMALL, "steps": 40, "log_every": 10},
        datasets={"c": root / "corpus.txt"},
    )
    char_lm.train(ctx)
    return ctx.output_dir


def jsonl(path: Path, rows: list[Any]) -> Path:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))
    return path


def context(run_dir: Path, data: Path, base: Path | None, **hps: Any) -> LocalContext:
    return LocalContext(
        run_dir,
        hyperparameters={"steps": 12, "log_every": 3, "eval_every": 6, **hps},
        datasets={"p": data},
        base_model=base,
    )


# -- the loss -----------------------------------------------------------------------


def test_loss_is_log_two_when_the_policy_is_the_reference() -> None:
    logps = torch.tensor([-12.0, -3.5, -40.0])
    loss, margin = dpo_loss(logps, logps - 2, logps, logps - 2, beta=0.5)
    assert float(loss) == pytest.approx(math.log(2))
    assert torch.equal(margin, torch.zeros(3))


def test_loss_matches_its_definition_and_beta_scales_the_margin() -> None:
    gen = torch.Generator().manual_seed(0)
    pc, pr, rc, rr = (torch.randn(8, generator=gen) * 5 for _ in range(4))
    for beta in (0.05, 0.1, 1.0):
        loss, margin = dpo_loss(pc, pr, rc, rr, beta)
        expected = beta * ((pc - rc) - (pr - rr))
        assert torch.allclose(margin, expected)
        assert float(loss) == pytest.approx(float(-torch.log(torch.sigmoid(expected)).mean()))
    small, _ = dpo_loss(pc, pr, rc, rr, 0.1)
    _, twice = dpo_loss(pc, pr, rc, rr, 0.2)
    assert torch.allclose(twice, 2 * dpo_loss(pc, pr, rc, rr, 0.1)[1])
    # preferring the chosen response more than the reference does lowers the loss
    lower, _ = dpo_loss(pc + 1, pr, rc, rr, 0.1)
    assert float(lower) < float(small)


def test_gradient_steps_on_the_loss_lower_it(base: Path) -> None:
    model = char_lm.load(base).model.train()
    reference = char_lm.load(base).model
    pairs = encode_pairs(model.config, [Pair(**row) for row in PAIRS[:6]])
    ids, mask = pairs.take(torch.arange(len(pairs)))
    with torch.no_grad():
        ref = char_lm_preference.sequence_logps(reference, ids, mask).view(-1, 2)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05)
    losses = []
    for _ in range(5):
        logps = char_lm_preference.sequence_logps(model, ids, mask).view(-1, 2)
        loss, _ = dpo_loss(logps[:, 0], logps[:, 1], ref[:, 0], ref[:, 1], 0.1)
        optimizer.zero_grad()
        loss.backward()  # type: ignore[no-untyped-call]
        optimizer.step()
        losses.append(float(loss.detach()))
    assert losses[0] == pytest.approx(math.log(2), abs=1e-5)
    assert losses[-1] < losses[0] - 0.01
    assert losses == sorted(losses, reverse=True)


def test_encoding_scores_only_the_response_and_cuts_long_ones() -> None:
    config = char_lm.CharLMConfig(vocab="abc ", context_length=8, d_model=8, n_heads=2)
    pairs = encode_pairs(config, [Pair("ab", "cc", "a"), Pair("", "abcabcabcabc", "b")])
    assert pairs.ids.shape == (2, 2, 9) and pairs.mask.shape == (2, 2, 8)
    assert pairs.mask[0, 0].tolist() == [0, 1, 1, 0, 0, 0, 0, 0]  # "ab" predicts "c", "c"
    assert pairs.mask[0, 1].tolist() == [0, 1, 0, 0, 0, 0, 0, 0]
    # 12 characters cut to 8; the empty prompt is the unknown token, as generate starts
    assert pairs.ids[1, 0, 0] == 0 and pairs.mask[1, 0].sum() == 8
    assert pairs.truncated == 1


# -- rows ------------------------------------------------------------------------------


def test_rated_responses_pair_best_with_worst_per_prompt(tmp_path: Path) -> None:
    rows = [
        {"prompt": "hi", "response": "r1", "rating": 1},
        {"prompt": "hi", "response": "r5", "rating": 5, "persona": "ada"},
        {"prompt": "hi", "response": "r3", "rating": 3},
        {"prompt": "hi", "response": "r4", "rating": 4},
        {"prompt": "yo", "response": "same", "rating": 2},
        {"prompt": "yo", "response": "tie", "rating": 2},
        {"prompt": "x", "chosen": "good", "rejected": "bad"},
    ]
    pairs = read_pairs(jsonl(tmp_path / "r.jsonl", rows))
    assert pairs == [Pair("x", "good", "bad"), Pair("hi", "r5", "r1"), Pair("hi", "r4", "r3")]


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ("not json", "line 2: not JSON"),
        ('["a list"]', "line 2: a list, not a JSON object"),
        ("[" * 100_000 + "]" * 100_000, "line 2: JSON nested too deeply"),
        ({"prompt": "p", "chosen": "same", "rejected": "same"}, "the same text"),
        ({"prompt": "p", "chosen": "", "rejected": "x"}, '"chosen" is empty'),
        ({"prompt": "p", "chosen": 3, "rejected": "x"}, '"chosen" must be text, it is a int'),
        ({"chosen": "a", "rejected": "x"}, '"prompt" must be text, it is missing'),
        ({"prompt": "p", "response": "a", "rating": True}, '"rating" must be a number'),
        ({"prompt": "p", "response": "a", "rating": "5"}, '"rating" must be a number'),
        ({"prompt": "p", "text": "a"}, 'needs "prompt", "chosen" and "rejected"'),
    ],
)
def test_bad_rows_are_named_by_line(tmp_path: Path, row: Any, message: str) -> None:
    data = jsonl(tmp_path / "bad.jsonl", [PAIRS[0], row])
    with pytest.raises(InvalidInput, match="bad preference rows") as caught:
        read_pairs(data)
    assert message in caught.value.message


@pytest.mark.parametrize(
    ("rows", "name", "message"),
    [
        ([], "empty.jsonl", "holds no preference rows"),
        (
            [{"prompt": "p", "response": "a", "rating": 1}] * 2,
            "ties.jsonl",
            "no prompt has two responses with different ratings",
        ),
        ([PAIRS[0]], "pairs.csv", "a preference dataset is JSONL"),
    ],
)
def test_datasets_with_nothing_to_prefer_are_refused(
    tmp_path: Path, rows: list[Any], name: str, message: str
) -> None:
    with pytest.raises(InvalidInput, match=message):
        read_pairs(jsonl(tmp_path / name, rows))


# -- runs ------------------------------------------------------------------------------


def count_a(model: char_lm.CharLM, prompts: list[str]) -> float:
    texts = [model.generate(p, 12, temperature=1.0, seed=s) for p in prompts for s in range(8)]
    return sum(t.count("a") for t in texts) / len(texts)


def test_a_run_learns_the_preference_and_reports_its_metrics(base: Path, tmp_path: Path) -> None:
    data = jsonl(tmp_path / "p.jsonl", PAIRS)
    ctx = context(tmp_path / "run", data, base, beta=0.1, learning_rate=3e-3)
    result = char_lm_preference.train(ctx)
    names = {m["name"] for m in ctx.metrics()}
    assert {"loss", "reward_margin", "reward_accuracy", "kl", "val_loss"} <= names
    assert {"val_reward_margin", "val_reward_accuracy", "samples_per_s"} <= names
    first_loss = next(m["value"] for m in ctx.metrics() if m["name"] == "loss")
    assert result.metrics["loss"] < first_loss
    assert result.metrics["reward_accuracy"] == 1.0 and result.metrics["kl"] > 0
    assert result.metrics["pairs"] == len(PAIRS) - int(len(PAIRS) * 0.2)
    # the output is a char_lm folder: the same config, loadable as the base is
    assert json.loads((ctx.output_dir / "config.json").read_text()) == json.loads(
        (base / "config.json").read_text()
    )
    tuned = char_lm.load(ctx.output_dir)
    assert count_a(tuned, ["the ", "we "]) > count_a(char_lm.load(base), ["the ", "we "])


def test_a_larger_beta_keeps_the_policy_closer_to_the_base(base: Path, tmp_path: Path) -> None:
    data = jsonl(tmp_path / "p.jsonl", PAIRS)
    kls = []
    for beta in (0.05, 2.0):
        ctx = context(tmp_path / f"b{beta}", data, base, beta=beta, learning_rate=3e-3)
        kls.append(char_lm_preference.train(ctx).metrics["kl"])
    assert kls[1] < kls[0]


class StopAfter(LocalContext):
    stop_at = 0

    def log(self, name: str, value: float, step: int) -> None:
        super().log(name, value, step)
        if step == self.stop_at:
            self.stop_requested = True


def test_a_stopped_run_resumes_where_it_stopped(base: Path, tmp_path: Path) -> None:
    data = jsonl(tmp_path / "p.jsonl", PAIRS)
    hps = {"steps": 12, "log_every": 1, "eval_every": 6, "checkpoint_every": 4}
    stopped = StopAfter(tmp_path / "run", hyperparameters=hps, datasets={"p": data})
    stopped.base_model = base
    stopped.stop_at = 5
    first = char_lm_preference.train(stopped)
    assert first.metrics["stopped"] == 1.0 and first.metrics["steps"] == 5
    resumed = context(tmp_path / "run", data, base, **hps)
    result = char_lm_preference.train(resumed)
    steps = [m["step"] for m in resumed.metrics() if m["name"] == "loss"]
    assert steps == list(range(1, 13))
    straight = char_lm_preference.train(context(tmp_path / "straight", data, base, **hps))
    assert result.metrics["loss"] == pytest.approx(straight.metrics["loss"], rel=1e-4)


@pytest.mark.parametrize(
    ("hps", "message"),
    [
        ({"beta": 0}, "hyperparameters.beta: Input should be greater than 0"),
        ({"beta": 11.0}, "hyperparameters.beta: Input should be less than or equal to 10"),
        ({"temperature": 1.0}, "hyperparameters.temperature: unknown hyperparameter"),
        ({"batch_size": 0}, "hyperparameters.batch_size"),
    ],
)
def test_bad_hyperparameters(base: Path, tmp_path: Path, hps: dict[str, Any], message: str) -> None:
    data = jsonl(tmp_path / "p.jsonl", PAIRS)
    with pytest.raises(InvalidInput, match=message):
        char_lm_preference.train(context(tmp_path / "run", data, base, **hps))


def test_a_base_that_is_not_a_char_lm_is_refused(tmp_path: Path) -> None:
    data = jsonl(tmp_path / "p.jsonl", PAIRS)
    with pytest.raises(InvalidInput, match="set base_model"):
        char_lm_preference.train(context(tmp_path / "none", data, None))
    other = tmp_path / "tabular"
    other.mkdir()
    (other / "config.json").write_text(json.dumps({"trainer": "tabular_classifier"}))
    with pytest.raises(InvalidInput, match=r"not a char_lm model .*'tabular_classifier'"):
        char_lm_preference.train(context(tmp_path / "tab", data, other))


def test_pair_margins_are_the_log_likelihood_of_chosen_minus_rejected(base: Path) -> None:
    from modelhub.networks.char_lm import load
    from modelhub.training.trainers.char_lm_preference import pair_margins, sequence_logps

    model = load(base)
    pairs = [Pair("the ", "cat sat", "zzzq"), Pair("", "a mat", "a mat")]
    margins = pair_margins(base, pairs)
    encoded = encode_pairs(model.config, pairs)
    ids, mask = encoded.take(torch.arange(2))
    logps = sequence_logps(model.model, ids, mask).view(-1, 2)
    assert margins == pytest.approx((logps[:, 0] - logps[:, 1]).tolist())
    assert margins[0] > 0 and margins[1] == pytest.approx(0.0)  # the corpus's words win
    assert pair_margins(base, []) == []
