"""How the CLI shows cost summaries, reports, budgets and the platform's figures."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.table import Table

from modelhub.cli.render import human_size
from modelhub.cli.run_view import duration

if TYPE_CHECKING:
    from modelhub.domain.cost import BudgetStatus, CostReport, CostSummary, PlatformFigures


def money(amount: float | None, currency: str) -> str:
    if amount is None:
        return "-"
    return f"{amount:,.4f} {currency}" if amount < 1 else f"{amount:,.2f} {currency}"


def hours(seconds: float) -> str:
    return f"{seconds / 3600:,.3f} h"


def cost_line(cost: CostSummary) -> str:
    """One line: the total, its parts, and (for runs) the estimate beside it."""
    parts = cost.parts
    shown = [
        f"{name} {money(value, cost.currency)}"
        for name, value in (
            ("cpu", parts.cpu),
            ("gpu", parts.gpu),
            ("replicas", parts.replicas),
            ("storage", parts.storage),
        )
        if value
    ]
    text = money(cost.total, cost.currency)
    if shown:
        text += f" ({', '.join(shown)})"
    if cost.cpu_seconds or cost.gpu_seconds:
        text += f"; measured {cost.cpu_seconds:,.1f} CPU-s, {cost.gpu_seconds:,.1f} GPU-s"
    if cost.replica_seconds:
        text += f"; {hours(cost.replica_seconds)} of replicas"
    if cost.per_1000_requests is not None:
        text += f"; {money(cost.per_1000_requests, cost.currency)} per 1,000 requests"
    if cost.estimate is not None:
        text += f"; estimated before the run: {money(cost.estimate, cost.currency)}"
    return text


def report_table(report: CostReport) -> Table:
    table = Table(
        title=f"cost by {report.by}, {report.window_start:%Y-%m-%d %H:%M} to "
        f"{report.window_end:%Y-%m-%d %H:%M} UTC",
        caption=f"total {money(report.total, report.currency)}; stored "
        f"{human_size(report.storage_bytes)}, deduplication saved "
        f"{human_size(report.dedup_saved_bytes)}",
    )
    table.add_column(report.by, style="bold", no_wrap=True)
    for column in ("total", "cpu", "gpu", "replicas", "storage", "per 1k req"):
        table.add_column(column, justify="right")
    for row in report.rows:
        cost, currency = row.cost, row.cost.currency
        table.add_row(
            row.key,
            money(cost.total, currency),
            money(cost.parts.cpu, currency),
            money(cost.parts.gpu, currency),
            money(cost.parts.replicas, currency),
            money(cost.parts.storage, currency),
            money(cost.per_1000_requests, currency),
        )
    return table


def budgets_table(budgets: list[BudgetStatus]) -> Table:
    table = Table()
    for column in ("id", "budget", "monthly", "spent", "used", "month", "alerted"):
        table.add_column(column)
    for status in budgets:
        budget = status.budget
        table.add_row(
            str(budget.id),
            budget.label,
            money(budget.monthly, budget.currency),
            money(status.spent, budget.currency),
            f"{status.ratio:.0%}",
            status.month,
            ", ".join(f"{t} %" for t in status.fired) or "-",
        )
    return table


def _ratio(value: float | None) -> str:
    return "-" if value is None else f"{value:.1%}"


def figures_tables(figures: PlatformFigures) -> list[Table]:
    training = Table(title="training")
    for column in ("engine", "finished", "success", "wait p50", "wait p95", "avg job", "util"):
        training.add_column(column)
    for found in [*figures.training, figures.platform]:
        training.add_row(
            found.engine,
            str(found.runs_finished),
            _ratio(found.success_ratio),
            duration(found.queue_wait_median_seconds),
            duration(found.queue_wait_p95_seconds),
            duration(found.job_seconds_avg),
            _ratio(found.utilisation_ratio),
        )
    serving = Table(title=f"deployment uptime (platform {_ratio(figures.uptime_ratio)})")
    for column in ("deployment", "observed", "up", "uptime"):
        serving.add_column(column)
    for d in figures.deployments:
        serving.add_row(
            d.deployment, hours(d.seconds_observed), hours(d.seconds_up), _ratio(d.uptime_ratio)
        )
    return [training, serving]
