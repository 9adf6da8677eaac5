"""`modelhub governance explain NAME@V --data FILE`: which inputs move the version's answers."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from modelhub.cli.context import client_session
from modelhub.cli.drift import resolve_version
from modelhub.cli.governance_app import app
from modelhub.cli.options import options_from
from modelhub.cli.render import console, print_json

if TYPE_CHECKING:
    from modelhub.domain.explanation import Explanation

SHOWN = 15


@app.command()
def explain(
    ref: Annotated[str, typer.Argument(help="MODEL@VERSION (or MODEL@ALIAS, MODEL for latest)")],
    data: Annotated[
        Path, typer.Option("--data", help="A .csv, .jsonl or .parquet sample of inputs.")
    ],
    method: Annotated[
        str | None,
        typer.Option(
            help="integrated_gradients (PyTorch classifiers trained here) or permutation "
            "(any servable version); default: the first that applies."
        ),
    ] = None,
    label: Annotated[
        str | None,
        typer.Option(help="The label column: permutation then measures the drop in accuracy."),
    ] = None,
    row: Annotated[
        int | None, typer.Option(help="Also explain this one row (0-based) of the data.", min=0)
    ] = None,
    baseline: Annotated[
        str, typer.Option(help="Integrated Gradients' baseline for tables: mean or zeros.")
    ] = "mean",
    output: Annotated[
        Path | None, typer.Option("-o", "--output", help="Write the importance chart (PNG).")
    ] = None,
    format: Annotated[
        str | None, typer.Option(help="csv, jsonl or parquet; default from the name.")
    ] = None,
    json: Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")] = False,
) -> None:
    """Explain a version on sample data and record its explainability assessment."""
    from modelhub.domain.explanation import ExplainOptions

    options = options_from(
        ExplainOptions, method=method, label=label, row=row, baseline=baseline, format=format
    )
    with client_session() as client:
        name, version = resolve_version(client, ref)
        found = client.explain(name, version, data, options)
    if output is not None:
        output.write_bytes(base64.b64decode(found.chart_png))
    if json:
        print_json(found.model_dump(mode="json", exclude={"chart_png"}))
    else:
        print_explanation(found, output)


def print_explanation(found: Explanation, chart: Path | None) -> None:
    from rich.table import Table

    verdict = "[green]passed[/]" if found.assessment.passed else "[red]failed[/]"
    console.print(
        f"[bold]{found.model}@{found.version}[/] {found.method.value} on {found.rows:,} rows: "
        f"{verdict} ({found.assessment.summary})"
    )
    console.print(
        f"importance = {found.score}" + (f"; baseline {found.baseline}" if found.baseline else "")
    )
    if found.mean_relative_delta is not None:
        console.print(f"mean relative convergence delta {found.mean_relative_delta:.4g}")
    table = Table("#", "feature", "importance", "std")
    for place, item in enumerate(found.ranking[:SHOWN], 1):
        table.add_row(str(place), item.feature, f"{item.importance:.4g}", f"{item.std:.4g}")
    console.print(table)
    if len(found.ranking) > SHOWN:
        console.print(f"... and {len(found.ranking) - SHOWN} more (--json for all)")
    if found.local is not None:
        local = Table(
            "feature",
            "value",
            "attribution",
            title=f"row {found.local.row}: predicted {found.local.predicted}",
        )
        for one in found.local.attributions:
            value = (
                ""
                if one.value is None
                else f"{one.value:.6g}"
                if isinstance(one.value, float)
                else one.value
            )
            local.add_row(one.feature, value, f"{one.attribution:+.4g}")
        console.print(local)
    if chart is not None:
        console.print(f"chart written to {chart}")
