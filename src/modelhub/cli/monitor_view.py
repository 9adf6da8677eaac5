"""The monitor report as Rich tables: health first, then figures, findings and advice."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from rich.table import Table
from rich.text import Text

from modelhub.cli.deployment_view import milliseconds
from modelhub.cli.render import human_size

if TYPE_CHECKING:
    from rich.console import RenderableType

    from modelhub.domain.monitor_report import MonitorReport, Performance, Trend

ARROWS = {"up": "▲", "down": "▼", "flat": "▶", "new": "new", "gone": "gone"}


def report_views(report: MonitorReport) -> Iterator[RenderableType]:
    """Everything `modelhub monitor NAME` prints, section by section."""
    yield _heading(report)
    yield _health(report)
    if report.performance is not None:
        yield _figures(report.performance, {t.metric: t for t in report.trends}, report)
        if len(report.performance.versions) > 1:
            yield _versions(report.performance)
    if report.degradation:
        yield _degradation(report)
    if report.drift is not None:
        yield _drift(report)
    if report.deployments:
        yield _deployments(report)
    if report.alerts:
        yield _alerts(report)
    yield _recommendations(report)
    if report.notes:
        yield _notes(report)


def _plain(text: str, style: str = "") -> Text:
    return Text(text, style=style)


def _heading(report: MonitorReport) -> Text:
    title = report.model + (f"@{report.version}" if report.version else "")
    text = Text(title, style="bold")
    text.append(
        f"  last {report.since}: {report.start:%Y-%m-%d %H:%M} to {report.end:%Y-%m-%d %H:%M} UTC",
        style="dim",
    )
    return text


def _health(report: MonitorReport) -> Table:
    score = report.health.score
    colour = "green" if score >= 90 else "yellow" if score >= 70 else "red"
    table = Table(title=Text(f"health {score}/100", style=f"bold {colour}"), title_justify="left")
    table.add_column("part")
    table.add_column("points", justify="right")
    table.add_column("figure")
    for part in report.health.parts:
        table.add_row(_plain(part.part), f"-{part.points:g}", _plain(part.figure))
    if not report.health.parts:
        table.add_row("-", "0", "nothing lowered the score")
    return table


def _arrow(trend: Trend | None) -> Text:
    if trend is None:
        return Text("")
    change = f" {trend.change:+.0%}" if trend.change is not None else ""
    style = "" if trend.better is None else ("green" if trend.better else "red")
    return Text(ARROWS[trend.direction] + change, style=style)


def _figures(performance: Performance, trends: dict[str, Trend], report: MonitorReport) -> Table:
    table = Table(title="performance", title_justify="left")
    table.add_column("figure")
    table.add_column("value", justify="right")
    table.add_column("vs previous window")
    rows: list[tuple[str, str, str]] = [
        ("requests", f"{performance.requests:,}", "requests"),
        ("throughput", f"{performance.throughput_rps:.3g} req/s", "throughput_rps"),
        ("latency p50", milliseconds(performance.p50_ms), "p50_ms"),
        ("latency p95", milliseconds(performance.p95_ms), "p95_ms"),
        ("latency p99", milliseconds(performance.p99_ms), "p99_ms"),
        ("error rate", f"{performance.error_rate:.2%}", "error_rate"),
        ("in flight (peak)", str(performance.in_flight_peak), ""),
        ("memory (RSS)", human_size(performance.rss_bytes), "rss_bytes"),
        ("CPU", _percent(performance.cpu_percent), "cpu_percent"),
    ]
    if performance.gpu_util is not None:
        rows.append(("GPU", _percent(performance.gpu_util), ""))
        rows.append(("GPU memory", human_size(performance.gpu_memory_bytes), ""))
    accuracy = report.accuracy
    if accuracy is not None and accuracy.value is not None:
        shown = f"{accuracy.value:.3f} ({accuracy.labelled} labelled)"
        rows.append((f"{accuracy.metric} (feedback)", shown, accuracy.metric))
    cost = report.cost
    if cost is not None:
        per = f", {cost.per_1000_requests:.4f}/1k req" if cost.per_1000_requests else ""
        rows.append(("cost", f"{cost.total:.2f} {cost.currency}{per}", "cost"))
    if performance.errors_by_kind:
        kinds = ", ".join(f"{k} {n:,}" for k, n in sorted(performance.errors_by_kind.items()))
        rows.insert(6, ("errors by kind", kinds, ""))
    for name, value, key in rows:
        table.add_row(name, _plain(value), _arrow(trends.get(key)))
    return table


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f} %"


def _versions(performance: Performance) -> Table:
    table = Table(title="per version", title_justify="left")
    for column in ("version", "requests", "errors", "error rate", "p50", "p99"):
        table.add_column(column, justify="right")
    for v in performance.versions:
        table.add_row(
            str(v.version),
            f"{v.requests:,}",
            f"{v.errors:,}",
            f"{v.error_rate:.2%}",
            milliseconds(v.p50_ms),
            milliseconds(v.p99_ms),
        )
    return table


def _degradation(report: MonitorReport) -> Table:
    table = Table(title="degradation against the previous window", title_justify="left")
    for column in ("metric", "test", "statistic", "p-value", "verdict"):
        table.add_column(column)
    for v in report.degradation:
        verdict = Text("degraded", style="red") if v.degraded else Text("ok", style="green")
        table.add_row(v.metric, v.test, f"{v.statistic:.3g}", f"{v.p_value:.2g}", verdict)
    return table


def _drift(report: MonitorReport) -> Table:
    drift = report.drift
    assert drift is not None
    verdict = "drifted" if drift.drifted else "no drift"
    table = Table(title=f"drift of version {drift.version}: {verdict}", title_justify="left")
    for column in ("feature", "test", "statistic", "p-value / distance", "threshold", "verdict"):
        table.add_column(column)
    for f in drift.features:
        measured = f.p_value if f.p_value is not None else f.distance
        table.add_row(
            _plain(f.feature),
            f.test,
            f"{f.statistic:.3g}",
            "-" if measured is None else f"{measured:.3g}",
            f"{f.threshold:.3g}",
            Text("drifted", style="red") if f.drifted else Text("ok", style="green"),
        )
    return table


def _deployments(report: MonitorReport) -> Table:
    table = Table(title="deployments", title_justify="left")
    for column in ("deployment", "environment", "versions", "status", "ready"):
        table.add_column(column)
    for d in report.deployments:
        versions = ", ".join(map(str, d.versions))
        ready = f"{d.healthy_replicas}/{d.replicas}"
        table.add_row(d.name, d.environment, versions, d.status, ready)
    return table


def _alerts(report: MonitorReport) -> Table:
    table = Table(title="alerts", title_justify="left")
    for column in ("rule", "severity", "state", "fired", "message"):
        table.add_column(column)
    for a in report.alerts:
        fired = f"{a.fired_at:%Y-%m-%d %H:%M}"
        table.add_row(_plain(a.rule), a.severity, a.state, fired, _plain(a.message))
    return table


def _recommendations(report: MonitorReport) -> Table:
    table = Table(title="recommendations", title_justify="left", show_lines=True)
    table.add_column("do")
    table.add_column("because")
    table.add_column("command")
    for r in report.recommendations:
        table.add_row(_plain(r.action), _plain(r.seen), _plain(r.command or "-"))
    if not report.recommendations:
        table.add_row("nothing", "no figure calls for action", "-")
    return table


def _notes(report: MonitorReport) -> Table:
    table = Table(title="not in this report", title_justify="left", show_header=False)
    table.add_column("section", style="bold")
    table.add_column("why")
    for section, note in sorted(report.notes.items()):
        table.add_row(section, _plain(note))
    return table
