"""`modelhub pipelines optimize NAME`: profile a short run, propose changes, measure them.

Without `--accept` it starts an optimisation and waits for its verdict (in local mode
this process runs the scheduler meanwhile); `--accept` makes the proposed spec the
pipeline's next version; `--id N` shows (or accepts) an earlier optimisation.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from modelhub.cli.context import client_session
from modelhub.cli.render import console, print_json
from modelhub.domain.limits import INT64_MAX
from modelhub.domain.pipeline_optimization_terms import (
    DEFAULT_BUDGET_STEPS,
    DEFAULT_TOLERANCE,
    WORKING,
    OptimizationStatus,
)
from modelhub.errors import Unavailable

if TYPE_CHECKING:
    from modelhub.domain.pipeline_optimization import PipelineOptimization

POLL_SECONDS = 0.25
PHASE_ROWS = ("data", "forward", "backward", "optimizer", "validation", "checkpoint", "logging")


def optimize(
    name: Annotated[str, typer.Argument(help="The pipeline to optimise.")],
    budget_steps: Annotated[
        int, typer.Option(help="Steps of the profiling run (5-10000).")
    ] = DEFAULT_BUDGET_STEPS,
    tolerance: Annotated[
        float,
        typer.Option(help="How far the changed run's validation metric may fall behind (0-1)."),
    ] = DEFAULT_TOLERANCE,
    accept: Annotated[
        bool, typer.Option("--accept", help="Make the proposal the pipeline's next version.")
    ] = False,
    optimization: Annotated[
        int | None,
        typer.Option(
            "--id", min=1, max=INT64_MAX, help="An earlier optimisation (default: the newest)."
        ),
    ] = None,
    wait: Annotated[bool, typer.Option(help="Wait for the verdict.")] = True,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for the verdict.")] = 3600.0,
    json: Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")] = False,
) -> None:
    """Profile a short run of a pipeline, propose changes, and measure them.

    Exits non-zero when the optimisation failed (a run of it failed or was cancelled).
    """
    with client_session() as client:
        if accept:
            found = client.accept_optimization(name, optimization)
        elif optimization is not None:
            found = client.get_optimization(name, optimization)
        else:
            found = client.optimize_pipeline(name, budget_steps, tolerance)
            if wait:
                with client.scheduling():
                    found = poll_until_done(
                        lambda: client.get_optimization(name, found.id), timeout
                    )
    if json:
        print_json(found)
    else:
        show(found)
    if found.status is OptimizationStatus.FAILED:
        raise typer.Exit(1)  # the message (or the JSON) says which run and why


def poll_until_done(
    get: Callable[[], PipelineOptimization],
    timeout: float,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> PipelineOptimization:
    """Call `get` until the optimisation has a verdict; Unavailable after `timeout` s."""
    deadline = clock() + timeout
    while True:
        found = get()
        if found.status not in WORKING:
            return found
        if clock() >= deadline:
            raise Unavailable(
                f"optimisation {found.id} of {found.pipeline} is still {found.status.value} "
                f"after {timeout:g} s; it goes on: modelhub pipelines optimize "
                f"{found.pipeline} --id {found.id}",
                {"optimization": found.id, "status": found.status.value},
            )
        sleep(POLL_SECONDS)


def show(found: PipelineOptimization) -> None:
    console.print(
        f"optimisation [bold]{found.id}[/] of {found.pipeline} (version "
        f"{found.pipeline_version}, {found.budget_steps} steps): [bold]{found.status.value}[/]"
    )
    console.print(found.message, markup=False, highlight=False)
    if found.before is not None:
        console.print(phases_table(found))
    for change in found.changes:
        console.print(
            f"  {change.field}: {change.old} -> {change.new}  ({change.reason})",
            markup=False,
            highlight=False,
        )
    for note in found.notes:
        console.print(f"  note: {note}", markup=False, highlight=False)
    if found.status is OptimizationStatus.PROPOSED:
        console.print(
            f"accept it: modelhub pipelines optimize {found.pipeline} --accept --id {found.id}",
            markup=False,
            highlight=False,
        )


def phases_table(found: PipelineOptimization) -> Table:
    table = Table("phase", "before (s)", "share", "after (s)", "share")
    before, after = found.before, found.after
    assert before is not None
    for phase in (*PHASE_ROWS, "other"):
        row = [phase, f"{before.phases.get(phase, 0.0):.4f}", f"{before.share(phase):.0%}"]
        if after is not None:
            row += [f"{after.phases.get(phase, 0.0):.4f}", f"{after.share(phase):.0%}"]
        else:
            row += ["-", "-"]
        table.add_row(*row)
    table.add_row(
        "samples/s",
        f"{before.samples_per_s:.0f}",
        f"{before.samples} in {before.steps} steps",
        f"{after.samples_per_s:.0f}" if after is not None else "-",
        f"{after.samples} in {after.steps} steps" if after is not None else "-",
    )
    return table
