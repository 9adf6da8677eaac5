"""Optimising a version (ONNX, int8, fp16) and choosing among its optimised variants.

The records here are what every transport shows: the figures measured on the source and
on the result, the report of one optimisation, and the choice `deploy --optimize` made.
The rules are pure functions over them (`check_tolerance`, `within_tolerance`,
`choose_variant`), so a unit test pins them without a model.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from pydantic import Field

from modelhub.domain.deployments import Deployment
from modelhub.domain.records import ModelVersion, Record
from modelhub.errors import InvalidInput

DEFAULT_MAX_ACCURACY_DROP = 0.01
MAX_EVAL_ROWS = 2000  # rows measured at most (see EvalRows.at_most)


class Target(StrEnum):
    """What `modelhub optimize --to` makes."""

    ONNX = "onnx"
    INT8 = "int8"
    FP16 = "fp16"


class Method(StrEnum):
    """How a registered variant was made: the target, and for int8 how it was calibrated."""

    ONNX = "onnx"
    INT8_DYNAMIC = "int8-dynamic"
    INT8_STATIC = "int8-static"
    FP16 = "fp16"


def method_for(target: Target, calibrated: bool) -> Method:
    if target is Target.INT8:
        return Method.INT8_STATIC if calibrated else Method.INT8_DYNAMIC
    return Method(target.value)


def check_tolerance(value: float) -> float:
    """The largest accuracy drop accepted, a fraction in [0, 1]; InvalidInput otherwise."""
    if not 0.0 <= value <= 1.0:  # NaN fails both comparisons
        raise InvalidInput(
            f"--max-accuracy-drop must be a fraction from 0 to 1 (0.01 is one point), not {value}",
            {"field": "max_accuracy_drop", "value": str(value)},
        )
    return float(value)


@dataclass(frozen=True)
class EvalRows:
    """Rows to measure a model on: one runtime input per row and the expected answer.

    `input` names the runtime's input tensor ("input" for tabular rows, "text" for
    texts); `rows` holds one value per row (a list of floats, or a string); `labels`
    the class each row should get. `source` says where the rows came from.
    """

    input: str
    rows: list[Any]
    labels: list[str]
    source: str

    def at_most(self, limit: int) -> EvalRows:
        """These rows, or an even spread of `limit` of them (every k-th row) when there
        are more: measuring stays seconds long on a large validation split."""
        if len(self.rows) <= limit:
            return self
        step = -(-len(self.rows) // limit)
        return EvalRows(
            self.input,
            self.rows[::step],
            self.labels[::step],
            f"{self.source}, one row in {step} of {len(self.rows)}",
        )


class Figures(Record):
    """What one model measured: bytes on disk, median single-row latency, the metric."""

    size_bytes: int
    p50_ms: float
    metric: str = Field(description="accuracy (higher is better), or val_loss (lower is).")
    value: float
    rows: int = Field(description="Rows the metric was measured on.")


class OptimisationReport(Record):
    """The outcome of one `modelhub optimize`: both sets of figures and the decision."""

    source: str = Field(description="NAME@VERSION optimised.")
    target: Target
    method: Method
    measured_on: str = Field(description="Where the rows came from.")
    before: Figures
    after: Figures
    accuracy_drop: float = Field(
        description="How much worse the result is in the metric's unit (accuracy lost, or "
        "validation loss gained); negative: better."
    )
    max_accuracy_drop: float
    within_tolerance: bool
    forced: bool = False
    registered_version: int | None = None
    reason: str = Field(description="Why the result was registered or not.")

    @property
    def size_ratio(self) -> float:
        return self.before.size_bytes / self.after.size_bytes if self.after.size_bytes else 0.0

    @property
    def speedup(self) -> float:
        return self.before.p50_ms / self.after.p50_ms if self.after.p50_ms else 0.0


LOWER_IS_BETTER = frozenset({"val_loss"})


def metric_drop(before: Figures, after: Figures) -> float:
    """How much worse `after` is than `before` in their metric's unit (negative: better)."""
    if before.metric in LOWER_IS_BETTER:
        return after.value - before.value
    return before.value - after.value


def decide(drop: float, tolerance: float, force: bool) -> tuple[bool, bool, str]:
    """(within tolerance, register, why) for a measured accuracy drop."""
    within = drop <= tolerance
    if within:
        return True, True, f"accuracy drop {drop:.4f} is within the tolerance {tolerance:.4f}"
    if force:
        return (
            False,
            True,
            f"accuracy drop {drop:.4f} exceeds the tolerance {tolerance:.4f}; registered "
            "because --force was given",
        )
    return (
        False,
        False,
        f"accuracy drop {drop:.4f} exceeds the tolerance {tolerance:.4f}; not registered "
        "(--force registers it anyway)",
    )


