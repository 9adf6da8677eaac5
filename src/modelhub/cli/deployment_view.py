"""How the CLI shows deployments, their usage and inference answers."""

from __future__ import annotations

import math
import shlex
from typing import TYPE_CHECKING, Any

from rich.table import Table

if TYPE_CHECKING:
    from modelhub.domain.deployments import Deployment, UsageRecord

FIRST_VALUES = 6


def traffic_text(deployment: Deployment) -> str:
    return " / ".join(f"v{s.version} {s.percent}%" for s in deployment.traffic)


def replicas_text(deployment: Deployment) -> str:
    text = str(deployment.replicas)
    scale = deployment.autoscale
    if scale is not None:
        text += (
            f" (autoscale {scale.min_replicas}:{scale.max_replicas}, "
            f"target {scale.target_in_flight:g} in flight each)"
        )
    return text


def deployments_table(deployments: list[Deployment]) -> Table:
    table = Table()
    table.add_column("name", no_wrap=True, style="bold")
    for column in ("model", "env", "status", "traffic", "replicas", "endpoint"):
        table.add_column(column)
    for d in deployments:
        table.add_row(
            d.name,
            d.model,
            d.environment.value,
            d.status.value + (" (error)" if d.error else ""),
            traffic_text(d),
            str(d.replicas),
            d.endpoint or "-",
        )
    return table


def prediction_log_text(d: Deployment) -> str:
    policy = d.prediction_log
    if policy is None or policy.rate == 0 or policy.max_per_minute == 0:
        return "off"
    return f"{policy.rate:.0%} of requests, at most {policy.max_per_minute} a minute"


def resources_text(d: Deployment) -> str:
    """Per replica, as recorded (memory in bytes); each replica's health says how it is held."""
    from modelhub.cli.render import human_size
    from modelhub.domain.resources import recorded_resources

    r = recorded_resources(d.resources)
    parts = [
        human_size(r.memory) if r.memory is not None else None,
        f"{r.cpus:g} CPUs" if r.cpus is not None else None,
        f"{r.gpus} GPUs" if r.gpus else None,
    ]
    shown = ", ".join(p for p in parts if p)
    return f"{shown} per replica" if shown else "no limits"


def deployment_details(d: Deployment) -> Table:
    table = Table(show_header=False, title=f"deployment {d.name}")
    table.add_column("field", style="bold")
    table.add_column("value")
    rows: list[tuple[str, str]] = [
        ("model", d.model),
        ("environment", d.environment.value),
        ("status", d.status.value),
        ("traffic", traffic_text(d)),
        ("previous version", str(d.previous_version or "-")),
        ("replicas", replicas_text(d)),
        ("load balancing", d.load_balancing.value),
        ("resources", resources_text(d)),
        ("prediction log", prediction_log_text(d)),
        ("endpoint", d.endpoint or "-"),
        ("error", d.error or "-"),
        ("approval override", "yes" if d.approval_override else "no"),
        ("created", f"{d.created_at:%Y-%m-%d %H:%M:%S} by {d.created_by}"),
        ("updated", f"{d.updated_at:%Y-%m-%d %H:%M:%S}"),
    ]
    for field, value in rows:
        table.add_row(field, value)
    return table


def health_table(d: Deployment) -> Table:
    table = Table(title="replicas")
    limited = any(h.limits for h in d.health)
    for column in ("pid", "port", "live", "ready", "restarts", "error"):
        table.add_column(column)
    if limited:
        table.add_column("limits")
    for h in d.health:
        row = [
            str(h.pid or "-"),
            str(h.port or "-"),
            "yes" if h.live else "no",
            "yes" if h.ready else "no",
            str(h.restarts),
            h.error or "-",
        ]
        table.add_row(*row, *([h.limits or "-"] if limited else []))
    return table


