"""`modelhub predictions ...` and `modelhub feedback`: the prediction log, labels, accuracy."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from modelhub.cli.context import client_session
from modelhub.cli.render import console, print_json

app = typer.Typer(help="The prediction log: sampled requests, accuracy from feedback.")

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]
ModelArg = Annotated[str, typer.Argument(help="The model's name.", metavar="MODEL")]
SinceOpt = Annotated[str, typer.Option("--since", help="How far back: 30m, 24h, 7d.")]
VersionOpt = Annotated[int | None, typer.Option("--version", help="Only this version.")]


@app.command("list")
def list_predictions(
    model: ModelArg,
    since: SinceOpt = "24h",
    limit: Annotated[int, typer.Option(help="At most this many, newest first.")] = 20,
    version: VersionOpt = None,
    json: JsonOpt = False,
) -> None:
    """The newest sampled requests of a model: id, version, latency, prediction, label."""
    with client_session() as client:
        found = client.list_predictions(model, since, limit, version)
    if json:
        print_json(found)
        return
    table = Table("request id", "version", "deployment", "at", "ms", "prediction", "label")
    for p in found:
        table.add_row(
            p.request_id,
            str(p.version),
            p.deployment,
            p.at.strftime("%Y-%m-%d %H:%M:%S"),
            f"{p.latency_ms:.2f}",
            _short(p.prediction),
            "-" if p.label is None else _short(p.label),
        )
    console.print(table)


@app.command("accuracy")
def accuracy(
    model: ModelArg, since: SinceOpt = "24h", version: VersionOpt = None, json: JsonOpt = False
) -> None:
    """Accuracy (classification) or mean absolute error (regression) from feedback."""
    with client_session() as client:
        summary = client.accuracy(model, since, version)
    if json:
        print_json(summary)
        return
    shown = "-" if summary.value is None else f"{summary.value:.4f}"
    console.print(
        f"{model}: {summary.metric} {shown} from {summary.labelled} labelled of "
        f"{summary.predictions} logged rows",
        markup=False,
        highlight=False,
    )
    table = Table("version", summary.metric, "labelled", "logged")
    for v in summary.per_version:
        value = "-" if v.value is None else f"{v.value:.4f}"
        table.add_row(str(v.version), value, str(v.labelled), str(v.predictions))
    console.print(table)


@app.command("log")
def set_log(
    deployment: Annotated[str, typer.Argument(help="The deployment's name.", metavar="NAME")],
    rate: Annotated[float, typer.Option("--rate", help="Share of requests logged, 0-1.")],
    max_per_minute: Annotated[
        int | None, typer.Option("--max-per-minute", help="Most requests logged a minute.")
    ] = None,
    json: JsonOpt = False,
) -> None:
    """Change how much of a deployment's traffic the prediction log samples."""
    from modelhub.cli.deployment_input import log_policy

    policy = log_policy(rate, max_per_minute)
    assert policy is not None
    with client_session() as client:
        changed = client.set_prediction_log(deployment, policy)
    if json:
        print_json(changed)
    else:
        console.print(
            f"{deployment}: logging {policy.rate:.0%} of requests, "
            f"at most {policy.max_per_minute} a minute",
            markup=False,
            highlight=False,
        )


def feedback(
    model: ModelArg,
    file: Annotated[
        Path,
        typer.Option("--file", help='JSON lines: {"request_id": "...", "label": ...}', exists=True),
    ],
    json: JsonOpt = False,
) -> None:
    """Send ground truth for logged predictions, joined to them by request id."""
    with client_session() as client:
        outcome = client.send_feedback(model, file)
    if json:
        print_json(outcome)
        return
    console.print(
        f"{model}: {outcome.stored} labels stored ({outcome.replaced} replaced), "
        f"{outcome.unknown} request ids never logged, of {outcome.lines} lines",
        markup=False,
        highlight=False,
    )


def _short(value: object) -> str:
    text = str(value)
    return text if len(text) <= 40 else text[:37] + "..."
