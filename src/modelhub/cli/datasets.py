"""`modelhub datasets ...`: versioned training data."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from modelhub.cli.context import client_session, total_size, transfer_progress
from modelhub.cli.render import console, human_size, print_json

app = typer.Typer(help="Register and inspect versioned training datasets.", no_args_is_help=True)

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]


@app.command()
def register(
    path: Annotated[Path, typer.Argument(help="A .csv, .jsonl or .parquet file.")],
    name: Annotated[str, typer.Option("--name", "-n", help="Dataset name.")],
    format: Annotated[str | None, typer.Option(help="csv, jsonl or parquet.")] = None,
    description: Annotated[str, typer.Option(help="What the data is.")] = "",
    json: JsonOpt = False,
) -> None:
    """Check every row, then store the file as the next version of a dataset."""
    size = total_size(path) if path.exists() else 0
    with (
        client_session() as client,
        transfer_progress(f"register {path.name}", size, not json) as progress,
    ):
        dataset = client.register_dataset(path, name, format, description, progress)
    if json:
        print_json(dataset)
    else:
        console.print(
            f"registered dataset [bold]{dataset.name}[/] version {dataset.version}: "
            f"{dataset.rows:,} rows, {len(dataset.columns)} columns "
            f"(sha256:{dataset.digest[:12]})"
        )


@app.command("list")
def list_datasets(
    name: Annotated[str | None, typer.Option(help="Only this dataset's versions.")] = None,
    json: JsonOpt = False,
) -> None:
    """List dataset versions."""
    with client_session() as client:
        found = client.list_datasets(name)
    if json:
        print_json(found)
        return
    table = Table()
    table.add_column("dataset", no_wrap=True, style="bold")
    for column in ("ver", "format", "rows", "columns", "size", "created"):
        table.add_column(column)
    for d in found:
        table.add_row(
            d.name,
            str(d.version),
            d.format.value,
            f"{d.rows:,}",
            ", ".join(f"{k}:{v}" for k, v in d.columns.items()),
            human_size(d.size),
            f"{d.created_at:%Y-%m-%d %H:%M} by {d.created_by}",
        )
    console.print(table)


@app.command()
def show(
    ref: Annotated[str, typer.Argument(help="NAME[@VERSION|@latest]")],
    json: JsonOpt = False,
) -> None:
    """Show one dataset version."""
    with client_session() as client:
        d = client.get_dataset(ref)
    if json:
        print_json(d)
    else:
        console.print(
            f"[bold]{d.name}[/] version {d.version}: {d.format.value}, {d.rows:,} rows, "
            f"{human_size(d.size)}, sha256:{d.digest}"
        )
        for column, kind in d.columns.items():
            console.print(f"  {column}: {kind}")
