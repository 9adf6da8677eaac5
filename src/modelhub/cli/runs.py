"""`modelhub runs ...`: list, inspect, follow, cancel and resume training runs."""

from __future__ import annotations

import codecs
import json as jsonlib
import sys
import time
from pathlib import Path
from typing import Annotated

import typer

from modelhub.cli.context import client_session
from modelhub.cli.cost_view import cost_line
from modelhub.cli.render import console, err_console, print_json
from modelhub.cli.run_view import (
    QUEUED_ONLY,
    follow,
    outcome_error,
    run_details,
    runs_table,
)
from modelhub.domain.limits import INT64_MAX

app = typer.Typer(help="Follow, inspect, cancel and resume training runs.", no_args_is_help=True)

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]
RunArg = Annotated[int, typer.Argument(help="The run's id.", metavar="RUN", min=1, max=INT64_MAX)]
LOG_POLL_SECONDS = 0.5
FINAL = ("completed", "failed", "cancelled")


@app.command("list")
def list_runs(
    status: Annotated[str | None, typer.Option(help="Only runs in this status.")] = None,
    pipeline: Annotated[str | None, typer.Option(help="Only runs of this pipeline.")] = None,
    limit: Annotated[int, typer.Option(help="At most this many, newest first.")] = 100,
    json: JsonOpt = False,
) -> None:
    """List runs, newest first."""
    with client_session() as client:
        found = client.list_runs(status, pipeline, limit)
    if json:
        print_json(found)
    else:
        console.print(runs_table(found))


@app.command()
def show(run: RunArg, json: JsonOpt = False) -> None:
    """Status, progress, ETA, attempts, metrics, result, error, alerts and checkpoints."""
    with client_session() as client:
        found = client.get_run(run)
        checkpoints = client.run_checkpoints(run)
        alerts = client.run_alerts(run)
        cost = client.run_cost(run)
    if json:
        print_json(
            {
                "run": found.model_dump(mode="json"),
                "checkpoints": [c.model_dump(mode="json") for c in checkpoints],
                "alerts": [a.model_dump(mode="json") for a in alerts],
                "cost": cost.model_dump(mode="json"),
            }
        )
    else:
        console.print(run_details(found, checkpoints, alerts))
        console.print(f"cost: {cost_line(cost)}")


@app.command()
def watch(
    run: RunArg,
    logs: Annotated[bool, typer.Option(help="Print the run's log as it grows.")] = False,
    json: JsonOpt = False,
) -> None:
    """Follow a run live until it ends; exit non-zero unless it completed.

    --json prints one event per line (kinds: status, progress, metrics, checkpoint,
    alert, preprocessing, log).
    """
    with client_session() as client:
        if client.queues_only and client.get_run(run).status.value in ("queued", "pending"):
            err_console.print(f"note: run {run} is waiting; {QUEUED_ONLY}", highlight=False)
        found = follow(client, run, json, logs)
    error = outcome_error(found)
    if error is not None:
        raise error
    if not json:
        console.print(
            f"run {run} completed: {found.result_model} version {found.result_version}",
            markup=False,
            highlight=False,
        )


@app.command("logs")
def show_logs(
    run: RunArg,
    follow_log: Annotated[
        bool, typer.Option("--follow", "-f", help="Keep printing until the run ends.")
    ] = False,
    json: JsonOpt = False,
) -> None:
    """Print a run's log (stdout and stderr of every attempt)."""
    decoder = codecs.getincrementaldecoder("utf-8")("replace")
    offset, ended = 0, False
    with client_session() as client:
        while True:
            chunk, next_offset = client.run_logs(run, offset)
            if chunk:
                text = decoder.decode(chunk)
                if json:
                    line = {"run": run, "offset": offset, "next_offset": next_offset, "text": text}
                    print(jsonlib.dumps(line), flush=True)
                else:
                    sys.stdout.write(text)
                    sys.stdout.flush()
                offset = next_offset
                continue
            if not follow_log or ended:
                break
            # Seen final, the loop reads once more: what the last attempt wrote before ending.
            ended = client.get_run(run).status.value in FINAL
            if not ended:
                time.sleep(LOG_POLL_SECONDS)


@app.command()
def cancel(run: RunArg, json: JsonOpt = False) -> None:
    """Cancel a queued run now, or ask a running one to stop (it checkpoints first)."""
    with client_session() as client:
        found = client.cancel_run(run)
    if json:
        print_json(found)
    elif found.status.value == "cancelled":
        console.print(f"run {run} cancelled")
    else:
        console.print(f"run {run}: cancel requested; it stops after saving a checkpoint")


@app.command()
def resume(run: RunArg, json: JsonOpt = False) -> None:
    """Queue a failed or cancelled run again; it continues from its newest checkpoint."""
    with client_session() as client:
        found = client.resume_run(run)
        local = client.queues_only
    if json:
        print_json(found)
    else:
        queued = QUEUED_ONLY if local else "queued"
        console.print(
            f"run {run} resumed: {queued}; it continues from its newest checkpoint",
            markup=False,
            highlight=False,
        )


@app.command()
def plot(
    run: RunArg,
    out: Annotated[Path, typer.Option("--out", "-o", help="A .png or .svg file to write.")],
    json: JsonOpt = False,
) -> None:
    """Draw the run's metric curves (loss, accuracy ...) into a picture."""
    from modelhub.training.plot import FORMATS, MetricPoint, plot_curves

    with client_session() as client:
        found = client.get_run(run)
        points = [MetricPoint(p.name, p.step, p.value) for p in client.run_metrics(run)]
    if out.suffix.lower() in FORMATS:
        out.parent.mkdir(parents=True, exist_ok=True)
    plot_curves(points, out, title=f"run {run}: {found.pipeline}")
    if json:
        print_json({"run": run, "path": str(out), "points": len(points)})
    else:
        console.print(f"wrote {out} ({len(points)} points)", markup=False, highlight=False)
