"""The `modelhub` command."""

from __future__ import annotations

import sys
from typing import Annotated

import click
import typer

from modelhub.cli import (
    alerts,
    auth,
    cost,
    datasets,
    deployments,
    drift,
    engines,
    governance_app,
    governance_bias,  # noqa: F401 - adds its commands to governance_app
    governance_compliance,  # noqa: F401 - adds its commands to governance
    governance_explain,  # noqa: F401 - adds `governance explain`
    governance_report,  # noqa: F401 - registers its commands
    hosts,
    models,
    models_governance,  # noqa: F401 - registers its commands
    monitor,
    optimise,
    personas,
    plugins,
    pools,
    predictions,
    runs,
    training,
    tune,
)
from modelhub.cli.context import EXIT_CODES
from modelhub.errors import ModelhubError

app = typer.Typer(
    help="modelhub: register, version, train, serve, watch and govern AI models.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.add_typer(models.app, name="models")
app.add_typer(datasets.app, name="datasets")
app.add_typer(training.pipelines, name="pipelines")
app.add_typer(runs.app, name="runs")
app.add_typer(engines.app, name="engines")
app.add_typer(hosts.app, name="hosts")
app.add_typer(plugins.app, name="plugins")
app.command()(training.train)
app.command()(tune.tune)
app.command()(deployments.deploy)
app.add_typer(deployments.app, name="deployments")
app.add_typer(pools.app, name="pools")
app.command()(optimise.optimize)
app.add_typer(drift.app, name="drift")
app.command()(deployments.predict)
app.add_typer(predictions.app, name="predictions")
app.command()(predictions.feedback)
app.add_typer(auth.app, name="auth")
app.add_typer(cost.app, name="cost")
app.add_typer(auth.audit, name="audit")
app.add_typer(alerts.app, name="alerts")
app.add_typer(monitor.app, name="monitor")
app.add_typer(personas.app, name="personas")
import modelhub.cli.governance_workflow  # noqa: E402, F401 - adds its commands

app.add_typer(governance_app.app, name="governance")

LOOPBACK = ("127.", "localhost", "::1")
SHUTDOWN_GRACE_SECONDS = 5
PRIVATE_UMASK = 0o077


@app.command()
def server(
    host: Annotated[str | None, typer.Option(help="Address to bind (default 127.0.0.1).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default 8400).")] = None,
    no_auth: Annotated[bool, typer.Option(help="Accept requests without a token.")] = False,
    force_insecure: Annotated[
        bool, typer.Option(help="Allow --no-auth on a non-loopback address.")
    ] = False,
    data_plane_port: Annotated[
        int | None,
        typer.Option(
            help="Also listen here (on --host) for inference by deployment name, with tokens."
        ),
    ] = None,
) -> None:
    """Run the API server (REST, docs at /docs, metrics at /metrics)."""
    import os

    # What the server and its workers and replicas write (database, runs, logs,
    # artifacts) is readable by this user only.
    os.umask(PRIVATE_UMASK)

    from modelhub.errors import InvalidInput
    from modelhub.settings import Settings
    from modelhub.web.proxies import proxy_options

    settings = Settings()
    updates: dict[str, object] = {k: v for k, v in (("host", host), ("port", port)) if v}
    if data_plane_port is not None:
        updates["data_plane_port"] = data_plane_port
    if no_auth:
        updates["auth"] = False
    settings = settings.model_copy(update=updates)
    if not settings.auth and not settings.host.startswith(LOOPBACK) and not force_insecure:
        raise InvalidInput(
            f"refusing to serve {settings.host} without authentication: anyone who can reach "
            "it could change the registry; drop --no-auth, bind 127.0.0.1, or add "
            "--force-insecure"
        )
    launcher = None
    if settings.serve_supervisor:
        from modelhub.serving.launcher import ReplicaLauncher, ReplicaSettings

        # Started before the server imports its app and services (seconds): the warm
        # spare imports torch meanwhile, so the first deployment finds it (nearly) ready.
        launcher = ReplicaLauncher(ReplicaSettings.from_settings(settings))
        launcher.fill()

    from modelhub.services import build_services

    services = build_services(settings)
    try:
        # Before anything else is written: a second server on one SQLite file stops here.
        services.hosts.register()
    except BaseException:
        services.close()
        if launcher is not None:
            launcher.close()
        raise
    if launcher is not None:  # said once the server is sure to start (a refusal is one line)
        print(f"modelhub: resource limits: {launcher.enforcement.describe()}", file=sys.stderr)

    import uvicorn

    from modelhub.api.app import create_app

    try:
        uvicorn.run(
            create_app(settings, services=services, replica_launcher=launcher),
            host=settings.host,
            port=settings.port,
            log_level="warning",
            access_log=False,
            # Open run event streams would otherwise hold a stopping server until their run ends.
            timeout_graceful_shutdown=SHUTDOWN_GRACE_SECONDS,
            **proxy_options(settings.trusted_proxies),
        )
    finally:
        services.close()


def main(args: list[str] | None = None) -> None:
    """Run the CLI on `args` (default: the command line) and exit with its status."""
    try:
        result = app(args=args, standalone_mode=False)
    except ModelhubError as exc:
        from modelhub.cli.render import err_console

        err_console.print(f"error: {exc.message}", markup=False, highlight=False, soft_wrap=True)
        sys.exit(EXIT_CODES.get(exc.code, 1))
    except OSError as exc:  # a file the user named: missing, unreadable, not a folder
        from modelhub.cli.render import err_console

        where = f": {exc.filename}" if exc.filename else ""
        err_console.print(f"error: {exc.strerror or exc}{where}", markup=False, soft_wrap=True)
        sys.exit(EXIT_CODES["invalid_input"])
    except click.exceptions.Abort:
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    sys.exit(result if isinstance(result, int) else 0)


if __name__ == "__main__":
    main()
