"""`modelhub governance assess-bias`: a version's answers judged across groups of people."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from modelhub.cli.context import client_session
from modelhub.cli.drift import resolve_version
from modelhub.cli.governance_app import app
from modelhub.cli.options import options_from
from modelhub.cli.render import console, print_json

if TYPE_CHECKING:
    from modelhub.domain.governance import Assessment


@app.command("assess-bias")
def assess_bias(
    ref: Annotated[str, typer.Argument(help="MODEL@VERSION (or MODEL@ALIAS, MODEL for latest)")],
    data: Annotated[
        Path, typer.Option("--data", help="Labelled rows: a .csv, .jsonl or .parquet file.")
    ],
    sensitive: Annotated[
        str,
        typer.Option(
            "--sensitive",
            help="Sensitive columns, comma-separated (gender,age_band): each "
            "alone and, when several, their intersection.",
        ),
    ],
    label: Annotated[str, typer.Option("--label", help="The column of true labels.")],
    positive: Annotated[
        str | None,
        typer.Option(help="The positive class of a binary model (default: the second in order)."),
    ] = None,
    format: Annotated[
        str | None, typer.Option(help="csv, jsonl or parquet; default from the name.")
    ] = None,
    output: Annotated[
        Path | None, typer.Option("-o", "--output", help="Write the chart (PNG) here.")
    ] = None,
    json: Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")] = False,
) -> None:
    """Run the version over labelled data and judge its fairness against the policy's bars."""
    from modelhub.domain.bias import BiasOptions

    columns = [name.strip() for name in sensitive.split(",") if name.strip()]
    options = options_from(
        BiasOptions, sensitive=columns, label=label, positive=positive, format=format
    )
    with client_session() as client:
        name, version = resolve_version(client, ref)
        assessment = client.assess_bias(name, version, data, options)
        chart = client.bias_chart(name, version, assessment.id) if output is not None else None
    if output is not None and chart is not None:
        output.write_bytes(chart)
    if json:
        print_json(assessment)
    else:
        print_assessment(assessment)
        if output is not None:
            console.print(f"chart written to {output}")


def print_assessment(assessment: Assessment) -> None:
    from rich.table import Table

    figures = assessment.figures
    where = f"{assessment.model}@{assessment.version}"
    if figures["mode"] == "binary":
        judged = f"positive class {figures['positive']} ({figures['positive_chosen']})"
    else:
        judged = f"{len(figures['classes'])} classes, one-vs-rest, the worst deciding"
    console.print(
        f"bias of [bold]{where}[/] on {figures.get('data', 'the data')}: "
        f"{figures['rows']:,} rows, {judged}, policy version {assessment.policy_version}"
    )
    for grouping in figures["groupings"]:
        shown = _shown_class(grouping, figures)
        table = Table(title=f"{grouping['name']} (class {shown})", title_justify="left")
        for column in ("group", "rows", "accuracy", "selection", "false pos.", "false neg.",
                       "judged"):  # fmt: skip
            table.add_column(column)
        for group in grouping["groups"]:
            rates = group["rates"].get(shown, {})
            table.add_row(
                group["group"],
                f"{group['size']:,}",
                _rate(group["accuracy"]),
                _rate(rates.get("selection_rate")),
                _rate(rates.get("false_positive_rate")),
                _rate(rates.get("false_negative_rate")),
                "yes" if group["judged"] else "[yellow]too small[/]",
            )
        console.print(table)
        if grouping["reason"]:
            console.print(f"[red]not judged[/]: {grouping['reason']}")
    checks = Table(title="against the policy", title_justify="left")
    for column in ("grouping", "class", "figure", "value", "bar", "verdict"):
        checks.add_column(column)
    for check in figures["checks"]:
        bar = f"{'≤' if check['at'] == 'most' else '≥'} {check['bar']:g}"
        checks.add_row(
            check["grouping"],
            check["class"],
            check["figure"],
            _rate(check["value"]),
            bar,
            "[green]pass[/]" if check["passed"] else "[red]FAIL[/]",
        )
    console.print(checks)
    verdict = "[green]PASSED[/]" if assessment.passed else "[red]FAILED[/]"
    console.print(f"{verdict}: {assessment.summary}")


def _shown_class(grouping: dict[str, Any], figures: dict[str, Any]) -> str:
    if figures["mode"] == "binary":
        return str(figures["positive"])
    worst = grouping["worst"].get("demographic_parity_difference")
    return str(worst["class"]) if worst else str(figures["classes"][0])


def _rate(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"
