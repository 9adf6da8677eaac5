"""`modelhub monitor`: a model's report, the platform's figures, drift references.

    modelhub monitor NAME [--since 24h] [--version 3] [--json] [--report report.html]
    modelhub monitor --platform [--since 24h] [--json]
    modelhub monitor reference NAME@V --data eval.csv

The group's first word is either one of its commands (`reference`, `show`) or a model
name. Click parses a group's own arguments before it looks for a command, so a group
argument NAME would swallow the word `reference`. Instead `MonitorGroup` reads the
first word itself: a command name goes to that command, anything else (a model name,
or an option such as --platform) goes to `show`, so `monitor NAME` is `monitor show
NAME`. A model that is itself called `reference` is reached with `monitor show reference`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import click
import typer
from typer.core import TyperGroup

from modelhub.cli.context import client_session
from modelhub.cli.render import console, print_json

DEFAULT_COMMAND = "show"
HELP = ("--help", "-h")


class MonitorGroup(TyperGroup):
    """A group whose first word is a command of its own or else a model name for `show`."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and args[0] not in HELP:
            args = [DEFAULT_COMMAND, *args]
        return super().parse_args(ctx, args)


app = typer.Typer(
    cls=MonitorGroup,
    help="Watch a model: `modelhub monitor NAME` shows its health, figures, findings and "
    "recommendations; `--platform` the platform's own figures.",
    no_args_is_help=True,
    subcommand_metavar="NAME | COMMAND [ARGS]...",
)

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]
SinceOpt = Annotated[
    str, typer.Option("--since", help="The window: the last 30m, 24h, 7d ...", metavar="DURATION")
]


@app.command(DEFAULT_COMMAND)
def show(
    name: Annotated[
        str | None, typer.Argument(help="The model to report on.", metavar="NAME")
    ] = None,
    since: SinceOpt = "24h",
    version: Annotated[
        int | None, typer.Option("--version", help="Only this version (default: all).", min=1)
    ] = None,
    report: Annotated[
        Path | None,
        typer.Option("--report", help="Also write the report as one HTML page here."),
    ] = None,
    platform: Annotated[
        bool, typer.Option("--platform", help="The platform's figures instead of a model's.")
    ] = False,
    json: JsonOpt = False,
) -> None:
    """A model's report (the default command: `modelhub monitor NAME` runs it)."""
    from modelhub.errors import InvalidInput

    if platform:
        if name is not None or version is not None or report is not None:
            raise InvalidInput(
                "--platform reports on the platform: give no NAME, --version or --report with it"
            )
        _platform(since, json)
        return
    if name is None:
        raise InvalidInput("name the model to monitor: modelhub monitor NAME (or --platform)")
    with client_session() as client:
        found = client.monitor(name, since, version)
    if report is not None:
        from modelhub.monitoring.html_report import render

        report.write_text(render(found), encoding="utf-8")
    if json:
        print_json(found)
        return
    from modelhub.cli.monitor_view import report_views

    for view in report_views(found):
        console.print(view)
    if report is not None:
        console.print(f"wrote {report}", markup=False, highlight=False)


def _platform(since: str, json: bool) -> None:
    with client_session() as client:
        figures = client.platform_figures(since)
    if json:
        print_json(figures)
        return
    from modelhub.cli.cost_view import figures_tables

    console.print(f"platform, last {since}", markup=False, highlight=False)
    for table in figures_tables(figures):
        console.print(table)


@app.command()
def reference(
    ref: Annotated[
        str, typer.Argument(help="The version: NAME@VERSION (or NAME@ALIAS).", metavar="NAME@V")
    ],
    data: Annotated[
        Path, typer.Option("--data", help="Data like its inputs (csv, jsonl, parquet).")
    ],
    format: Annotated[
        str | None, typer.Option(help="csv, jsonl or parquet; default from the name.")
    ] = None,
    json: JsonOpt = False,
) -> None:
    """Set the drift reference of a version from a data file (trained versions get one).

    The same as `modelhub drift reference NAME@V --data FILE`: its columns must be the
    version's inputs, or nothing is stored."""
    from modelhub.cli.drift import print_reference, resolve_version

    with client_session() as client:
        name, version = resolve_version(client, ref)
        found = client.set_drift_reference(name, version, data, format)
    if json:
        print_json(found)
    else:
        print_reference(found)
