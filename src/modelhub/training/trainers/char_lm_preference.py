"""Learning from preferences for the char LM: Direct Preference Optimisation (DPO).

A `reinforcement_learning` pipeline starts from a registered char_lm version (its
`base_model`) and a dataset of preference pairs (see `preference_data`). The policy
starts as a copy of the base; the base itself stays frozen as the reference. For a
pair (prompt x, chosen y+, rejected y-) the loss is

    -log sigmoid(beta * ((log pi(y+|x) - log ref(y+|x)) - (log pi(y-|x) - log ref(y-|x))))

(Rafailov et al., 2023): it raises the chosen response's likelihood relative to the
reference and lowers the rejected one's, and `beta` sets how far the policy may drift
from the reference (the implicit KL penalty of the RLHF objective it solves). The

reference never changes, so its log-likelihood of a pair is computed once, the first
time a batch holds the pair (`ReferenceCache`), not at every step.

A response is scored as the char LM generates it: each character given the prompt and
the response so far. A sequence is at most `context_length + 1` characters; a longer
response keeps its first `context_length` characters, and the prompt keeps as many of
its last characters as still fit (an empty prompt is the unknown token, as `generate`
starts). The `truncated` metric counts the responses cut.

Metrics: `loss`, `reward_margin` (the mean of beta times the difference of the
log-ratios: the implicit reward of chosen minus rejected) and `reward_accuracy` (how
often that margin is positive) over each logging window; and, every `eval_every` steps
and at the end, `val_loss`, `val_reward_margin`, `val_reward_accuracy` on the held-out
pairs and `kl`, the mean per-character KL(policy || reference) of the next-character
distributions along the held-out responses (the training pairs when none are held out).

The output is a char_lm folder (model.safetensors + config.json, the base's vocabulary
and shape), so the char LM's serving runtime, export and `load` take it unchanged.
Progress, checkpoints, resume, stop requests and keep_best come from `TrainingLoop`.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from modelhub.domain.hyperparameters import CharLMPreferenceHyperparameters
from modelhub.domain.trainer_catalog import BUILTIN_TRAINERS
from modelhub.errors import InvalidInput
from modelhub.networks.char_lm import UNKNOWN_ID, CharLMConfig, CharTransformer, write_output
from modelhub.networks.char_lm import load as load
from modelhub.training.context import LocalContext, TrainResult
from modelhub.training.loop import TrainingLoop, shard_size
from modelhub.training.trainers._best import logged_at
from modelhub.training.trainers.preference_data import Pair, read_pairs

# The trainer interface's declarations (docs/plugins.md): this trainer's row of the
# domain's table, which checks specs without importing this module.
_TRAITS = BUILTIN_TRAINERS.traits["char_lm_preference"]
pipeline_types = _TRAITS.pipeline_types
result_type = _TRAITS.result_type
hyperparameter_model = _TRAITS.hyperparameters
base_trainer = _TRAITS.base_trainer
data_parallel = _TRAITS.data_parallel

EVAL_PAIRS = 256  # held-out pairs measured at most (the first of the seeded split)
REFERENCE_BATCH = 256


@dataclass(frozen=True)
class EncodedPairs:
    """Pairs as token ids: `ids[i, 0]` the chosen sequence, `ids[i, 1]` the rejected one
    (prompt then response, right-padded), `mask` marking the targets that are response
    characters (so `mask[i, j]` has one fewer position than `ids[i, j]`)."""

    ids: Tensor  # [pairs, 2, length] long
    mask: Tensor  # [pairs, 2, length - 1] float
    truncated: int

    def __len__(self) -> int:
        return int(self.ids.shape[0])

    def take(self, index: Tensor) -> tuple[Tensor, Tensor]:
        """The sequences of the pairs at `index`, flattened: chosen and rejected of pair k
        at rows 2k and 2k + 1."""
        ids, mask = self.ids[index], self.mask[index]
        return ids.flatten(0, 1), mask.flatten(0, 1)


def encode_pairs(config: CharLMConfig, pairs: list[Pair]) -> EncodedPairs:
    """Encode `pairs` with the model's vocabulary (unknown characters map to the unknown
    token), each sequence cut to fit `context_length + 1` (see the module's docstring)."""
    rows: list[tuple[list[int], int]] = []
    truncated = 0
    for pair in pairs:
        prompt = config.encode(pair.prompt) or [UNKNOWN_ID]
        for response in (pair.chosen, pair.rejected):
            ids = config.encode(response)
            if len(ids) > config.context_length:
                ids, truncated = ids[: config.context_length], truncated + 1
            kept = prompt[-(config.context_length + 1 - len(ids)) :]
            rows.append((kept + ids, len(kept)))
    length = max(len(seq) for seq, _ in rows)
    ids_out = torch.zeros((len(rows), length), dtype=torch.long)
    mask = torch.zeros((len(rows), length - 1))
    for row, (seq, prompt_length) in enumerate(rows):
        ids_out[row, : len(seq)] = torch.tensor(seq)
        mask[row, prompt_length - 1 : len(seq) - 1] = 1.0
    return EncodedPairs(
        ids_out.view(len(pairs), 2, length), mask.view(len(pairs), 2, length - 1), truncated
    )


def sequence_logps(model: nn.Module, ids: Tensor, mask: Tensor) -> Tensor:
    """The log-likelihood of each sequence's masked targets (its response): [rows]."""
    logits = model(ids[:, :-1])
    targets = ids[:, 1:]
    nll = F.cross_entropy(logits.flatten(0, 1), targets.flatten(), reduction="none")
    return -(nll.view_as(mask) * mask).sum(-1)


def dpo_loss(
    policy_chosen: Tensor,
    policy_rejected: Tensor,
    reference_chosen: Tensor,
    reference_rejected: Tensor,
    beta: float,
) -> tuple[Tensor, Tensor]:
    """The mean DPO loss over a batch and each pair's reward margin (detached):
    beta * ((policy_chosen - reference_chosen) - (policy_rejected - reference_rejected)).

    The arguments are sequence log-likelihoods. When the policy is the reference the
    margin is 0 and the loss log(2).
    """
    margin = beta * ((policy_chosen - reference_chosen) - (policy_rejected - reference_rejected))
    return -F.logsigmoid(margin).mean(), margin.detach()


@torch.no_grad()
def reference_logps(model: nn.Module, pairs: EncodedPairs, device: str) -> Tensor:
    """The frozen reference's log-likelihood of every pair's responses: [pairs, 2]."""
    model.eval()
    out = []
    for start in range(0, len(pairs), REFERENCE_BATCH):
        index = torch.arange(start, min(start + REFERENCE_BATCH, len(pairs)))
        ids, mask = pairs.take(index)
        out.append(sequence_logps(model, ids.to(device), mask.to(device)).view(-1, 2))
    return torch.cat(out).to(device)


class ReferenceCache:
    """The reference's log-likelihoods of the training pairs, each computed the first time
    a batch holds its pair: once per pair however many epochs train, and never for the
    pairs a short run does not reach. The reference is frozen (and in eval mode), so a
    resumed run computes the same values again."""

    def __init__(self, reference: nn.Module, pairs: EncodedPairs, device: str) -> None:
        self.reference, self.pairs, self.device = reference, pairs, device
        self.values = torch.zeros((len(pairs), 2), device=device)
        self.known = torch.zeros(len(pairs), dtype=torch.bool)

    @torch.no_grad()
    def __call__(self, index: Tensor) -> Tensor:
        missing = torch.unique(index[~self.known[index]])
        if len(missing):
            ids, mask = self.pairs.take(missing)
            self.reference.eval()
            logps = sequence_logps(self.reference, ids.to(self.device), mask.to(self.device))
            self.values[missing.to(self.device)] = logps.view(-1, 2)
            self.known[missing] = True
        return self.values[index.to(self.device)]


@torch.no_grad()
def mean_kl(policy: nn.Module, reference: nn.Module, ids: Tensor, mask: Tensor) -> float:
    """The mean KL(policy || reference) of the next-character distributions at the
    masked positions (each response character)."""
    policy.eval()
    inputs = ids[:, :-1]
    log_p = F.log_softmax(policy(inputs), dim=-1)
    log_q = F.log_softmax(reference(inputs), dim=-1)
    kl = (log_p.exp() * (log_p - log_q)).sum(-1)
    return float((kl * mask).sum() / mask.sum().clamp(min=1))


def base_network(folder: Path | None) -> tuple[CharLMConfig, dict[str, Tensor]]:
    """The config and weights of the base char LM; InvalidInput when there is none or
    the folder holds another trainer's model (or an export)."""
    if folder is None:
        raise InvalidInput(
            "char_lm_preference starts from a char_lm version: set base_model",
            {"field": "base_model"},
        )
    config = json.loads((folder / "config.json").read_text())
    if config.get("trainer") != "char_lm" or "format" in config:
        made = config.get("trainer", "unknown")
        raise InvalidInput(
            f"the base model is not a char_lm model (config.json says trainer {made!r}"
            + (f", format {config['format']!r}" if "format" in config else "")
            + ")",
            {"field": "base_model"},
        )
    base = load(folder)
    return base.config, base.model.state_dict()


def train(ctx: LocalContext) -> TrainResult:
    """Fine-tune the base char LM on `ctx.dataset()`'s preference pairs with DPO and write
    model.safetensors + config.json to `ctx.output_dir`.

    Raises InvalidInput for a missing or wrong base, bad rows or hyperparameters, too
    few pairs; TrainingDiverged when the loss stops being finite.
    """
    hp = CharLMPreferenceHyperparameters.parse(ctx.hyperparameters)
    config, base_state = base_network(ctx.base_model)
    pairs = read_pairs(ctx.dataset())
    order = torch.randperm(len(pairs), generator=torch.Generator().manual_seed(ctx.seed))
    n_val = int(len(pairs) * ctx.validation_split)
    if len(pairs) - n_val < 1:
        raise InvalidInput(
            f"after the validation split no pair is left to train on ({len(pairs)} pairs)",
            {"pairs": len(pairs), "validation_split": ctx.validation_split},
        )
    val_index, train_index = order[:n_val].sort().values, order[n_val:].sort().values
    train_pairs = encode_pairs(config, [pairs[i] for i in train_index.tolist()])
    val_pairs = (
        encode_pairs(config, [pairs[i] for i in val_index[:EVAL_PAIRS].tolist()]) if n_val else None
    )
    with torch.random.fork_rng(devices=[]):
        return _train_loop(ctx, hp, config, base_state, train_pairs, val_pairs)


def _train_loop(
    ctx: LocalContext,
    hp: CharLMPreferenceHyperparameters,
    config: CharLMConfig,
    base_state: dict[str, Tensor],
    train_pairs: EncodedPairs,
    val_pairs: EncodedPairs | None,
) -> TrainResult:
    torch.manual_seed(ctx.seed)
    reference = CharTransformer(config).to(ctx.device)
    reference.load_state_dict(base_state)
    reference.requires_grad_(False).eval()
    model = CharTransformer(config).to(ctx.device)
    model.load_state_dict(base_state)
    ref_logps = ReferenceCache(reference, train_pairs, ctx.device)
    measured = val_pairs if val_pairs is not None else _first(train_pairs, 64)
    measured_ref = reference_logps(reference, measured, ctx.device)

    batch_size = hp.batch_size
    steps_per_epoch = -(-shard_size(len(train_pairs)) // batch_size)
    total = hp.steps if hp.steps is not None else hp.epochs * steps_per_epoch
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=hp.learning_rate, weight_decay=hp.weight_decay
    )

    def restore(state: dict[str, Any]) -> None:
        if CharLMConfig.from_json(state["config"]) != config:
            raise ValueError("the checkpoint's network is not the base model's")
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        torch.set_rng_state(state["torch_rng"])

    loop = TrainingLoop(
        ctx,
        total_steps=total,
        log_every=hp.log_every,
        checkpoint_every=hp.checkpoint_every,
        save=lambda: {
            "config": asdict(config),
            "model": model.state_dict(),
            "optimizer": optimizer.state_dict(),
            "torch_rng": torch.get_rng_state(),
        },
        restore=restore,
        device=ctx.device,
    )
    loop.resume()
    net = loop.parallel(model)

    def evaluate() -> dict[str, float]:
        with loop.phase("validation"):
            return _measure(
                model, reference, measured, measured_ref, hp.beta, ctx.device, val_pairs is not None
            )

    metrics: dict[str, float] = {}
    margin_sum = torch.zeros((), device=ctx.device)
    correct_sum = torch.zeros((), device=ctx.device)
    window_pairs = 0
    epoch_order: tuple[int, Tensor] | None = None
    while loop.step < total and not loop.should_stop():
        step = loop.step + 1
        epoch, position = divmod(loop.step, steps_per_epoch)
        with loop.phase("data"):
            if epoch_order is None or epoch_order[0] != epoch:
                epoch_order = (epoch, loop.order(epoch, len(train_pairs), ctx.seed + epoch))
            index = epoch_order[1][position * batch_size : (position + 1) * batch_size]
            ids, mask = train_pairs.take(index)
            ids, mask = ids.to(ctx.device), mask.to(ctx.device)
            reference_pair = ref_logps(index)
        model.train()
        with loop.phase("forward"):
            logps = sequence_logps(net, ids, mask).view(-1, 2)
            loss, margin = dpo_loss(
                logps[:, 0], logps[:, 1], reference_pair[:, 0], reference_pair[:, 1], hp.beta
            )
        with loop.phase("backward"):
            optimizer.zero_grad(set_to_none=True)
            loss.backward()  # type: ignore[no-untyped-call]
        with loop.phase("optimizer"):
            nn.utils.clip_grad_norm_(model.parameters(), hp.grad_clip)
            optimizer.step()
        margin_sum += margin.sum()
        correct_sum += (margin > 0).sum()
        window_pairs += len(index)
        loop.add(loss, len(index))
        if loop.window_full or step == total:
            metrics["reward_margin"] = float(margin_sum) / window_pairs
            metrics["reward_accuracy"] = float(correct_sum) / window_pairs
            loop.log("reward_margin", metrics["reward_margin"])
            loop.log("reward_accuracy", metrics["reward_accuracy"])
            margin_sum.zero_()
            correct_sum.zero_()
            window_pairs = 0
            metrics["loss"] = loop.log_window(hp.learning_rate, epoch=step // steps_per_epoch)
        if step % hp.eval_every == 0 or step == total:
            metrics |= _log_all(loop, evaluate())
        if loop.checkpoint_due:
            loop.checkpoint()
    loop.checkpoint_final()
    step, stopped = loop.step, loop.stopped
    if stopped:  # a stopped run reports where it stopped
        metrics |= evaluate()
    best_step = loop.finish()
    if best_step is not None:
        if best_step != step:
            metrics = logged_at(ctx, best_step, ("loss", "reward_margin", "reward_accuracy"))
            metrics |= evaluate()
        metrics["best_step"] = float(best_step)
    metrics["steps"] = float(step)
    metrics["pairs"] = float(len(train_pairs))
    metrics["truncated"] = float(
        train_pairs.truncated + (val_pairs.truncated if val_pairs is not None else 0)
    )
    if stopped:
        metrics["stopped"] = 1.0
    if loop.writer:
        write_output(ctx.output_dir, model, config)
    return TrainResult(metrics=metrics, output_dir=ctx.output_dir)


def _log_all(loop: TrainingLoop, values: dict[str, float]) -> dict[str, float]:
    for name, value in values.items():
        loop.log(name, value)
    return values


def _first(pairs: EncodedPairs, count: int) -> EncodedPairs:
    return EncodedPairs(pairs.ids[:count], pairs.mask[:count], 0)


@torch.no_grad()
def _measure(
    model: CharTransformer,
    reference: CharTransformer,
    pairs: EncodedPairs,
    ref_logps: Tensor,
    beta: float,
    device: str,
    held_out: bool,
) -> dict[str, float]:
    """val_loss, val_reward_margin, val_reward_accuracy on held-out pairs (none of these
    when every pair trains) and kl, measured on them (else on the first training pairs)."""
    model.eval()
    ids, mask = pairs.take(torch.arange(len(pairs)))
    ids, mask = ids.to(device), mask.to(device)
    out = {"kl": mean_kl(model, reference, ids, mask)}
    if held_out:
        logps = sequence_logps(model, ids, mask).view(-1, 2)
        loss, margin = dpo_loss(logps[:, 0], logps[:, 1], ref_logps[:, 0], ref_logps[:, 1], beta)
        out |= {
            "val_loss": float(loss),
            "val_reward_margin": float(margin.mean()),
            "val_reward_accuracy": float((margin > 0).float().mean()),
        }
    return out


@torch.no_grad()
def pair_margins(folder: Path, pairs: list[Pair]) -> list[float]:
    """For each pair, log p(chosen | prompt) - log p(rejected | prompt) under the char
    LM in `folder` (a char_lm output folder), the responses encoded as training does.
    Positive: the model prefers the chosen response. An evaluation's measure (a
    persona's chat cycle compares a candidate with the version it serves)."""
    if not pairs:
        return []
    lm = load(folder)
    encoded = encode_pairs(lm.config, pairs)
    margins = []
    for start in range(0, len(encoded), REFERENCE_BATCH):
        index = torch.arange(start, min(start + REFERENCE_BATCH, len(encoded)))
        ids, mask = encoded.take(index)
        logps = sequence_logps(lm.model, ids, mask).view(-1, 2)
        margins.extend((logps[:, 0] - logps[:, 1]).tolist())
    return [float(m) for m in margins]