def latency_percentile(buckets: list[int], q: float) -> float | None:
    """The q-quantile (0-1) of latency in ms, estimated from bucket counts.

    Linear inside the bucket the rank falls in (as Prometheus' histogram_quantile);
    `inf` when it falls among the requests slower than the last bound; None without
    requests.
    """
    from modelhub.domain.deployments import LATENCY_BOUNDS_MS

    total = sum(buckets)
    if total <= 0:
        return None
    rank = q * total
    seen = 0
    for index, count in enumerate(buckets):
        if count > 0 and seen + count >= rank:
            if index >= len(LATENCY_BOUNDS_MS):
                return math.inf
            lower = LATENCY_BOUNDS_MS[index - 1] if index else 0.0
            upper = LATENCY_BOUNDS_MS[index]
            return lower + (upper - lower) * max(rank - seen, 0) / count
        seen += count
    return math.inf


def usage_summary(u: UsageRecord) -> dict[str, Any]:
    """The figures `deployments show` reports for one served version."""
    p50 = latency_percentile(u.latency_buckets, 0.5)
    p99 = latency_percentile(u.latency_buckets, 0.99)
    return {
        "version": u.version,
        "requests": u.requests,
        "errors": u.errors,
        "error_rate": u.errors / u.requests if u.requests else None,
        "mean_latency_ms": u.latency_ms_sum / u.requests if u.requests else None,
        # JSON has no infinity: null beside a count of requests means slower than the last bound.
        "p50_latency_ms": None if p50 is None or math.isinf(p50) else p50,
        "p99_latency_ms": None if p99 is None or math.isinf(p99) else p99,
        "active_callers": u.active_callers,
        "last_used": u.last_used.isoformat() if u.last_used else None,
    }


def milliseconds(value: float | None) -> str:
    if value is None:
        return "-"
    if math.isinf(value):
        from modelhub.domain.deployments import LATENCY_BOUNDS_MS

        return f"> {LATENCY_BOUNDS_MS[-1]:g} ms"
    return f"{value:.3g} ms"


def usage_table(usage: list[UsageRecord]) -> Table:
    table = Table(title="usage (since deployed)")
    for column in ("version", "requests", "errors", "error rate", "mean", "p50", "p99"):
        table.add_column(column, justify="right")
    table.add_column("active callers", justify="right")
    table.add_column("last used")
    for u in usage:
        rate = f"{u.errors / u.requests:.2%}" if u.requests else "-"
        mean = u.latency_ms_sum / u.requests if u.requests else None
        table.add_row(
            str(u.version),
            str(u.requests),
            str(u.errors),
            rate,
            milliseconds(mean),
            milliseconds(latency_percentile(u.latency_buckets, 0.5)),
            milliseconds(latency_percentile(u.latency_buckets, 0.99)),
            str(u.active_callers),
            f"{u.last_used:%Y-%m-%d %H:%M:%S}" if u.last_used else "-",
        )
    return table


def curl_line(base_url: str, name: str) -> str:
    """A request to paste: the platform's inference route, with the caller's token."""
    url = f"{base_url.rstrip('/')}/v2/models/{name}/infer"
    return (
        f'curl -s {shlex.quote(url)} -H "Authorization: Bearer $MODELHUB_TOKEN" '
        "-H 'content-type: application/json' -d @body.json"
    )


def outputs_table(answer: dict[str, Any]) -> Table:
    """An Open Inference Protocol answer: each output's name, type, shape, first values."""
    title = f"{answer.get('model_name', '?')} version {answer.get('model_version', '?')}"
    table = Table(title=title)
    for column in ("output", "datatype", "shape", "values"):
        table.add_column(column)
    for output in answer.get("outputs", []):
        data = output.get("data", [])
        values = data if isinstance(data, list) else [data]
        shown = ", ".join(_value(v) for v in values[:FIRST_VALUES])
        if len(values) > FIRST_VALUES:
            shown += f", ... ({len(values)} values)"
        table.add_row(
            str(output.get("name")),
            str(output.get("datatype", "-")),
            str(output.get("shape", "-")),
            shown,
        )
    return table


def _value(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)
