"""Run a federated job: Flower's simulation of the spec's clients, in the worker process.

The simulation starts a Ray instance of its own inside the attempt's worker: bound to
127.0.0.1 only, without the dashboard, with a small object store, one CPU per client
actor and as many CPUs as the run reserved. Ray's processes are the worker's children
in its process group and die with it (Ray's own fate sharing), so a cancelled or
killed attempt leaves none behind.

The result is written exactly as the tabular trainer writes it (networks.tabular), so
the registered version loads and serves as a tabular_classifier version does.
"""

from __future__ import annotations

import hashlib
import math
import os
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modelhub.domain.hyperparameters import TabularHyperparameters
from modelhub.domain.pipelines import Federated
from modelhub.errors import ModelhubError
from modelhub.training.context import LocalContext, TrainResult
from modelhub.training.federated.data import prepare
from modelhub.training.federated.partitioning import Partitioning

if TYPE_CHECKING:
    from modelhub.training.federated.server import FederatedServer

OBJECT_STORE_BYTES = 100 * 1024**2  # Ray's minimum is 75 MiB; the arrays are small
RAY_ENVIRONMENT = {
    # Ray binds its services to the node's address; without "cluster" support that
    # address is 127.0.0.1 (ray._private.services.get_node_ip_address).
    "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",
    "RAY_USAGE_STATS_ENABLED": "0",
    "RAY_ACCEL_ENV_VAR_OVERRIDE_ON_ZERO": "0",
}


def backend_config(cpus: int, temp_dir: Path) -> dict[str, Any]:
    """Flower's Ray backend settings: a private, loopback-only Ray sized to the run,
    its session files (sockets, logs) under `temp_dir`."""
    return {
        "client_resources": {"num_cpus": 1, "num_gpus": 0.0},
        "init_args": {
            "num_cpus": cpus,
            "num_gpus": 0,
            "include_dashboard": False,
            "object_store_memory": OBJECT_STORE_BYTES,
            "logging_level": "WARNING",
            "log_to_driver": True,
            "_temp_dir": str(temp_dir),
        },
    }


def ray_temp_dir(run_dir: Path) -> Path:
    """Where the run's Ray keeps its session files: a short path (Ray's socket paths must
    fit in 107 bytes), the same for every attempt of the run, so that the next attempt
    removes what a killed one left; the simulation's end removes it too."""
    key = hashlib.sha256(str(run_dir.resolve()).encode()).hexdigest()[:16]
    return Path(tempfile.gettempdir()) / f"modelhub-ray-{key}"


def train(ctx: LocalContext, job: dict[str, Any]) -> TrainResult:
    """Train the tabular classifier with Flower; its metrics and output as a trainer's.

    Raises InvalidInput for unusable data, Unavailable when a round has too few clients.
    """
    os.environ.update(RAY_ENVIRONMENT)
    from flwr.serverapp import ServerApp
    from flwr.simulation import run_simulation
    from flwr.supercore.logger import update_console_handler

    from modelhub.training.federated.client_app import app as client_app
    from modelhub.training.federated.server import FederatedServer

    update_console_handler(timestamps=True, colored=False)  # plain lines in the run's log
    spec = Federated.model_validate(job["federated"])
    partitioning = Partitioning.from_json(job.get("partitioning"))
    hp = TabularHyperparameters.parse(ctx.hyperparameters)
    data = prepare(
        ctx.dataset(),
        hp,
        partitioning,
        spec.clients,
        spec.local_epochs,
        ctx.seed,
        ctx.validation_split,
        ctx.run_dir / "federated",
    )
    print(
        f"federated: {spec.clients} clients ({partitioning.describe()}, rows "
        f"{min(data.client_rows)}-{max(data.client_rows)}), {spec.rounds} rounds of "
        f"{spec.strategy}",
        flush=True,
    )
    server = FederatedServer(ctx, spec, data, ctx.seed)
    if spec.superlink is not None:
        _run_on_superlink(spec.superlink, server)
        return _result(ctx, server)
    server_app = ServerApp()
    server_app.main()(server.main)
    ray_dir = ray_temp_dir(ctx.run_dir)
    shutil.rmtree(ray_dir, ignore_errors=True)  # what a killed attempt of the run left
    ray_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    try:
        run_simulation(
            server_app=server_app,
            client_app=client_app,
            num_supernodes=spec.clients,
            backend_config=backend_config(max(1, int(job.get("threads", 1))), ray_dir),
        )
    finally:
        shutil.rmtree(ray_dir, ignore_errors=True)
    if server.error is not None:
        if isinstance(server.error, ModelhubError):
            raise server.error
        raise RuntimeError(f"the federated server failed: {server.error}") from server.error
    return _result(ctx, server)


def _run_on_superlink(address: str, server: FederatedServer) -> None:
    """The ServerApp main here, its Grid on the SuperLink's real SuperNodes."""
    from flwr.app import Context
    from flwr.serverapp import Grid

    from modelhub.training.federated.superlink import run_on_superlink

    def main(grid: Grid, context: Context) -> None:
        server.main(grid, context)
        if server.error is not None:  # reported to the SuperLink as the task's failure
            raise server.error

    print(f"federated: real SuperNodes through the SuperLink at {address}", flush=True)
    run_on_superlink(address, main)


def _result(ctx: LocalContext, server: FederatedServer) -> TrainResult:
    """The final metrics, and the output folder as the tabular trainer writes it.

    With keep_best, the best round's global model is the output (as with the trainer).
    """
    import torch

    from modelhub.networks.tabular import write_output
    from modelhub.training.trainers._best import best_state, logged_at
    from modelhub.training.trainers.tabular import evaluate

    x_val, y_val = torch.from_numpy(server.data.x_val), torch.from_numpy(server.data.y_val)
    metrics = dict(server.last)
    if "val_loss" not in metrics:  # resumed after the last round: nothing trained here
        loss, accuracy = evaluate(server.model, x_val, y_val)
        metrics = {"val_loss": loss, "val_accuracy": accuracy}
    best = best_state(ctx, server.rounds_done)
    if best is not None:
        best_round, state = best
        if state is not None:
            server.model.load_state_dict(state["model"])
            loss, accuracy = evaluate(server.model, x_val, y_val)
            metrics = {"val_loss": loss, "val_accuracy": accuracy}
            metrics.update(logged_at(ctx, best_round, ("train_loss",)))
        metrics["best_step"] = float(best_round)
    metrics = {k: v for k, v in metrics.items() if math.isfinite(v)}
    metrics["rounds"] = float(server.rounds_done)
    if server.stopped:
        metrics["stopped_at_round"] = float(server.rounds_done)
    task = server.data.task
    write_output(
        ctx.output_dir,
        server.model,
        task.features,
        task.label,
        task.classes,
        task.hidden,
        task.mean,
        task.std,
    )
    return TrainResult(metrics=metrics, output_dir=ctx.output_dir)
