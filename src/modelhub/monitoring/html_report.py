"""The monitor report as one self-contained HTML page: inline CSS and SVG, no script.

Model names, alert messages, feature names and notes are user input: every string
goes through `html.escape` on its way into the page, and the page loads nothing (no
script, stylesheet, font or image from anywhere), so it opens the same offline.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import timedelta
from html import escape

from modelhub.domain.monitor_report import MonitorReport, Performance, Trend
from modelhub.monitoring.svg_charts import line_chart

STYLE = """
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,sans-serif;margin:2rem auto;
max-width:72rem;padding:0 1rem;color:#111827}
h1{margin-bottom:.2rem}h2{margin-top:2rem;border-bottom:1px solid #e5e7eb}
.sub{color:#6b7280}.score{font-size:3rem;font-weight:700}
.good{color:#059669}.fair{color:#d97706}.poor{color:#dc2626}
table{border-collapse:collapse;margin:.5rem 0}td,th{padding:.25rem .75rem;text-align:left;
border-bottom:1px solid #f3f4f6}th{color:#374151}
.charts{display:flex;flex-wrap:wrap;gap:1rem}
svg text{font-size:11px;fill:#374151}svg .title{font-weight:600;font-size:12px}
svg .axis{stroke:#9ca3af}polyline{stroke-width:1.5}
.note{color:#6b7280;font-style:italic}code{background:#f3f4f6;padding:0 .25rem}
"""
ARROWS = {"up": "&#9650;", "down": "&#9660;", "flat": "&#9654;", "new": "new", "gone": "gone"}


def render(report: MonitorReport) -> str:
    title = f"{report.model}" + (f"@{report.version}" if report.version else "")
    sections = [
        _health(report),
        _figures(report),
        _charts(report),
        _degradation(report),
        _drift(report),
        _accuracy_and_cost(report),
        _deployments(report),
        _alerts(report),
        _recommendations(report),
        _notes(report),
    ]
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        f"<title>modelhub monitor: {escape(title)}</title><style>{STYLE}</style></head><body>"
        f"<h1>{escape(title)}</h1>"
        f'<p class="sub">last {escape(report.since)}: {report.start:%Y-%m-%d %H:%M} to '
        f"{report.end:%Y-%m-%d %H:%M} UTC; generated {report.generated_at:%Y-%m-%d %H:%M:%S} "
        "UTC</p>" + "".join(sections) + "</body></html>"
    )


def _table(headers: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    body = "".join(
        "<tr>" + "".join(f"<td>{escape(_text(cell))}</td>" for cell in row) + "</tr>"
        for row in rows
    )
    return f"<table><tr>{head}</tr>{body}</table>"


def _text(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _health(report: MonitorReport) -> str:
    score = report.health.score
    grade = "good" if score >= 90 else "fair" if score >= 70 else "poor"
    parts = _table(
        ("part", "points", "figure", "meaning"),
        ((p.part, f"-{p.points:g}", p.figure, p.detail) for p in report.health.parts),
    )
    shown = parts if report.health.parts else '<p class="note">nothing lowered the score</p>'
    return f'<h2>Health</h2><div class="score {grade}">{score}/100</div>{shown}'


def _arrow(trend: Trend | None) -> str:
    if trend is None:
        return ""
    change = f" {trend.change:+.0%}" if trend.change is not None else ""
    verdict = "" if trend.better is None else (" better" if trend.better else " worse")
    return f"{trend.direction}{change}{verdict}"


def _figures(report: MonitorReport) -> str:
    performance = report.performance
    if performance is None:
        return ""
    trends = {t.metric: t for t in report.trends}
    rows: list[tuple[str, object, str]] = [
        ("requests", performance.requests, "requests"),
        ("throughput (req/s)", round(performance.throughput_rps, 3), "throughput_rps"),
        ("latency p50 (ms)", performance.p50_ms, "p50_ms"),
        ("latency p95 (ms)", performance.p95_ms, "p95_ms"),
        ("latency p99 (ms)", performance.p99_ms, "p99_ms"),
        ("error rate", f"{performance.error_rate:.2%}", "error_rate"),
        ("errors by kind", _kinds(performance.errors_by_kind), ""),
        ("in flight (peak)", performance.in_flight_peak, ""),
        ("CPU (%)", performance.cpu_percent, "cpu_percent"),
        ("memory (RSS bytes)", performance.rss_bytes, "rss_bytes"),
    ]
    if performance.gpu_util is not None:
        rows.append(("GPU utilisation (%)", performance.gpu_util, ""))
        rows.append(("GPU memory (bytes)", performance.gpu_memory_bytes, ""))
    table = _table(
        ("figure", "value", "against previous window"),
        ((name, value, _arrow(trends.get(key))) for name, value, key in rows),
    )
    versions = _table(
        ("version", "requests", "errors", "error rate", "p50 ms", "p99 ms"),
        (
            (v.version, v.requests, v.errors, f"{v.error_rate:.2%}", v.p50_ms, v.p99_ms)
            for v in performance.versions
        ),
    )
    return f"<h2>Performance</h2>{table}<h3>Per version</h3>{versions}"


def _kinds(errors_by_kind: dict[str, int]) -> str:
    return ", ".join(f"{kind} {count}" for kind, count in sorted(errors_by_kind.items())) or "-"


def _charts(report: MonitorReport) -> str:
    charts = []
    if report.performance is not None and report.performance.series:
        charts.extend(_performance_charts(report.performance))
    if report.accuracy is not None and report.accuracy.series:
        points = [(p.at, p.value) for p in report.accuracy.series]
        charts.append(line_chart(report.accuracy.metric, {report.accuracy.metric: points}, ""))
    if not charts:
        return ""
    return '<h2>Over the window</h2><div class="charts">' + "".join(charts) + "</div>"


def _performance_charts(performance: Performance) -> list[str]:
    series = performance.series
    step = (series[1].at - series[0].at) if len(series) > 1 else timedelta(minutes=1)
    seconds = step.total_seconds() or 60.0
    latency = {
        name: [(p.at, getattr(p, f"{name}_ms")) for p in series] for name in ("p50", "p95", "p99")
    }
    throughput = {"requests/s": [(p.at, p.requests / seconds) for p in series]}
    errors = {
        "error rate %": [
            (p.at, 100 * p.errors / p.requests if p.requests else None) for p in series
        ]
    }
    return [
        line_chart("Latency percentiles", latency, "ms"),
        line_chart("Throughput", throughput, "req/s"),
        line_chart("Error rate", errors, "%"),
    ]


def _degradation(report: MonitorReport) -> str:
    if not report.degradation:
        return ""
    rows = (
        (v.metric, v.test, v.statistic, v.p_value, v.baseline, v.current,
         "DEGRADED" if v.degraded else "ok")
        for v in report.degradation
    )  # fmt: skip
    headers = ("metric", "test", "statistic", "p-value", "previous", "now", "verdict")
    return "<h2>Degradation against the previous window</h2>" + _table(headers, rows)


def _drift(report: MonitorReport) -> str:
    drift = report.drift
    if drift is None:
        return ""
    verdict = "drifted" if drift.drifted else "no drift"
    rows = (
        (f.feature, f.test, f.statistic, f.p_value, f.distance, f.threshold,
         "DRIFTED" if f.drifted else "ok")
        for f in drift.features
    )  # fmt: skip
    headers = ("feature", "test", "statistic", "p-value", "distance", "threshold", "verdict")
    return f"<h2>Drift of version {drift.version}: {escape(verdict)}</h2>" + _table(headers, rows)


def _accuracy_and_cost(report: MonitorReport) -> str:
    html = ""
    accuracy = report.accuracy
    if accuracy is not None:
        html += "<h2>Accuracy from feedback</h2>" + _table(
            (accuracy.metric, "previous window", "labelled", "predictions"),
            [(accuracy.value, accuracy.previous, accuracy.labelled, accuracy.predictions)],
        )
    cost = report.cost
    if cost is not None:
        html += "<h2>Cost</h2>" + _table(
            (f"total ({cost.currency})", "previous window", "per 1,000 requests"),
            [(round(cost.total, 4), cost.previous_total, cost.per_1000_requests)],
        )
    return html


def _deployments(report: MonitorReport) -> str:
    if not report.deployments:
        return ""
    rows = (
        (d.name, d.environment, ", ".join(map(str, d.versions)), d.status,
         f"{d.healthy_replicas}/{d.replicas}")
        for d in report.deployments
    )  # fmt: skip
    headers = ("deployment", "environment", "versions", "status", "ready replicas")
    return "<h2>Deployments</h2>" + _table(headers, rows)


def _alerts(report: MonitorReport) -> str:
    if not report.alerts:
        return ""
    rows = (
        (a.rule, a.severity, a.state, a.subject, a.message, f"{a.fired_at:%Y-%m-%d %H:%M}")
        for a in report.alerts
    )
    return "<h2>Alerts</h2>" + _table(
        ("rule", "severity", "state", "subject", "message", "fired (UTC)"), rows
    )


def _recommendations(report: MonitorReport) -> str:
    if not report.recommendations:
        return '<h2>Recommendations</h2><p class="note">none: nothing to act on</p>'
    items = "".join(
        f"<li><strong>{escape(r.kind.replace('_', ' '))}</strong>: {escape(r.seen)}. "
        f"{escape(r.action)}."
        + (f" <code>{escape(r.command)}</code>" if r.command else "")
        + "</li>"
        for r in report.recommendations
    )
    return f"<h2>Recommendations</h2><ul>{items}</ul>"


def _notes(report: MonitorReport) -> str:
    if not report.notes:
        return ""
    items = "".join(
        f"<li><strong>{escape(section)}</strong>: {escape(note)}</li>"
        for section, note in sorted(report.notes.items())
    )
    return f'<h2>Not in this report</h2><ul class="note">{items}</ul>'
