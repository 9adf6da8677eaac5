"""`modelhub alerts ...`: alert rules, the alerts they fired, acknowledgement."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from modelhub.cli.context import client_session
from modelhub.cli.render import console, print_json
from modelhub.domain.limits import INT64_MAX
from modelhub.errors import InvalidInput

if TYPE_CHECKING:
    from modelhub.domain.alerts import Alert, AlertRule

app = typer.Typer(help="Alert rules, firing alerts and acknowledgement.", no_args_is_help=True)
rules = typer.Typer(help="Add, list and remove alert rules.", no_args_is_help=True)
app.add_typer(rules, name="rules")

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]
IdArg = Annotated[int, typer.Argument(metavar="ID", min=1, max=INT64_MAX)]


def _one(options: dict[str, object], what: str) -> tuple[str, object]:
    given = [(n, v) for n, v in options.items() if v is not None and v is not False]
    if len(given) != 1:
        names = ", ".join(f"--{name.replace('_', '-')}" for name in options)
        raise InvalidInput(f"give exactly one {what}: {names}", {"options": list(options)})
    return given[0]


def _labels(pairs: list[str]) -> dict[str, str]:
    labels = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            raise InvalidInput(f"label {pair!r} is not KEY=VALUE", {"label": pair})
        labels[key] = value
    return labels


@rules.command("add")
def add(
    metric: Annotated[str, typer.Option(help="What to watch (see `alerts metrics`).")],
    model: Annotated[str | None, typer.Option(help="Watch this model.")] = None,
    deployment: Annotated[str | None, typer.Option(help="Watch this deployment.")] = None,
    run: Annotated[int | None, typer.Option(help="Watch this run.", min=1)] = None,
    platform: Annotated[bool, typer.Option("--platform", help="Watch the platform.")] = False,
    above: Annotated[float | None, typer.Option(help="True when the metric is > X.")] = None,
    below: Annotated[float | None, typer.Option(help="True when the metric is < X.")] = None,
    at_least: Annotated[float | None, typer.Option(help="True when the metric is >= X.")] = None,
    at_most: Annotated[float | None, typer.Option(help="True when the metric is <= X.")] = None,
    for_: Annotated[
        str | None, typer.Option("--for", help="Fire once true this long (5m, 1h).")
    ] = None,
    severity: Annotated[str, typer.Option(help="info, warning or critical.")] = "warning",
    webhook: Annotated[
        list[str] | None, typer.Option(help="Also notify this http(s) URL (repeatable).")
    ] = None,
    label: Annotated[
        list[str] | None, typer.Option(help="KEY=VALUE added to the alert (repeatable).")
    ] = None,
    name: Annotated[str | None, typer.Option(help="The rule's name (default from metric).")] = None,
    json: JsonOpt = False,
) -> None:
    """Add a rule: e.g. --model NAME --metric p99_latency_ms --above 50 --for 5m."""
    from modelhub.domain.alerts import AlertRuleDraft, Comparison, Scope, ScopeKind, parse_severity
    from modelhub.domain.auth import parse_duration

    kind, target = _one(
        {"model": model, "deployment": deployment, "run": run, "platform": platform}, "scope"
    )
    comparison, threshold = _one(
        {"above": above, "below": below, "at_least": at_least, "at_most": at_most},
        "comparison",
    )
    draft = AlertRuleDraft(
        metric=metric,
        comparison=Comparison(comparison),
        threshold=float(threshold),  # type: ignore[arg-type]
        for_seconds=parse_duration(for_, field="for").total_seconds() if for_ else 0.0,
        severity=parse_severity(severity),
        scope=Scope(kind=ScopeKind(kind), target="" if kind == "platform" else str(target)),
        name=name,
        labels=_labels(label or []),
        webhooks=webhook or [],
    ).checked()
    with client_session() as client:
        rule = client.add_alert_rule(draft)
    if json:
        print_json(rule.model_dump(mode="json"))
    else:
        console.print(f"rule {rule.id} {rule.name!r} added: {_condition(rule)}")


@rules.command("list")
def list_rules(json: JsonOpt = False) -> None:
    """The built-in training rules and the rules added here."""
    with client_session() as client:
        found = client.list_alert_rules()
    if json:
        print_json([r.model_dump(mode="json") for r in found])
        return
    table = Table()
    for column in ("id", "name", "scope", "condition", "severity", "webhooks", "by"):
        table.add_column(column)
    for r in found:
        table.add_row(
            "built-in" if r.builtin else str(r.id),
            r.name,
            r.scope.subject,
            r.description if r.builtin else _condition(r),
            r.severity.value,
            str(len(r.webhooks)),
            r.created_by,
        )
    console.print(table)


@rules.command("remove")
def remove(rule_id: IdArg, json: JsonOpt = False) -> None:
    """Remove a rule; its firing alerts resolve."""
    with client_session() as client:
        rule = client.remove_alert_rule(rule_id)
    if json:
        print_json(rule.model_dump(mode="json"))
    else:
        console.print(f"rule {rule.id} {rule.name!r} removed")


@app.command("list")
def list_alerts(
    firing: Annotated[bool, typer.Option("--firing", help="Only alerts firing now.")] = False,
    subject: Annotated[str | None, typer.Option(help="e.g. model:NAME, run:7.")] = None,
    limit: Annotated[int, typer.Option(help="At most this many, newest.", min=1)] = 200,
    json: JsonOpt = False,
) -> None:
    """Alerts, oldest first: pending, firing and resolved."""
    with client_session() as client:
        found = client.list_alerts(firing, subject, limit)
    if json:
        print_json([a.model_dump(mode="json") for a in found])
        return
    table = Table()
    for column in ("id", "state", "severity", "rule", "subject", "message", "fired", "ack"):
        table.add_column(column)
    for a in found:
        table.add_row(
            str(a.id),
            a.state,
            a.severity,
            a.rule,
            a.subject,
            a.message,
            _when(a.fired_at),
            a.acknowledged_by or "",
        )
    console.print(table)


@app.command()
def ack(alert_id: IdArg, json: JsonOpt = False) -> None:
    """Acknowledge a firing alert (it stays firing until its condition clears)."""
    with client_session() as client:
        alert = client.ack_alert(alert_id)
    if json:
        print_json(alert.model_dump(mode="json"))
    else:
        console.print(_acked(alert))


@app.command()
def deliveries(alert_id: IdArg, json: JsonOpt = False) -> None:
    """Each webhook delivery attempt of one alert."""
    with client_session() as client:
        found = client.alert_deliveries(alert_id)
    if json:
        print_json([d.model_dump(mode="json") for d in found])
        return
    table = Table()
    for column in ("attempt", "url", "told", "outcome", "status", "error", "at"):
        table.add_column(column)
    for d in found:
        code = str(d.status_code or "")
        table.add_row(str(d.attempt), d.url, d.status, d.outcome, code, d.error or "", _when(d.at))
    console.print(table)


@app.command()
def metrics(json: JsonOpt = False) -> None:
    """The metrics a rule may name, and the scopes each applies to."""
    with client_session() as client:
        found = client.alert_metrics()
    if json:
        print_json([m.model_dump(mode="json") for m in found])
        return
    table = Table()
    for column in ("metric", "scopes", "what"):
        table.add_column(column)
    for m in found:
        table.add_row(m.name, ", ".join(m.scopes), m.description)
    console.print(table)


def _condition(rule: AlertRule) -> str:
    span = f" for {rule.for_seconds:g}s" if rule.for_seconds else ""
    return f"{rule.metric} {rule.comparison.symbol} {rule.threshold:g}{span}"


def _acked(alert: Alert) -> str:
    who = alert.acknowledged_by
    return f"alert {alert.id} ({alert.rule} on {alert.subject}) acknowledged by {who}"


def _when(at: datetime) -> str:
    return at.strftime("%Y-%m-%d %H:%M:%S")
