"""How `deployments show` presents the automated canary analysis."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.console import Group
from rich.table import Table
from rich.text import Text

if TYPE_CHECKING:
    from modelhub.domain.canary import CanaryDecision, CanaryStatus
    from modelhub.domain.degradation import Verdict


def canary_view(status: CanaryStatus) -> Group | None:
    """The canary in place and the latest decision; None when there is neither."""
    parts: list[Text | Table] = []
    analysis = status.analysis
    if analysis is not None:
        parts.append(
            Text(
                f"canary analysis: auto since {analysis.started_at:%Y-%m-%d %H:%M:%S} UTC: "
                f"decides after {analysis.min_requests} canary requests (within "
                f"{analysis.max_seconds:g} s), alpha {analysis.alpha:g}, "
                f"minimum effect {analysis.min_effect:.0%}"
            )
        )
    if status.latest is not None:
        parts.extend(decision_view(status.latest))
    return Group(*parts) if parts else None


def decision_view(decision: CanaryDecision) -> list[Text | Table]:
    heading = Text(
        f"canary decision {decision.decided_at:%Y-%m-%d %H:%M:%S} UTC: "
        f"{decision.outcome.value} v{decision.canary.version} "
        f"(stable v{decision.stable.version}): {decision.reason}"
    )
    figures = Table(title="canary against stable, since the canary started")
    for column in ("version", "requests", "errors", "error rate", "p50 ms", "p99 ms", "labelled"):
        figures.add_column(column, justify="right")
    for side in (decision.stable, decision.canary):
        rate = f"{side.errors / side.requests:.2%}" if side.requests else "-"
        figures.add_row(
            f"v{side.version}",
            str(side.requests),
            str(side.errors),
            rate,
            _number(side.p50_ms),
            _number(side.p99_ms),
            str(side.labelled),
        )
    parts: list[Text | Table] = [heading, figures]
    if decision.verdicts:
        parts.append(verdicts_table(decision.verdicts))
    return parts


def verdicts_table(verdicts: list[Verdict]) -> Table:
    table = Table(title="tests")
    for column in ("metric", "test", "stable", "canary", "effect", "p-value", "worse", "why"):
        table.add_column(column)
    for v in verdicts:
        if v.effect is None:
            effect = "from 0" if v.tested else "-"
        elif v.effect_kind == "absolute":
            effect = f"{v.effect * 100:+.1f} pt"
        else:
            effect = f"{v.effect:+.1%}"
        table.add_row(
            v.metric.value,
            v.test,
            _number(v.baseline),
            _number(v.current),
            effect,
            f"{v.p_value:.3g}" if v.p_value is not None else "-",
            "yes" if v.worse else "no",
            v.reason,
        )
    return table


def _number(value: float | None) -> str:
    return "-" if value is None else f"{value:.4g}"