# The metrics a registered variant carries (ModelVersion.metrics).
SIZE = "size_bytes"
P50 = "p50_ms"
DROP = "accuracy_drop"
TOLERANCE = "max_accuracy_drop"


def variant_metrics(report: OptimisationReport) -> dict[str, float]:
    metric = report.after.metric  # accuracy, or val_loss for a language model
    return {
        SIZE: float(report.after.size_bytes),
        P50: report.after.p50_ms,
        metric: report.after.value,
        DROP: report.accuracy_drop,
        TOLERANCE: report.max_accuracy_drop,
        "source_size_bytes": float(report.before.size_bytes),
        "source_p50_ms": report.before.p50_ms,
        f"source_{metric}": report.before.value,
        "eval_rows": float(report.after.rows),
    }


class VariantVerdict(Record):
    """One optimised variant as `deploy --optimize` saw it."""

    version: int
    method: str | None = None
    p50_ms: float | None = None
    accuracy_drop: float | None = None
    qualifies: bool
    why: str


class VariantChoice(Record):
    """What `deploy --optimize` served instead of the version asked for, and why."""

    source: str = Field(description="NAME@VERSION asked for.")
    chosen: int = Field(description="The version served: a variant, or the source itself.")
    method: str | None = None
    reason: str
    considered: list[VariantVerdict] = Field(default_factory=list)


def within_tolerance(variant: ModelVersion) -> tuple[bool, str]:
    """Whether a registered variant's measured drop lies within the tolerance it was made
    under (a variant registered with --force over its tolerance does not)."""
    drop, tolerance = variant.metrics.get(DROP), variant.metrics.get(TOLERANCE)
    if drop is None or tolerance is None or variant.metrics.get(P50) is None:
        return False, "no measured accuracy drop or latency"
    if drop > tolerance:
        return False, f"accuracy drop {drop:.4f} exceeds its tolerance {tolerance:.4f}"
    return True, f"accuracy drop {drop:.4f} within {tolerance:.4f}"


def variants_of(source: ModelVersion, versions: Sequence[ModelVersion]) -> list[ModelVersion]:
    ref = f"{source.name}@{source.version}"
    return [v for v in versions if v.lineage.optimised_from == ref]


def choose_variant(
    source: ModelVersion,
    variants: Sequence[ModelVersion],
    refusal: Callable[[ModelVersion], str | None],
) -> VariantChoice:
    """The variant within tolerance with the lowest measured p50 latency that `refusal`
    (may this version serve here? None: yes) does not refuse; the source when none does.
    Ties go to the older version."""
    ref = f"{source.name}@{source.version}"
    verdicts: list[VariantVerdict] = []
    best: ModelVersion | None = None
    for variant in sorted(variants, key=lambda v: v.version):
        within, why = within_tolerance(variant)
        if within:
            refused = refusal(variant)
            if refused is not None:
                within, why = False, refused
        verdicts.append(
            VariantVerdict(
                version=variant.version,
                method=_method(variant),
                p50_ms=variant.metrics.get(P50),
                accuracy_drop=variant.metrics.get(DROP),
                qualifies=within,
                why=why,
            )
        )
        if within and (best is None or variant.metrics[P50] < best.metrics[P50]):
            best = variant
    if best is None:
        reason = (
            f"{ref} has no optimised variants; serving it as it is"
            if not variants
            else f"none of {ref}'s {len(variants)} optimised variants qualifies; serving {ref}"
        )
        return VariantChoice(source=ref, chosen=source.version, reason=reason, considered=verdicts)
    source_p50 = best.metrics.get("source_p50_ms")
    faster = (
        f", {source_p50 / best.metrics[P50]:.1f}x the source's speed"
        if source_p50 and best.metrics[P50] > 0
        else ""
    )
    qualified = sum(v.qualifies for v in verdicts)
    reason = (
        f"{best.name}@{best.version} ({_method(best) or 'optimised'}) has the lowest p50 latency "
        f"({best.metrics[P50]:.3f} ms{faster}) of the {qualified} variant(s) within tolerance "
        f"(accuracy drop {best.metrics[DROP]:.4f} <= {best.metrics[TOLERANCE]:.4f})"
    )
    return VariantChoice(
        source=ref,
        chosen=best.version,
        method=_method(best),
        reason=reason,
        considered=verdicts,
    )


def _method(version: ModelVersion) -> str | None:
    method = version.lineage.optimisation.get("method")
    return str(method) if method is not None else version.quantization


class DeploymentReply(Deployment):
    """A new deployment, with the choice `deploy --optimize` made (None without it)."""

    optimisation: VariantChoice | None = None

    def deployment(self) -> Deployment:
        """The deployment alone, as `get_deployment` and `list_deployments` return it."""
        return Deployment.model_validate(self.model_dump(exclude={"optimisation"}))
