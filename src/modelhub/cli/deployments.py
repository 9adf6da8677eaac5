"""`modelhub deploy`, `modelhub deployments ...` and `modelhub predict`.

Over a server, deploy, update, promote and rollback wait (a spinner) until the
deployment settles, then print its endpoint and a request to paste. In local mode
(no MODELHUB_URL) nothing runs replicas: those commands record the change, which a
`modelhub server` on the same home serves when it starts, and `predict` answers in
this process.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import click
import typer

from modelhub.cli.context import client_session
from modelhub.cli.deployment_input import log_policy, parse_autoscale, read_request
from modelhub.cli.render import console, err_console, print_json

if TYPE_CHECKING:
    from modelhub.client.contract import ModelhubClient
    from modelhub.domain.deployments import Deployment
    from modelhub.domain.optimisation import VariantChoice

app = typer.Typer(
    help="List, inspect, scale, roll out, roll back and stop deployments.", no_args_is_help=True
)

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]
NameArg = Annotated[str, typer.Argument(help="The deployment's name.", metavar="NAME")]
NoWaitOpt = Annotated[
    bool, typer.Option("--no-wait", help="Return at once instead of waiting for it to settle.")
]
WAIT_SECONDS = 300.0
LOCAL_NOTE = (
    "local mode runs no replicas: `modelhub server` on this home serves it when it starts; "
    "meanwhile `modelhub predict {name} --input ...` answers in this process"
)


# -- waiting and reporting ------------------------------------------------------------


def _settle(
    client: ModelhubClient, name: str, doing: str, quiet: bool, canary_settles: bool = True
) -> Deployment:
    try:
        if quiet:
            return client.wait_deployment(name, WAIT_SECONDS, canary_settles)
        with console.status(f"{doing} {name} ...", spinner="dots"):
            return client.wait_deployment(name, WAIT_SECONDS, canary_settles)
    except KeyboardInterrupt:
        err_console.print(
            f"stopped waiting: the server goes on (modelhub deployments show {name})",
            markup=False,
            highlight=False,
        )
        raise


def _check_outcome(settled: Deployment, before: list[int], what: str) -> None:
    """Raise when the change did not take: the deployment failed or was stopped, or it
    serves exactly what it served before (a rollout that was reverted)."""
    from modelhub.errors import ModelhubError

    reason = settled.error or "no reason reported"
    if settled.status.value == "failed":
        raise ModelhubError(f"deployment {settled.name} failed: {reason}")
    if settled.status.value == "stopped":
        raise ModelhubError(f"deployment {settled.name} was stopped during the {what}")
    if settled.versions == before:
        raise ModelhubError(f"the {what} of deployment {settled.name} did not take: {reason}")


def _replicas(count: int) -> str:
    return f"{count} replica" + ("" if count == 1 else "s")


def _report(client: ModelhubClient, d: Deployment, waited: bool) -> None:
    from modelhub.cli.deployment_view import curl_line, traffic_text

    if not client.serves_deployments:
        console.print(
            f"recorded deployment {d.name} ({d.status.value}, {traffic_text(d)}); "
            + LOCAL_NOTE.format(name=d.name),
            markup=False,
            highlight=False,
        )
        return
    placed = _replicas(d.replicas) if d.pool is None else f"on pool {d.pool}"
    line = f"deployment {d.name}: {d.status.value}, {traffic_text(d)}, {placed}"
    if d.status.value == "updating" and len(d.traffic) == 2:
        line += f" (a canary: modelhub deployments promote|rollback {d.name})"
    if not waited:
        line += f"; follow it with modelhub deployments show {d.name}"
    console.print(line, markup=False, highlight=False)
    if d.error:
        err_console.print(f"note: {d.error}", markup=False, highlight=False)
    if not waited:
        return
    console.print(f"endpoint: {d.endpoint or '-'}", markup=False, highlight=False)
    base = getattr(client, "url", None)
    if isinstance(base, str):
        console.print(curl_line(base, d.name), markup=False, highlight=False, soft_wrap=True)


def _changed(
    client: ModelhubClient,
    d: Deployment,
    before: list[int],
    what: str,
    no_wait: bool,
    json: bool,
    canary_settles: bool = True,
    chose: VariantChoice | None = None,
) -> None:
    """Wait for a change (unless told not to or nothing runs it), then report it; the
    JSON carries `chose` (deploy --optimize's choice) as `optimisation`."""
    waited = client.serves_deployments and not no_wait
    if waited:
        d = _settle(client, d.name, what, json, canary_settles)
    if json:
        shown = d.model_dump(mode="json")
        if chose is not None:
            shown["optimisation"] = chose.model_dump(mode="json")
        print_json(shown)
    if waited:
        _check_outcome(d, before, what)
    if not json:
        _report(client, d, waited)


# -- commands ---------------------------------------------------------------------------


def deploy(
    ref: Annotated[
        str, typer.Argument(help="What to serve: NAME, NAME@VERSION or NAME@ALIAS.", metavar="REF")
    ],
    env: Annotated[
        str, typer.Option("--env", help="development, staging or production.")
    ] = "development",
    replicas: Annotated[
        int | None, typer.Option(help="Replica processes (default 1, or autoscale's minimum).")
    ] = None,
    autoscale: Annotated[
        str | None,
        typer.Option(help="Scale between MIN and MAX replicas by load.", metavar="MIN:MAX"),
    ] = None,
    name: Annotated[
        str | None,
        typer.Option(help="Deployment name (default: MODEL in production, MODEL-ENV elsewhere)."),
    ] = None,
    load_balancing: Annotated[
        str, typer.Option("--load-balancing", help="round_robin or least_outstanding.")
    ] = "round_robin",
    override_approval: Annotated[
        bool,
        typer.Option(
            "--override-approval", help="Serve an unapproved version in production (admins)."
        ),
    ] = False,
    log_rate: Annotated[
        float | None,
        typer.Option(
            "--log-rate",
            help="Share of requests the prediction log samples, 0-1 (default 0.1; 0: none).",
        ),
    ] = None,
    log_max_per_minute: Annotated[
        int | None,
        typer.Option("--log-max-per-minute", help="Most requests logged in any minute."),
    ] = None,
    optimize: Annotated[
        bool,
        typer.Option(
            "--optimize",
            help="Serve the version's optimised variant (modelhub optimize) within tolerance "
            "with the lowest measured latency; says which and why.",
        ),
    ] = False,
    memory: Annotated[
        str | None,
        typer.Option(help="Memory limit per replica (512Mi, 2GiB, bytes).", metavar="SIZE"),
    ] = None,
    cpus: Annotated[
        float | None, typer.Option(help="CPUs per replica (pinned to ceil(CPUS) of them).")
    ] = None,
    gpus: Annotated[int | None, typer.Option(help="GPUs per replica (CUDA).")] = None,
    pool: Annotated[
        str | None,
        typer.Option(
            "--pool",
            help="Place it on a shared model pool (shared) instead of its own replicas: "
            "loaded on demand, evicted least-recently-used (modelhub pools show).",
        ),
    ] = None,
    no_wait: NoWaitOpt = False,
    json: JsonOpt = False,
) -> None:
    """Serve a model version in an environment behind an inference endpoint."""
    from modelhub.client.deployment_wait import as_autoscale
    from modelhub.domain.deployments import Environment, LoadBalancing
    from modelhub.domain.enums import parse_enum
    from modelhub.services.deployments import DeployRequest

    request = DeployRequest(
        ref=ref,
        environment=parse_enum(Environment, env, "environment"),
        replicas=replicas,
        autoscale=as_autoscale(parse_autoscale(autoscale)),
        name=name,
        load_balancing=parse_enum(LoadBalancing, load_balancing, "load_balancing"),
        override_approval=override_approval,
        prediction_log=log_policy(log_rate, log_max_per_minute),
        optimize=optimize,
        resources={
            key: value
            for key, value in (("memory", memory), ("cpus", cpus), ("gpus", gpus))
            if value is not None
        },
        pool=pool,
    )
    with client_session() as client:
        created = client.deploy(request)
        if created.optimisation is not None and not json:
            from modelhub.cli.optimise import render_choice

            render_choice(created.optimisation)
        _changed(client, created, [], "deploying", no_wait, json, chose=created.optimisation)


@app.command("list")
def list_deployments(
    env: Annotated[str | None, typer.Option("--env", help="Only this environment.")] = None,
    model: Annotated[str | None, typer.Option(help="Only deployments of this model.")] = None,
    all: Annotated[bool, typer.Option("--all", help="Include stopped deployments.")] = False,
    json: JsonOpt = False,
) -> None:
    """List live deployments (stopped ones too with --all)."""
    from modelhub.cli.deployment_view import deployments_table

    with client_session() as client:
        found = client.list_deployments(env, model, all)
    if json:
        print_json(found)
    else:
        console.print(deployments_table(found))


@app.command()
def show(
    name: NameArg,
    since: Annotated[str, typer.Option(help="Window of the cost shown: 30d, 24h.")] = "30d",
    json: JsonOpt = False,
) -> None:
    """The deployment, its replicas' health, its endpoint, its usage per version, its
    canary analysis and what it cost (replica time, per 1,000 requests)."""
    from modelhub.cli.canary_view import canary_view
    from modelhub.cli.cost_view import cost_line
    from modelhub.cli.deployment_view import (
        deployment_details,
        health_table,
        usage_summary,
        usage_table,
    )

    with client_session() as client:
        deployment, usage = client.get_deployment(name)
        canary = client.canary_status(name)
        cost = client.deployment_cost(name, since)
    if json:
        print_json(
            {
                "deployment": deployment.model_dump(mode="json"),
                "usage": [u.model_dump(mode="json") for u in usage],
                "summary": [usage_summary(u) for u in usage],
                "canary": canary.model_dump(mode="json"),
                "cost": cost.model_dump(mode="json"),
            }
        )
        return
    console.print(deployment_details(deployment))
    if deployment.health:
        console.print(health_table(deployment))
    console.print(usage_table(usage) if usage else "no requests served yet")
    shown = canary_view(canary)
    if shown is not None:
        console.print(shown)
    console.print(f"cost over the last {since}: {cost_line(cost)}")


@app.command()
def scale(
    name: NameArg,
    replicas: Annotated[int, typer.Argument(help="The replica count.", metavar="N")],
    json: JsonOpt = False,
) -> None:
    """Run a fixed number of replicas (this turns autoscaling off)."""
    with client_session() as client:
        changed = client.scale_deployment(name, replicas)
        serves = client.serves_deployments
    if json:
        print_json(changed)
        return
    note = "" if serves else "; " + LOCAL_NOTE.format(name=name)
    console.print(
        f"deployment {name}: {_replicas(changed.replicas)}{note}", markup=False, highlight=False
    )


@app.command()
def update(
    name: NameArg,
    version: Annotated[
        str, typer.Option("--version", help="The version (number or alias) to roll out.")
    ],
    canary: Annotated[
        int | None,
        typer.Option(help="Send this percent of requests (1-99) to it first.", metavar="PERCENT"),
    ] = None,
    override_approval: Annotated[
        bool,
        typer.Option(
            "--override-approval", help="Roll out an unapproved version in production (admins)."
        ),
    ] = False,
    analysis: Annotated[
        str,
        typer.Option(
            click_type=click.Choice(["manual", "auto"]),
            help="auto: promote or roll back the canary on its measured error rate, latency "
            "and accuracy; manual: you do (promote|rollback).",
        ),
    ] = "manual",
    min_requests: Annotated[
        int | None,
        typer.Option(help="Canary requests before the analysis decides (auto).", min=1),
    ] = None,
    max_duration: Annotated[
        str | None,
        typer.Option(
            help="How long the analysis waits for them (e.g. 30m); then it is inconclusive.",
            metavar="DURATION",
        ),
    ] = None,
    alpha: Annotated[
        float | None, typer.Option(help="Significance level of the analysis' tests (auto).")
    ] = None,
    no_wait: NoWaitOpt = False,
    json: JsonOpt = False,
) -> None:
    """Roll out another version of the deployed model: all at once, or as a canary."""
    from modelhub.domain.deployments import AnalysisMode
    from modelhub.services.deployments import RolloutRequest

    request = RolloutRequest(
        deployment=name,
        version=version,
        canary=canary,
        override_approval=override_approval,
        analysis=AnalysisMode(analysis),
        min_requests=min_requests,
        max_duration=max_duration,
        alpha=alpha,
    )
    with client_session() as client:
        changed = client.update_deployment(request)
        _changed(client, changed, changed.versions, "update", no_wait, json)


@app.command()
def promote(name: NameArg, no_wait: NoWaitOpt = False, json: JsonOpt = False) -> None:
    """Send all traffic to the canary version and drain the old one."""
    with client_session() as client:
        changed = client.promote_deployment(name)
        _changed(client, changed, changed.versions, "promotion", no_wait, json, False)


@app.command()
def rollback(name: NameArg, no_wait: NoWaitOpt = False, json: JsonOpt = False) -> None:
    """Drop the canary, or go back to the version served before the last rollout."""
    with client_session() as client:
        changed = client.rollback_deployment(name)
        _changed(client, changed, changed.versions, "rollback", no_wait, json, False)


@app.command()
def stop(name: NameArg, json: JsonOpt = False) -> None:
    """Stop serving: the replicas drain and exit; the record stays (list --all)."""
    with client_session() as client:
        stopped = client.stop_deployment(name)
    if json:
        print_json(stopped)
    else:
        console.print(f"deployment {name} stopped", markup=False, highlight=False)


def predict(
    target: Annotated[
        str,
        typer.Argument(
            help="A deployment, or a model whose live deployment answers.", metavar="TARGET"
        ),
    ],
    input: Annotated[
        str | None,
        typer.Option("--input", help='The request as JSON: {"inputs": [{"name", "shape", ...}]}.'),
    ] = None,
    file: Annotated[
        Path | None, typer.Option("--file", help="Read the request from a JSON file.")
    ] = None,
    version: Annotated[
        int | None,
        typer.Option(help="One of the versions the deployment serves (default: its main one)."),
    ] = None,
    json: JsonOpt = False,
) -> None:
    """Send one inference request (Open Inference Protocol) and show the outputs."""
    from modelhub.cli.deployment_view import outputs_table

    body = read_request(input, file)
    with client_session() as client:
        answer: dict[str, Any] = client.predict(target, body, version)
    if json:
        print_json(answer)
    else:
        console.print(outputs_table(answer))
