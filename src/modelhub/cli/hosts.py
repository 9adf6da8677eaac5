"""`modelhub hosts list`: the servers sharing this database."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from modelhub.cli.context import client_session
from modelhub.cli.render import console, human_size, print_json
from modelhub.cli.run_view import duration

if TYPE_CHECKING:
    from modelhub.domain.hosts import Host

app = typer.Typer(help="The servers sharing this database.", no_args_is_help=True)

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]


@app.command("list")
def list_hosts(json: JsonOpt = False) -> None:
    """Each server's address, capacity, deployments placed on it and health."""
    with client_session() as client:
        found = client.hosts()
    if json:
        print_json(found)
    else:
        console.print(hosts_table(found, datetime.now(UTC)))


def hosts_table(hosts: list[Host], now: datetime) -> Table:
    table = Table()
    table.add_column("host", style="bold", no_wrap=True)
    for column in ("address", "pid", "capacity", "deployments", "health", "last heartbeat"):
        table.add_column(column)
    for h in hosts:
        health = "alive" if h.alive else ("stopped" if h.stopped_at else "dead")
        table.add_row(
            h.name,
            f"{h.address}:{h.port}",
            str(h.pid),
            f"{h.cpus:g} cpus, {human_size(h.memory_bytes)}",
            str(h.deployments),
            health,
            f"{duration((now - h.heartbeat_at).total_seconds())} ago",
        )
    return table
