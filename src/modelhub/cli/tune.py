"""`modelhub tune ...`: hyperparameter studies whose trials are runs.

    modelhub tune pipeline.yaml --trials 30 [--parallel 2] [--timeout 1h] [--wait]
    modelhub tune status NAME [--json] [--chart study.svg]
    modelhub tune resume NAME

In server mode the server's driver runs the study and `tune` returns once it is
started (`--wait` follows it to its end). In local mode nothing else would run it, so
`tune` runs the scheduler and the driver in this process until the study ends.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from modelhub.cli.context import client_session
from modelhub.cli.render import console, print_json

if TYPE_CHECKING:
    from rich.table import Table

    from modelhub.client.contract import ModelhubClient
    from modelhub.domain.tuning import Study

POLL_SECONDS = 1.0
ACTIONS = ("status", "resume")


def tune(
    target: Annotated[
        str, typer.Argument(help="pipeline.yaml with a search block; or status / resume.")
    ],
    name: Annotated[
        str | None, typer.Argument(help="The study (its pipeline's name), after status/resume.")
    ] = None,
    trials: Annotated[int, typer.Option(help="How many trials to run.", min=1)] = 20,
    parallel: Annotated[int, typer.Option(help="Trials running at once, at most.", min=1)] = 1,
    timeout: Annotated[
        str | None, typer.Option(help="Ask no new trial after this long: 90m, 1h, 2d.")
    ] = None,
    wait: Annotated[bool, typer.Option(help="Follow the study to its end.")] = False,
    chart: Annotated[
        Path | None, typer.Option(help="status: write the study's chart (SVG) to this file.")
    ] = None,
    json: Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")] = False,
) -> None:
    """Tune a pipeline's hyperparameters: an Optuna study whose trials are runs.

    The best trial's result is registered as the next version of the result model.
    """
    if target in ACTIONS:
        if name is None:
            raise typer.BadParameter(f"tune {target} needs the study's name", param_hint="NAME")
        with client_session() as client:
            study = client.study(name) if target == "status" else client.resume_study(name)
            if chart is not None:
                chart.write_text(client.study_chart(name), encoding="utf-8")
            if target == "resume" and (wait or client.queues_only):
                study = _follow(client, name, json)
        _show(study, json, chart)
        return
    study = _start(Path(target), trials, parallel, timeout, wait, json)
    _show(study, json, None)


def _start(
    spec: Path, trials: int, parallel: int, timeout: str | None, wait: bool, json: bool
) -> Study:
    from modelhub.cli.training import read_pipeline
    from modelhub.domain.tuning import TuneRequest

    text, files = read_pipeline(spec)
    sent = {path: data.decode("utf-8", "replace") for path, data in files.items()}
    request = TuneRequest(spec=text, files=sent, trials=trials, parallel=parallel, timeout=timeout)
    with client_session() as client:
        study = client.tune(request)
        if not json:
            console.print(
                f"study [bold]{study.name}[/]: {study.trials} trials, {study.parallel} at once, "
                f"{study.direction} {study.metric} (pruner: {study.pruner})"
            )
        if wait or client.queues_only:
            study = _follow(client, study.name, json)
    return study


def _follow(client: ModelhubClient, name: str, quiet: bool) -> Study:
    """Poll the study until it ends; in local mode run the scheduler and driver meanwhile."""
    seen = -1
    with client.scheduling():
        while True:
            study = client.study(name)
            done = sum(1 for t in study.trial_list if t.state.value != "running")
            if not quiet and done != seen:
                best = f", best {study.best_value:.4g}" if study.best_value is not None else ""
                console.print(f"{done} of {study.trials} trials ended{best}", highlight=False)
                seen = done
            if study.status.value != "running":
                return study
            time.sleep(POLL_SECONDS)


def _show(study: Study, json: bool, chart: Path | None) -> None:
    if json:
        print_json(study)
        return
    console.print(trials_table(study))
    line = f"study {study.name}: {study.status.value}"
    if study.reason:
        line += f" ({study.reason})"
    console.print(line, markup=False, highlight=False)
    if study.best_trial is not None:
        params = _params(study.best_params)
        console.print(
            f"best: trial {study.best_trial} (run {study.best_run}) {study.metric}="
            f"{study.best_value:.4g} with {params}",
            markup=False,
            highlight=False,
        )
    if study.registered_version is not None:
        console.print(f"registered version {study.registered_version} of the result model")
    if study.importance:
        shares = ", ".join(f"{k} {v:.2f}" for k, v in study.importance.items())
        console.print(f"importance: {shares}", markup=False, highlight=False)
    if chart is not None:
        console.print(f"chart written to {chart}", markup=False, highlight=False)


def trials_table(study: Study) -> Table:
    from rich.table import Table

    table = Table(title=f"study {study.name}")
    for column in ("trial", "state", "params", study.metric, "run", "note"):
        table.add_column(column)
    for trial in study.trial_list:
        table.add_row(
            str(trial.number),
            trial.state.value,
            _params(trial.params),
            f"{trial.value:.4g}" if trial.value is not None else "",
            str(trial.run_id) if trial.run_id is not None else "",
            trial.reason or "",
        )
    return table


def _params(params: dict[str, object]) -> str:
    shown = (f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in params.items())
    return ", ".join(shown)
