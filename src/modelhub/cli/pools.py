"""`modelhub pools list|show`: the shared model pools and what their replicas hold."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from modelhub.cli.context import client_session
from modelhub.cli.render import console, human_size, print_json

if TYPE_CHECKING:
    from modelhub.domain.pools import Pool

app = typer.Typer(
    help="Shared model pools: many small deployments served by a few replicas.",
    no_args_is_help=True,
)

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]


def _hit_rate(pool: Pool) -> str:
    return "-" if pool.hit_rate is None else f"{pool.hit_rate:.1%}"


@app.command("list")
def list_pools(json: JsonOpt = False) -> None:
    """Each pool: deployments placed, replicas, models loaded, memory, hit rate, evictions."""
    with client_session() as client:
        found = client.list_pools()
    if json:
        print_json(found)
        return
    table = Table()
    table.add_column("pool", style="bold", no_wrap=True)
    for column in ("deployments", "replicas", "loaded", "memory", "budget/replica"):
        table.add_column(column)
    for column in ("hit rate", "evictions"):
        table.add_column(column)
    for p in found:
        replicas = f"{len(p.replicas)}/{p.replicas_wanted}" if p.running else "not running"
        table.add_row(
            p.name,
            str(p.deployments),
            replicas,
            str(p.models_loaded),
            human_size(p.memory_bytes),
            human_size(p.memory_budget),
            _hit_rate(p),
            str(p.evictions),
        )
    console.print(table)


@app.command("show")
def show_pool(
    name: Annotated[str, typer.Argument(help="The pool (shared).")],
    json: JsonOpt = False,
) -> None:
    """A pool's replicas: what each has loaded, its memory, loads, evictions, requests."""
    with client_session() as client:
        p = client.get_pool(name)
    if json:
        print_json(p)
        return
    state = f"{len(p.replicas)}/{p.replicas_wanted} replicas" if p.running else "not running"
    console.print(
        f"pool {p.name}: {p.deployments} deployments, {state}, "
        f"{human_size(p.memory_budget)} of models per replica; endpoint {p.endpoint or '-'}",
        markup=False,
        highlight=False,
    )
    console.print(
        f"loaded {p.models_loaded}, memory {human_size(p.memory_bytes)}, requests "
        f"{p.requests}, loads {p.loads}, hit rate {_hit_rate(p)}, evictions {p.evictions}, "
        f"restarts {p.restarts}",
        markup=False,
        highlight=False,
    )
    if not p.replicas:
        return
    table = Table()
    for column in ("pid", "ready", "loaded", "memory", "loads", "evictions", "requests"):
        table.add_column(column)
    for r in p.replicas:
        table.add_row(
            str(r.pid),
            "yes" if r.ready else "no",
            str(r.models_loaded),
            human_size(r.memory_bytes),
            str(r.loads),
            str(r.evictions),
            str(r.requests),
        )
    console.print(table)
