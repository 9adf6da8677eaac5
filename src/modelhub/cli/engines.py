"""`modelhub engines list`: the training engines this server can use."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from modelhub.cli.context import client_session
from modelhub.cli.render import console, human_size, print_json
from modelhub.cli.run_view import duration

if TYPE_CHECKING:
    from modelhub.domain.engines import EngineCapacity, EngineRecord

app = typer.Typer(help="The training engines runs can go to.", no_args_is_help=True)

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]


@app.command("list")
def list_engines(json: JsonOpt = False) -> None:
    """Each engine's kind, capacity, queue, utilisation, job time, success rate and status."""
    with client_session() as client:
        found = client.list_engines()
    if json:
        print_json(found)
    else:
        console.print(engines_table(found))


def engines_table(engines: list[EngineRecord]) -> Table:
    table = Table()
    table.add_column("engine", style="bold", no_wrap=True)
    for column in ("status", "capacity", "free", "queued", "running", "used"):
        table.add_column(column)
    for column in ("avg job", "success", "queue wait"):
        table.add_column(column)
    for e in engines:
        status = e.status if e.reason is None else f"{e.status}: {e.reason}"
        table.add_row(
            f"{e.name} ({e.address})" if e.address else e.name,
            status,
            _capacity(e.capacity),
            _capacity(e.free),
            str(e.queued),
            str(e.running),
            f"{e.utilisation:.0%}",
            duration(e.average_job_seconds),
            "-" if e.success_rate is None else f"{e.success_rate:.0%}",
            duration(e.queue_wait_seconds),
        )
    return table


def _capacity(capacity: EngineCapacity) -> str:
    nodes = f", {capacity.nodes} nodes" if capacity.nodes != 1 else ""
    return (
        f"{capacity.cpus:g} cpus, {capacity.gpus} gpus, {human_size(max(capacity.memory, 0))}"
        f"{nodes}"
    )
