"""`modelhub plugins list`: runtimes, trainers, executors, inspectors and artifact
stores, built-in and installed, with each one's status."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from modelhub.cli.context import client_session
from modelhub.cli.render import console, print_json

if TYPE_CHECKING:
    from modelhub.domain.plugins import Plugin

app = typer.Typer(help="Installed extensions (runtimes, trainers ...).", no_args_is_help=True)

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]


@app.command("list")
def list_plugins(json: JsonOpt = False) -> None:
    """Each extension point's parts: name, package, version, what it adds, status."""
    with client_session() as client:
        found = client.plugins()
    if json:
        print_json(found)
    else:
        console.print(plugins_table(found))


def plugins_table(plugins: list[Plugin]) -> Table:
    table = Table()
    for column in ("group", "name", "package", "version", "adds", "status"):
        table.add_column(column, no_wrap=column != "adds")
    for p in plugins:
        status = p.status.value if p.error is None else f"{p.status.value}: {p.error}"
        style = "red" if p.error is not None else ""
        table.add_row(
            p.group.removeprefix("modelhub."),
            p.name,
            "built-in" if p.builtin else p.package,
            p.version,
            p.adds,
            f"[{style}]{status}[/{style}]" if style else status,
        )
    return table
