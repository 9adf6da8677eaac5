"""`modelhub pipelines ...` and `modelhub train`: training recipes, and running one.

In local mode (no MODELHUB_URL) no server executes runs: `modelhub train` runs a
scheduler in this process until its run ends, while `pipelines start` (and
`runs resume`) only queue the run for a `modelhub server` on the same home.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from modelhub.cli.context import client_session
from modelhub.cli.pipeline_optimize import optimize
from modelhub.cli.render import console, err_console, print_json
from modelhub.cli.run_view import (
    QUEUED_ONLY,
    estimate_lines,
    follow,
    outcome_error,
    pipelines_table,
    wait,
)

if TYPE_CHECKING:
    from modelhub.client.contract import ModelhubClient
    from modelhub.domain.estimates import Estimate
    from modelhub.domain.runs import Pipeline, Run

pipelines = typer.Typer(help="Create, inspect and start training pipelines.", no_args_is_help=True)

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]
SpecArg = Annotated[
    Path, typer.Argument(help="pipeline.yaml (a script it names is read beside it).")
]
PriorityOpt = Annotated[
    str | None, typer.Option(help="low, normal, high or urgent (default: the spec's).")
]


def read_pipeline(path: Path) -> tuple[str, dict[str, bytes]]:
    """The spec's text and the script it names, read from the spec's folder (not beyond it)."""
    from modelhub.training.spec import named_script, read_spec_file

    text = read_spec_file(path)
    files = {}
    script = named_script(text)
    if script is not None:
        folder = path.parent.resolve()
        candidate = (folder / script).resolve()
        if candidate.is_relative_to(folder) and candidate.is_file():
            files[script] = candidate.read_bytes()
    return text, files


def _create(client: ModelhubClient, spec: Path) -> tuple[Pipeline, Estimate]:
    text, files = read_pipeline(spec)
    return client.create_pipeline(text, files)


def _show_created(pipeline: Pipeline, estimate: Estimate) -> None:
    console.print(
        f"pipeline [bold]{pipeline.name}[/] version {pipeline.version} "
        f"({pipeline.type}, {pipeline.trainer})"
    )
    for line in estimate_lines(estimate):
        console.print(line, markup=False, highlight=False)


def _created_json(pipeline: Pipeline, estimate: Estimate) -> dict[str, object]:
    return {"pipeline": pipeline.model_dump(mode="json"), "estimate": asdict(estimate)}


def _queued_message(client: ModelhubClient, run: Run) -> str:
    queued = QUEUED_ONLY if client.queues_only else "queued"
    return f"run {run.id} of {run.pipeline} (priority {run.priority.value}): {queued}"


def _interrupted_message(client: ModelhubClient, run: Run) -> str:
    if client.queues_only:
        return f"interrupted: run {run.id} is queued again and continues from its newest checkpoint"
    return f"stopped watching: run {run.id} goes on (modelhub runs watch {run.id})"


@pipelines.command()
def create(spec: SpecArg, json: JsonOpt = False) -> None:
    """Check a pipeline.yaml (every problem at once), store it, and estimate a run."""
    with client_session() as client:
        pipeline, estimate = _create(client, spec)
    if json:
        print_json(_created_json(pipeline, estimate))
    else:
        _show_created(pipeline, estimate)


@pipelines.command("list")
def list_pipelines(json: JsonOpt = False) -> None:
    """List pipelines (the newest version of each)."""
    with client_session() as client:
        found = client.list_pipelines()
    if json:
        print_json(found)
    else:
        console.print(pipelines_table(found))


@pipelines.command()
def show(name: str, json: JsonOpt = False) -> None:
    """Show a pipeline and its spec."""
    with client_session() as client:
        pipeline = client.get_pipeline(name)
    if json:
        print_json(pipeline)
        return
    import yaml

    console.print(pipelines_table([pipeline]))
    console.print(yaml.safe_dump(pipeline.spec, sort_keys=False), markup=False, highlight=False)


@pipelines.command()
def start(name: str, priority: PriorityOpt = None, json: JsonOpt = False) -> None:
    """Queue a run of a pipeline."""
    with client_session() as client:
        run = client.start_run(name, priority)
        message = _queued_message(client, run)
    if json:
        print_json(run)
    else:
        console.print(message, markup=False, highlight=False)


def train(
    spec: SpecArg,
    priority: PriorityOpt = None,
    detach: Annotated[bool, typer.Option(help="Queue the run and return at once.")] = False,
    logs: Annotated[bool, typer.Option(help="Print the run's log as it grows.")] = False,
    json: JsonOpt = False,
) -> None:
    """Create a pipeline, run it and follow the run to its end.

    Exits non-zero unless the run completes. In local mode this process runs the
    scheduler until the run ends; in server mode the server does.
    """
    with client_session() as client:
        pipeline, estimate = _create(client, spec)
        if not json:
            _show_created(pipeline, estimate)
        run = client.start_run(pipeline.name, priority)
        if detach:
            if json:
                print_json(run)
            else:
                console.print(_queued_message(client, run), markup=False, highlight=False)
            return
        try:
            with client.scheduling():
                run = wait(client, run.id) if json else follow(client, run.id, False, logs)
        except KeyboardInterrupt:
            err_console.print(_interrupted_message(client, run), highlight=False)
            raise
    if json:
        print_json(run)
    error = outcome_error(run)
    if error is not None:
        raise error
    if not json:
        console.print(
            f"registered [bold]{run.result_model}[/] version {run.result_version} (run {run.id})"
        )


pipelines.command()(optimize)
