"""`modelhub drift ...`: a version's drift reference, and drift verdicts against it."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from modelhub.cli.context import client_session
from modelhub.cli.render import console, print_json
from modelhub.errors import InvalidInput

if TYPE_CHECKING:
    from modelhub.client.contract import ModelhubClient
    from modelhub.domain.drift import DriftReference, DriftReport

app = typer.Typer(
    help="Drift: set a version's reference data, compare live data against it.",
    no_args_is_help=True,
)

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]
RefArg = Annotated[str, typer.Argument(help="MODEL@VERSION (or MODEL@ALIAS, MODEL for latest)")]
FormatOpt = Annotated[
    str | None, typer.Option(help="csv, jsonl or parquet; default from the name.")
]


def resolve_version(client: ModelhubClient, ref: str) -> tuple[str, int]:
    """NAME@3 as is; NAME@ALIAS or NAME (latest) through the registry."""
    name, _, selector = ref.partition("@")
    if selector.isdigit():
        return name, int(selector)
    found = client.get(ref)
    return found.name, found.version


@app.command()
def reference(
    ref: RefArg,
    data: Annotated[
        Path | None, typer.Option("--data", help="A .csv, .jsonl or .parquet file to profile.")
    ] = None,
    format: FormatOpt = None,
    json: JsonOpt = False,
) -> None:
    """Set the version's drift reference from a data file, or show the one it has."""
    with client_session() as client:
        name, version = resolve_version(client, ref)
        found = (
            client.set_drift_reference(name, version, data, format)
            if data is not None
            else client.get_drift_reference(name, version)
        )
    if json:
        print_json(found)
    else:
        print_reference(found)


def print_reference(found: DriftReference) -> None:
    from modelhub.domain.drift import ReferenceStatus

    where = f"{found.model}@{found.version}"
    if found.status is ReferenceStatus.FAILED:
        console.print(f"[red]no usable drift reference[/] for {where}: {found.error}")
        return
    console.print(
        f"drift reference of [bold]{where}[/]: {found.source}, {found.rows:,} rows, "
        f"columns {', '.join(found.columns)} (sha256:{(found.digest or '')[:12]}, "
        f"{found.created_at:%Y-%m-%d %H:%M} by {found.created_by})"
    )


@app.command()
def check(
    ref: RefArg,
    since: Annotated[
        str, typer.Option(help="Live window: the version's logged requests over this long.")
    ] = "24h",
    data: Annotated[
        Path | None, typer.Option("--data", help="Compare this file instead of logged requests.")
    ] = None,
    format: FormatOpt = None,
    json: JsonOpt = False,
) -> None:
    """Compare live data with the version's reference, per feature and on outputs."""
    if format is not None and data is None:
        raise InvalidInput("--format describes a --data file; give one")
    with client_session() as client:
        name, version = resolve_version(client, ref)
        report = (
            client.compare_drift(name, version, data, format)
            if data is not None
            else client.drift(name, version, since)
        )
    if json:
        print_json(report)
    else:
        print_report(report)


def print_report(report: DriftReport) -> None:
    where = f"{report.model}@{report.version}"
    verdict = (
        f"[red]drift[/] in {', '.join(report.drifted_features)}"
        if report.drifted
        else "[green]no drift[/]"
    )
    console.print(
        f"{where} against {report.reference}: {verdict} "
        f"({report.live_rows:,} live rows, {report.correction} across features)"
    )
    table = Table()
    for column in ("feature", "role", "test", "statistic", "p / adj. p", "distance", "threshold",
                   "PSI", "drifted"):  # fmt: skip
        table.add_column(column)
    for v in report.features:
        p = f"{v.p_value:.3g} / {v.adjusted_p_value:.3g}" if v.p_value is not None else "-"
        table.add_row(
            v.feature,
            v.role,
            v.test.value,
            f"{v.statistic:.4g}",
            p,
            f"{v.distance:.4g}" if v.distance is not None else "-",
            (f"p < {v.threshold:g}" if v.p_value is not None else f">= {v.threshold:g}"),
            f"{v.psi:.3f}" if v.psi is not None else "-",
            "[red]yes[/]" if v.drifted else "no",
        )
    console.print(table)
    for feature, why in report.skipped.items():
        console.print(f"[dim]skipped {feature}: {why}[/]")
