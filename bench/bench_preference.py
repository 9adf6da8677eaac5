"""Preference training (DPO): steps/s of the char_lm_preference trainer against raw PyTorch
DPO loops on the same network and data, in the same run.

The network is a char LM (context 64, d_model 64, 2 layers, 4 heads, the char_lm
defaults) written as a char_lm output folder; the data are 512 seeded (prompt, chosen,
rejected) rows of 10-30 character prompts and 20-40 character responses. Three ways
train the same steps at batch size 16, beta 0.1, AdamW at 1e-3, gradients clipped at 1:

- modelhub: `char_lm_preference.train(ctx)`, end to end: reading and pairing the JSONL,
  encoding, the reference's log-likelihoods, metric lines every 10 steps, the held-out
  measurement (loss, reward accuracy, KL) at the end, a checkpoint and model.safetensors.
- torch: the textbook loop (as TRL's DPOTrainer does by default): each step runs the
  policy on chosen and rejected and the frozen reference on both under no_grad.
- torch_cached: the same loop keeping each pair's reference log-likelihoods from the
  first batch that holds it, as the trainer does; the same work per step as ours, so
  `ratio_cached` is the trainer's own overhead (data reading, metrics, the final
  measurement, checkpoint and output included).

Both torch loops start from tensors already encoded in memory (the trainer's own
`encode_pairs`) and do nothing but their steps. Runs are interleaved; medians of
`--repeats`.

    python bench/bench_preference.py [--steps 60] [--repeats 5] [--quick]
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchlib import emit, isolate_from_user_env, log, median

PAIRS, BATCH, BETA, LR, SEED = 512, 16, 0.1, 1e-3, 0
ALPHABET = "abcdefghijklmnopqrstuvwxyz .,!?"


def make_data(folder: Path) -> tuple[Path, Path]:
    """A char_lm base folder (seeded random weights) and the preference rows."""
    import torch

    from modelhub.networks.char_lm import CharLMConfig, CharTransformer, write_output

    rng = random.Random(SEED)

    def text(low: int, high: int) -> str:
        return "".join(rng.choice(ALPHABET) for _ in range(rng.randint(low, high)))

    rows = [{"prompt": text(10, 30), "chosen": text(20, 40), "rejected": text(20, 40)}]
    while len(rows) < PAIRS:
        row = {"prompt": text(10, 30), "chosen": text(20, 40), "rejected": text(20, 40)}
        if row["chosen"] != row["rejected"]:
            rows.append(row)
    data = folder / "pairs.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    torch.manual_seed(SEED)
    config = CharLMConfig(vocab=ALPHABET)
    base = folder / "base"
    base.mkdir()
    write_output(base, CharTransformer(config), config)
    return base, data


def run_modelhub(base: Path, data: Path, work: Path, steps: int) -> float:
    from modelhub.training.context import LocalContext
    from modelhub.training.trainers import char_lm_preference

    hps = {
        "beta": BETA,
        "learning_rate": LR,
        "steps": steps,
        "batch_size": BATCH,
        "log_every": 10,
        "eval_every": steps,
        "checkpoint_every": steps,
    }
    ctx = LocalContext(
        Path(tempfile.mkdtemp(dir=work)),
        hyperparameters=hps,
        datasets={"p": data},
        base_model=base,
        seed=SEED,
    )
    start = time.perf_counter()
    char_lm_preference.train(ctx)
    return steps / (time.perf_counter() - start)


def encoded(base: Path, data: Path) -> Any:
    """The training pairs as the trainer encodes them (its 80% split, same seed)."""
    import torch

    from modelhub.networks.char_lm import load
    from modelhub.training.trainers.char_lm_preference import encode_pairs
    from modelhub.training.trainers.preference_data import read_pairs

    pairs = read_pairs(data)
    order = torch.randperm(len(pairs), generator=torch.Generator().manual_seed(SEED))
    train = order[int(len(pairs) * 0.2) :].sort().values.tolist()
    return encode_pairs(load(base).config, [pairs[i] for i in train])


def run_torch(base: Path, pairs: Any, steps: int, cached: bool) -> float:
    import torch
    import torch.nn.functional as F

    from modelhub.networks.char_lm import load

    def logps(model: torch.nn.Module, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        logits = model(ids[:, :-1])
        nll = F.cross_entropy(logits.flatten(0, 1), ids[:, 1:].flatten(), reduction="none")
        return -(nll.view_as(mask) * mask).sum(-1).view(-1, 2)

    torch.manual_seed(SEED)
    policy, reference = load(base).model.train(), load(base).model.eval()
    optimizer = torch.optim.AdamW(policy.parameters(), lr=LR, weight_decay=0.0)
    n = len(pairs)
    start = time.perf_counter()
    cache, known = torch.zeros((n, 2)), torch.zeros(n, dtype=torch.bool)
    per_epoch = -(-n // BATCH)
    order = torch.randperm(n)
    for step in range(steps):
        epoch, position = divmod(step, per_epoch)
        if position == 0:
            order = torch.randperm(n, generator=torch.Generator().manual_seed(SEED + epoch))
        index = order[position * BATCH : (position + 1) * BATCH]
        ids, mask = pairs.take(index)
        if cached:
            missing = index[~known[index]]
            if len(missing):
                with torch.no_grad():
                    cache[missing] = logps(reference, *pairs.take(missing))
                known[missing] = True
            ref = cache[index]
        else:
            with torch.no_grad():
                ref = logps(reference, ids, mask)
        pol = logps(policy, ids, mask)
        margin = BETA * ((pol[:, 0] - ref[:, 0]) - (pol[:, 1] - ref[:, 1]))
        loss = -F.logsigmoid(margin).mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()  # type: ignore[no-untyped-call]
        torch.nn.utils.clip_grad_norm_(policy.parameters(), 1.0)
        optimizer.step()
    return steps / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="10 steps, 2 repeats")
    args = parser.parse_args()
    steps, repeats = (10, 2) if args.quick else (args.steps, args.repeats)
    isolate_from_user_env()
    import torch

    torch.set_num_threads(1)  # a tiny model gains nothing from threads; steadier timings
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        base, data = make_data(work)
        pairs = encoded(base, data)
        run_modelhub(base, data, work, 2)  # warm up every path once
        run_torch(base, pairs, 2, False)
        run_torch(base, pairs, 2, True)
        ours: list[float] = []
        plain: list[float] = []
        pre: list[float] = []
        for i in range(repeats):
            ours.append(run_modelhub(base, data, work, steps))
            plain.append(run_torch(base, pairs, steps, False))
            pre.append(run_torch(base, pairs, steps, True))
            log(
                f"repeat {i}: modelhub {ours[-1]:.1f}, torch {plain[-1]:.1f}, "
                f"torch cached {pre[-1]:.1f} steps/s"
            )
    emit(
        {
            "bench": "preference",
            "modelhub_steps_per_s": round(median(ours), 2),
            "torch_steps_per_s": round(median(plain), 2),
            "torch_cached_steps_per_s": round(median(pre), 2),
            "ratio": round(median(ours) / median(plain), 3),
            "ratio_cached": round(median(ours) / median(pre), 3),
            "pairs": PAIRS,
            "train_pairs": len(pairs),
            "batch_size": BATCH,
            "steps": steps,
            "repeats": repeats,
            "torch_threads": torch.get_num_threads(),
        }
    )


if __name__ == "__main__":
    main()
