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
from typing import TYPE_CHECKING, Annotated, Any, Protocol, runtime_checkable

import click
import typer
from typer.core import TyperGroup

from modelhub.cli.context import client_session
from modelhub.cli.render import console, print_json

if TYPE_CHECKING:
    from modelhub.client.contract import ModelhubClient

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


@runtime_checkable
class PlatformFigures(Protocol):
    """The platform's success figures (the cost part of monitoring adds it to clients)."""

    def platform_figures(self, since: str) -> Any: ...


@runtime_checkable
class DriftReferences(Protocol):
    """Setting a drift reference (the drift part of monitoring adds it to clients)."""

    def set_reference(self, ref: str, data: Path) -> Any: ...


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
        figures = _platform_figures(client).platform_figures(since)
    if json:
        print_json(figures)
        return
    data = figures.model_dump(mode="json") if hasattr(figures, "model_dump") else figures
    from rich.table import Table
    from rich.text import Text

    table = Table(title=f"platform, last {since}", title_justify="left", show_header=False)
    table.add_column("figure", style="bold")
    table.add_column("value")
    for key, value in data.items() if isinstance(data, dict) else []:
        table.add_row(Text(str(key)), Text(str(value)))
    console.print(table)


@app.command()
def reference(
    ref: Annotated[str, typer.Argument(help="The version, NAME@VERSION.", metavar="NAME@V")],
    data: Annotated[
        Path, typer.Option("--data", help="Data like its inputs (csv, jsonl, parquet).")
    ],
    json: JsonOpt = False,
) -> None:
    """Set the drift reference of a version from a data file (trained versions get one)."""
    with client_session() as client:
        result = _drift_references(client).set_reference(ref, data)
    if json:
        print_json(result)
    else:
        console.print(f"drift reference of {ref} set from {data}", markup=False, highlight=False)


def _platform_figures(client: ModelhubClient) -> PlatformFigures:
    if not isinstance(client, PlatformFigures):
        raise _not_offered("platform figures")
    return client


def _drift_references(client: ModelhubClient) -> DriftReferences:
    if not isinstance(client, DriftReferences):
        raise _not_offered("drift references")
    return client


def _not_offered(what: str) -> Exception:
    from modelhub.errors import Unavailable

    return Unavailable(f"{what} are not available from this client")
