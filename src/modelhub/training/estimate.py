"""What a pipeline will need and cost, told before it is created.

Formulas (docs/pipelines.md repeats them for users):

    state bytes   = parameters x bytes per parameter of the optimizer and precision
                    (Adam at fp32: weights 4 + grads 4 + 2 moments 8 = 16)
    memory        = state x (1 + ACTIVATION_FRACTION) + RUNTIME_BYTES
    train samples = rows x (1 - validation_split) x max_epochs
                    (federated: x fraction_fit x local_epochs x rounds in place of max_epochs)
    eval samples  = rows x validation_split x max_epochs (federated: x rounds),
                    at EVAL_SPEEDUP x samples_per_s
    seconds       = train samples / samples_per_s + eval samples / (EVAL_SPEEDUP x samples_per_s)
                    (N data-parallel workers: no speed-up assumed, the duration stays)
    cpu cost      = seconds / 3600 x cpus x workers x cpu_hour_price
    gpu cost      = seconds / 3600 x gpus x workers x gpu_hour_price
    storage       = weights + kept checkpoints x state, for one month at storage_gb_month_price
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Protocol

from modelhub.domain.enums import Precision, parse_enum
from modelhub.domain.estimates import Estimate
from modelhub.domain.hyperparameters import (
    CharLMHyperparameters,
    TabularHyperparameters,
    TextClassifierHyperparameters,
)
from modelhub.domain.pipelines import PipelineSpec
from modelhub.errors import InvalidInput

MiB = 1024**2
GiB = 1024**3
GB = 1000**3
ACTIVATION_FRACTION = 0.25  # activations and temporary buffers, as a share of the state
RUNTIME_BYTES = 512 * MiB  # interpreter, torch, data loader
EVAL_SPEEDUP = 3.0  # a forward pass costs about a third of forward + backward

VALUE_BYTES: dict[Precision, float] = {
    Precision.FP32: 4.0,
    Precision.FP16: 2.0,
    Precision.BF16: 2.0,
}
OPTIMIZER_MOMENTS: dict[str, int] = {"adam": 2, "adamw": 2, "sgd_momentum": 1, "sgd": 0}
MIXED_MASTER_BYTES = 4.0  # mixed precision keeps an fp32 master copy of the weights
GPU_CLASSES: list[tuple[int, str]] = [
    (16 * GiB, "gpu-16gb"),
    (40 * GiB, "gpu-40gb"),
    (80 * GiB, "gpu-80gb"),
]
CPU_SMALL_LIMIT = 500 * MiB


class PriceTable(Protocol):
    """The prices Settings carries; any object with these attributes will do."""

    @property
    def cpu_hour_price(self) -> float: ...
    @property
    def gpu_hour_price(self) -> float: ...
    @property
    def storage_gb_month_price(self) -> float: ...
    @property
    def currency(self) -> str: ...


@dataclass(frozen=True)
class Prices:
    cpu_hour_price: float = 0.05
    gpu_hour_price: float = 2.5
    storage_gb_month_price: float = 0.023
    currency: str = "USD"


def bytes_per_parameter(precision: Precision, optimizer: str = "adam") -> float:
    """Training-state bytes per parameter: weights, gradients and optimizer moments."""
    if optimizer not in OPTIMIZER_MOMENTS:
        raise InvalidInput(
            f"unknown optimizer {optimizer!r}; choose one of: {', '.join(OPTIMIZER_MOMENTS)}",
            {"field": "optimizer", "value": optimizer},
        )
    moments = OPTIMIZER_MOMENTS[optimizer]
    if precision is Precision.MIXED:
        # fp16 weights and grads, an fp32 master copy, fp32 moments: 2 + 2 + 4 + 8 for Adam.
        return 2 * VALUE_BYTES[Precision.FP16] + MIXED_MASTER_BYTES + 4.0 * moments
    if precision is Precision.UNKNOWN:
        precision = Precision.FP32
    if precision not in VALUE_BYTES:
        raise InvalidInput(
            f"cannot train at {precision.value}; use fp32, fp16, bf16 or mixed",
            {"field": "precision", "value": precision.value},
        )
    return VALUE_BYTES[precision] * (2 + moments)


def estimate(
    spec: PipelineSpec,
    parameters: int,
    precision: str | Precision,
    rows: int,
    samples_per_s: float,
    prices: PriceTable,
    optimizer: str = "adam",
) -> Estimate:
    """Memory, device class, wall time and cost of one run of `spec`.

    `parameters` is the model's parameter count, `rows` the dataset rows the run
    reads, `samples_per_s` the training speed measured on this host. Raises
    InvalidInput for a negative count, a non-positive speed or an untrainable precision.
    """
    if parameters < 0 or rows < 0:
        raise InvalidInput("parameters and rows cannot be negative", {"field": "parameters"})
    if samples_per_s <= 0:
        raise InvalidInput("samples_per_s must be above 0", {"field": "samples_per_s"})
    precision = parse_enum(Precision, precision, "precision")
    per_param = bytes_per_parameter(precision, optimizer)
    state = parameters * per_param
    memory = int(state * (1 + ACTIVATION_FRACTION)) + RUNTIME_BYTES

    split = spec.validation_split
    passes, evaluations = float(spec.max_epochs), float(spec.max_epochs)
    if spec.federated is not None:
        fed = spec.federated
        passes = fed.fraction_fit * fed.local_epochs * fed.rounds
        evaluations = float(fed.rounds)
    train_samples = rows * (1 - split) * passes
    eval_samples = rows * split * evaluations
    seconds = train_samples / samples_per_s + eval_samples / (EVAL_SPEEDUP * samples_per_s)

    resources = spec.resources
    workers = spec.distributed.workers if spec.distributed else 1
    hours = seconds / 3600 * workers
    weight_value = VALUE_BYTES.get(precision, 4.0)
    kept = spec.checkpoint.keep_last + (1 if spec.checkpoint.keep_best else 0)
    storage = int(parameters * weight_value + kept * state)
    breakdown = {
        "cpu": hours * resources.cpus * prices.cpu_hour_price,
        "gpu": hours * resources.gpus * prices.gpu_hour_price,
        "storage_month": storage / GB * prices.storage_gb_month_price,
    }
    device_class, warnings = _device(memory, resources.gpus, resources.memory)
    notes = (
        f"{parameters:,} params x {per_param:g} B ({precision.value}, {optimizer}) "
        f"x {1 + ACTIVATION_FRACTION:g} + {RUNTIME_BYTES // MiB} MiB = {memory / GiB:.2f} GiB; "
        f"{train_samples:,.0f} train + {eval_samples:,.0f} eval samples "
        f"at {samples_per_s:g}/s = {seconds:,.0f} s"
    )
    if workers > 1:
        notes += (
            f"; {workers} workers: memory and cpus are per worker, the cost counts all "
            "of them, the duration assumes no speed-up"
        )
    return Estimate(
        memory_bytes=memory,
        device_class=device_class,
        seconds=seconds,
        cost=sum(breakdown.values()),
        currency=prices.currency,
        breakdown=breakdown,
        storage_bytes=storage,
        warnings=warnings,
        notes=notes,
        workers=workers,
    )


def _device(memory: int, gpus: int, requested: int) -> tuple[str, list[str]]:
    warnings = []
    if gpus == 0:
        device_class = "cpu-small" if memory < CPU_SMALL_LIMIT else "cpu-large"
        if memory > requested:
            warnings.append(
                f"needs about {memory / GiB:.2f} GiB but resources.memory is "
                f"{requested / GiB:.2f} GiB"
            )
        return device_class, warnings
    per_gpu = memory / gpus
    device_class = next((name for limit, name in GPU_CLASSES if per_gpu < limit), "multi-gpu")
    if device_class == "multi-gpu":
        warnings.append(f"needs {per_gpu / GiB:.1f} GiB per GPU, more than one 80 GB card")
    return device_class, warnings


MINILM_PARAMETERS = 22_713_216  # all-MiniLM-L6-v2, the text classifier's encoder
MINILM_WIDTH = 384
GUESSED_CLASSES = 10  # before training, the number of labels is unknown
NUMERIC_TYPES = ("int", "integer", "float", "double", "number")


def guess_parameters(
    spec: PipelineSpec, columns: dict[str, str], base_parameters: int | None
) -> int:
    """The parameter count a run of `spec` will train, from its trainer and settings.

    A base model's own count wins when there is one; otherwise each built-in
    trainer's architecture is counted from its hyperparameters and the dataset's
    columns, with the label count guessed as GUESSED_CLASSES.
    """
    if base_parameters:
        return base_parameters
    arch = spec.trainer_hyperparameters()
    if isinstance(arch, TabularHyperparameters):
        features = arch.features or [
            name
            for name, kind in columns.items()
            if name != arch.label and any(t in str(kind).lower() for t in NUMERIC_TYPES)
        ]
        widths = [max(len(features), 1), *arch.hidden, GUESSED_CLASSES]
        return sum(a * b + b for a, b in itertools.pairwise(widths))
    if isinstance(arch, TextClassifierHyperparameters):
        return MINILM_PARAMETERS + MINILM_WIDTH * GUESSED_CLASSES + GUESSED_CLASSES
    if isinstance(arch, CharLMHyperparameters):
        width, layers, context = arch.d_model, arch.n_layers, arch.context_length
        vocab = 100
        return layers * 12 * width * width + (vocab + context) * width + vocab * width
    return 1_000_000  # a script's model is unknown until it runs
