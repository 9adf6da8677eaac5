"""What to change in a pipeline, read from where a short run's time went; and whether it helped.

Pure functions over a `PhaseProfile` (modelhub.training.phases measured it) and the
pipeline's spec. Each rule proposes a concrete change of one spec field with its
reason, or, where the trainer has no knob for what it found, a note:

- per-step overhead (optimizer step, logging, the loop itself) takes a large share of
  a step: a bigger batch_size spreads it over more samples (and the learning rate
  grows by the square root of the factor, so an epoch's progress stays comparable);
- checkpoints take a notable share: a longer checkpoint interval;
- data loading takes a large share: data-loader workers, but no built-in trainer
  has a data loader (they hold the data as tensors), so this is a note;
- forward and backward dominate on a GPU: mixed precision, but no built-in trainer
  offers it yet, so this is a note too;
- backward dominates a text classifier tuning encoder layers: tune fewer layers
  (down to the head alone, whose embeddings are computed once).

`compare` then judges the changed pipeline's short run against the original's.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Literal

from modelhub.domain.pipeline_optimization import PhaseProfile, ProposedChange, ValidationCheck
from modelhub.domain.pipelines import PipelineSpec, TrainerName
from modelhub.training.spec import stored_spec

STEP_PHASES = ("data", "forward", "backward", "optimizer", "logging", "other")
OVERHEAD_PHASES = ("optimizer", "logging", "other")

OVERHEAD_SHARE = 0.25  # of a step: the fixed cost a bigger batch spreads out
TARGET_OVERHEAD = 0.10  # what the bigger batch aims the overhead's share at
MAX_BATCH_FACTOR = 16
MAX_BATCH = 1024
MIN_STEPS_PER_EPOCH = 4
CHECKPOINT_SHARE = 0.10  # of the run's time
TARGET_CHECKPOINT = 0.02  # a checkpoint's cost against the steps between two
DATA_SHARE = 0.30  # of a step
BACKWARD_SHARE = 0.40  # of a step
COMPUTE_SHARE = 0.50  # forward + backward, of a step, for mixed precision on a GPU
MIN_GAIN = 0.05  # samples/s must rise by this much for a change to count as helping

# The metric each built-in trainer validates with, and which way is better.
VALIDATION: dict[str, tuple[str, Literal["min", "max"]]] = {
    TrainerName.TABULAR_CLASSIFIER: ("val_accuracy", "max"),
    TrainerName.TEXT_CLASSIFIER: ("val_accuracy", "max"),
    TrainerName.CHAR_LM: ("val_loss", "min"),
}
PROFILED = frozenset(VALIDATION)


@dataclass(frozen=True)
class Proposal:
    changes: list[ProposedChange] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    spec: dict[str, Any] | None = None  # the changed spec; None when nothing changes


def propose(
    spec: PipelineSpec, profile: PhaseProfile, train_rows: int | None, gpu: bool
) -> Proposal:
    """The changes the profile calls for, each with its reason, and the spec they make."""
    hp = spec.trainer_hyperparameters()
    step_seconds = sum(profile.phases.get(p, 0.0) for p in STEP_PHASES)
    changes: list[ProposedChange] = []
    notes: list[str] = []

    def share(*phases: str) -> float:
        return sum(profile.phases.get(p, 0.0) for p in phases) / step_seconds

    if profile.steps < 1 or step_seconds <= 0:
        return Proposal(notes=["the profiling run trained no step to measure"])
    overhead = share(*OVERHEAD_PHASES)
    batch = int(getattr(hp, "batch_size", 0) or 0)
    if batch and overhead >= OVERHEAD_SHARE:
        bigger = _bigger_batch(batch, overhead, train_rows)
        if bigger > batch:
            changes.append(
                ProposedChange(
                    field="hyperparameters.batch_size",
                    old=batch,
                    new=bigger,
                    reason=(
                        f"per-step overhead (optimizer step, logging, loop) is {overhead:.0%} "
                        f"of a step at batch_size {batch}; {bigger} spreads it over "
                        f"{bigger // batch}x the samples"
                    ),
                )
            )
            changes += _scaled_rate(hp, bigger / batch)
        else:
            notes.append(
                f"per-step overhead is {overhead:.0%} of a step, but a bigger batch than "
                f"{batch} would leave fewer than {MIN_STEPS_PER_EPOCH} steps an epoch"
            )
    changes += _checkpoint_change(spec, hp, profile, step_seconds)
    data = share("data")
    if data >= DATA_SHARE:
        notes.append(
            f"data loading is {data:.0%} of a step; the {spec.trainer} trainer holds its "
            "data in memory and has no data-loader workers to add"
        )
    compute = share("forward", "backward")
    if gpu and compute >= COMPUTE_SHARE:
        notes.append(
            f"forward and backward are {compute:.0%} of a step on a GPU; mixed precision "
            f"would shorten them, but the {spec.trainer} trainer has no mixed-precision option"
        )
    backward = share("backward")
    if spec.trainer == TrainerName.TEXT_CLASSIFIER and backward >= BACKWARD_SHARE:
        changes += _fewer_layers(hp, backward)
    if not changes:
        return Proposal(notes=notes)
    return Proposal(changes, notes, apply(spec, changes))


def _bigger_batch(batch: int, overhead: float, train_rows: int | None) -> int:
    """batch times the power of two that brings the overhead's share near TARGET_OVERHEAD."""
    wanted = (overhead / (1 - overhead)) / (TARGET_OVERHEAD / (1 - TARGET_OVERHEAD))
    factor = 2 ** max(1, math.ceil(math.log2(max(wanted, 2.0))))
    bigger = batch * min(factor, MAX_BATCH_FACTOR)
    ceiling = MAX_BATCH
    if train_rows is not None:
        ceiling = min(ceiling, max(1, train_rows // MIN_STEPS_PER_EPOCH))
    return min(bigger, ceiling) if ceiling > batch else batch


def _scaled_rate(hp: Any, factor: float) -> list[ProposedChange]:
    """The learning rate times sqrt(factor): with `factor`x fewer steps an epoch, AdamW
    (every built-in trainer's optimizer) keeps its progress per epoch about the same."""
    rate = getattr(hp, "rate", None) or getattr(hp, "learning_rate", None)
    if not rate:
        return []
    scaled = float(f"{rate * math.sqrt(factor):.3g}")
    return [
        ProposedChange(
            field="hyperparameters.learning_rate",
            old=rate,
            new=scaled,
            reason=(
                f"the {factor:g}x batch takes {factor:g}x fewer steps an epoch; the learning "
                f"rate scaled by sqrt({factor:g}) (the usual rule for AdamW) keeps the "
                "progress per epoch"
            ),
        )
    ]


def _checkpoint_change(
    spec: PipelineSpec, hp: Any, profile: PhaseProfile, step_seconds: float
) -> list[ProposedChange]:
    checkpoint = profile.phases.get("checkpoint", 0.0)
    share = profile.share("checkpoint")
    if share < CHECKPOINT_SHARE or profile.checkpoints < 1:
        return []
    if spec.checkpoint.every_steps is not None:
        path, every = "checkpoint.every_steps", spec.checkpoint.every_steps
    elif getattr(hp, "checkpoint_every", None) is not None:
        path, every = "hyperparameters.checkpoint_every", int(hp.checkpoint_every)
    else:
        return []  # only at epoch ends: no interval to lengthen
    per_checkpoint = checkpoint / profile.checkpoints
    per_step = step_seconds / profile.steps
    needed = math.ceil(per_checkpoint / (TARGET_CHECKPOINT * per_step))
    longer = _round_up(max(needed, every * 2))
    return [
        ProposedChange(
            field=path,
            old=every,
            new=longer,
            reason=(
                f"checkpoints take {share:.0%} of the run ({per_checkpoint * 1000:.1f} ms each, "
                f"every {every} steps); every {longer} steps keeps them near "
                f"{TARGET_CHECKPOINT:.0%} (a stopped or crashed run redoes at most "
                f"{longer} steps)"
            ),
        )
    ]


def _fewer_layers(hp: Any, backward: float) -> list[ProposedChange]:
    if hp.tune != "last_layers" or hp.unfreeze_layers < 1:
        return []
    layers = int(hp.unfreeze_layers)
    why = f"backward is {backward:.0%} of a step, tuning the last {layers} encoder layers"
    if layers == 1:
        return [
            ProposedChange(
                field="hyperparameters.tune",
                old="last_layers",
                new="head",
                reason=why + "; tuning the head alone embeds each text once and needs no "
                "backward through the encoder",
            )
        ]
    fewer = layers // 2
    return [
        ProposedChange(
            field="hyperparameters.unfreeze_layers",
            old=layers,
            new=fewer,
            reason=why + f"; tuning {fewer} halves the layers backward goes through",
        )
    ]


def _round_up(value: int) -> int:
    """The smallest of 1, 2, 5, 10, 20, 50 ... at least `value`."""
    scale = 1
    while True:
        for step in (1, 2, 5):
            if step * scale >= value:
                return step * scale
        scale *= 10


def apply(spec: PipelineSpec, changes: list[ProposedChange]) -> dict[str, Any]:
    """The spec (as JSON data) with each change's field set; checked as any spec is."""
    data = spec.model_dump(mode="json")
    for change in changes:
        *parents, leaf = change.field.split(".")
        target = data
        for name in parents:
            target = target.setdefault(name, {})
        target[leaf] = change.new
    return stored_spec(data).model_dump(mode="json")


def compare(
    before: PhaseProfile,
    after: PhaseProfile,
    trainer: str,
    tolerance: float,
) -> tuple[float, ValidationCheck]:
    """(samples/s after over before, the validation check) of two profiled runs."""
    metric, mode = VALIDATION[trainer]
    gain = after.samples_per_s / before.samples_per_s if before.samples_per_s > 0 else math.inf
    holds = False
    if before.validation is not None and after.validation is not None:
        if mode == "max":
            holds = after.validation >= before.validation - tolerance
        else:
            holds = after.validation <= before.validation + tolerance
    check = ValidationCheck(
        metric=metric,
        mode=mode,
        before=before.validation,
        after=after.validation,
        tolerance=tolerance,
        holds=holds,
    )
    return gain, check


def helps(gain: float, check: ValidationCheck) -> bool:
    """Whether the measured change is worth proposing: faster, and validation kept."""
    return gain >= 1 + MIN_GAIN and check.holds


def profile_of(run_id: int, metrics: dict[str, float], trainer: str) -> PhaseProfile | None:
    """The profile a profiling run's metrics carry (see modelhub.training.phases); None
    when they carry none (the run trained no step, or is not a profiling run)."""
    from modelhub.training.phases import PHASES, PREFIX

    if f"{PREFIX}seconds" not in metrics:
        return None
    phases = {name: float(metrics.get(f"{PREFIX}{name}_s", 0.0)) for name in (*PHASES, "other")}
    value = metrics.get(VALIDATION[trainer][0]) if trainer in VALIDATION else None
    return PhaseProfile(
        run_id=run_id,
        phases=phases,
        seconds=float(metrics[f"{PREFIX}seconds"]),
        steps=int(metrics.get(f"{PREFIX}steps", 0)),
        samples=int(metrics.get(f"{PREFIX}samples", 0)),
        checkpoints=int(metrics.get(f"{PREFIX}checkpoints", 0)),
        samples_per_s=float(metrics.get(f"{PREFIX}samples_per_s", 0.0)),
        validation=float(value) if value is not None and math.isfinite(value) else None,
    )
