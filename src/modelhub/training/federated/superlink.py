"""Run the ServerApp's main in the run's worker against a SuperLink the user runs.

Flower 1.42's SuperLink serves its Control, Runtime and Fleet APIs over one HTTP
address. A run there has two halves: the Flower App Bundle (FAB) that the SuperNodes
fetch to start their ClientApp, and a ServerApp task that whoever claims it executes.
modelhub plays the part of `flwr run` and of Flower's SuperExec in one:

1. it submits a run over the Control API with a small FAB whose `clientapp` is
   `modelhub.training.federated.client_app:app` (the SuperNodes import it from their
   own modelhub install and read their rows from their `data-path` node config);
2. it claims that run's ServerApp task over the Runtime API (`AcquireTask`), which
   gives it the task's token;
3. it runs our ServerApp main right here with Flower's `HttpGrid` on that token, so
   per-round metrics, checkpoints, stop requests and the result work as in the
   simulation, and reports the task's end to the SuperLink.

The SuperLink must be started with `--isolation process`: with the default
`subprocess`, its own SuperExec claims the task first and starts `flwr-serverapp`,
which loads the FAB's `serverapp`, a stub that fails saying so.

Every call is bounded: an address nothing listens on fails at once, a SuperLink that
does not answer within its HTTP timeout fails the run, and a lost connection in the
rounds is retried for at most `RECONNECT_SECONDS`.
"""

from __future__ import annotations

import hashlib
import socket
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from flwr.serverapp import ServerApp

from modelhub.errors import Unavailable

if TYPE_CHECKING:
    from flwr.app import Context
    from flwr.serverapp import Grid

CONNECT_SECONDS = 5.0
CLAIM_SECONDS = 30.0
RECONNECT_SECONDS = 60.0
FAB_ID = "modelhub/modelhub-federated"
PYPROJECT = b"""[project]
name = "modelhub-federated"
version = "1.0.0"
description = "modelhub's federated tabular classifier: the ClientApp of a modelhub run"
license = "Apache-2.0"
dependencies = []

[tool.flwr.app]
publisher = "modelhub"

[tool.flwr.app.components]
serverapp = "modelhub.training.federated.superlink:server_app_stub"
clientapp = "modelhub.training.federated.client_app:app"
"""

server_app_stub = ServerApp()


@server_app_stub.main()
def _refuse(grid: Grid, context: Context) -> None:
    raise RuntimeError(
        "modelhub runs its ServerApp in the run's worker: start the SuperLink with "
        "`--isolation process` so that its own SuperExec leaves the task to modelhub"
    )


def run_on_superlink(address: str, main: Callable[[Grid, Context], None]) -> None:
    """Submit a run to the SuperLink at `address` and run `main` as its ServerApp.

    Raises Unavailable when the SuperLink cannot be reached or does not hand over the
    run's ServerApp task; an exception of `main` is reported to the SuperLink as the
    task's failure and raised again.
    """
    _check_reachable(address)
    run_id = _start_run(address)
    token = _claim_server_task(address, run_id)
    _run_task(address, token, run_id, main)


def _check_reachable(address: str) -> None:
    host, _, port = address.rpartition(":")
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=CONNECT_SECONDS):
            pass
    except OSError as exc:
        raise Unavailable(
            f"the SuperLink at {address} is not reachable: {exc}", {"superlink": address}
        ) from exc


def _start_run(address: str) -> int:
    """Submit the FAB over the Control API: what `flwr run` does; the run's id."""
    import httpx
    from flwr.cli.build import build_fab_from_files
    from flwr.common.serde import fab_to_proto, user_config_to_proto
    from flwr.proto.control_pb2 import StartRunRequest
    from flwr.supercore.control.control_http_client import ControlHttpClient
    from flwr.supercore.fab import Fab
    from flwr.supercore.interceptors import RuntimeVersionHttpInterceptor

    fab_bytes, _ = build_fab_from_files({"pyproject.toml": PYPROJECT})
    fab = Fab(hashlib.sha256(fab_bytes).hexdigest(), fab_bytes, {})
    client = ControlHttpClient.from_server_address(
        server_address=address,
        insecure=True,
        root_certificates=None,
        interceptors=[RuntimeVersionHttpInterceptor(component_name="flwr CLI")],
    )
    try:
        response = client.StartRun(
            StartRunRequest(
                fab=fab_to_proto(fab), override_config=user_config_to_proto({}), federation=""
            )
        )
    except httpx.HTTPError as exc:
        raise Unavailable(
            f"the SuperLink at {address} did not start the run: {exc}", {"superlink": address}
        ) from exc
    finally:
        client.close()
    if not response.HasField("run_id"):
        raise Unavailable(f"the SuperLink at {address} did not start the run", {})
    run_id = int(response.run_id)
    print(f"federated: run {run_id} submitted to the SuperLink at {address}", flush=True)
    return run_id


def _claim_server_task(address: str, run_id: int) -> str:
    """Claim the run's ServerApp task as Flower's SuperExec does; the task's token."""
    import httpx
    from flwr.proto.runtime_pb2 import AcquireTaskRequest
    from flwr.supercore.constant import TaskType
    from flwr.supercore.interceptors import RuntimeVersionHttpInterceptor
    from flwr.supercore.runtime import RuntimeHttpClient

    client = RuntimeHttpClient.from_server_address(
        server_address=address,
        insecure=True,
        root_certificates=None,
        interceptors=[RuntimeVersionHttpInterceptor(component_name="SuperExec")],
    )
    deadline = time.monotonic() + CLAIM_SECONDS
    try:
        while time.monotonic() < deadline:
            response = client.AcquireTask(
                AcquireTaskRequest(supported_task_types=[TaskType.SERVER_APP.value])
            )
            if response.HasField("task") and response.token:
                if response.task.run_id != run_id:  # another run's task: not ours to run
                    raise Unavailable(
                        f"the SuperLink at {address} handed over the task of run "
                        f"{response.task.run_id}, not of run {run_id}: is another "
                        "process claiming its ServerApp tasks?",
                        {"superlink": address},
                    )
                return str(response.token)
            time.sleep(0.2)
    except httpx.HTTPError as exc:
        raise Unavailable(
            f"the SuperLink at {address} did not hand over the run's ServerApp task: {exc}",
            {"superlink": address},
        ) from exc
    finally:
        client.close()
    raise Unavailable(
        f"the SuperLink at {address} did not hand over run {run_id}'s ServerApp task "
        f"within {CLAIM_SECONDS:.0f} s: was it started with `--isolation process`?",
        {"superlink": address},
    )


def _run_task(address: str, token: str, run_id: int, main: Callable[[Grid, Context], None]) -> None:
    """Pull the task's input, run `main` with the Grid, push the task's outcome."""
    import httpx
    from flwr.common.constant import SubStatus
    from flwr.common.serde import context_from_proto, run_from_proto
    from flwr.proto.runtime_pb2 import PullTaskInputRequest, PushTaskOutputRequest
    from flwr.supercore.heartbeat import HeartbeatSender, make_task_heartbeat_fn_http
    from flwr.supercore.task_identity import TaskIdentity
    from flwr.superlink.grid import HttpGrid

    grid = HttpGrid(runtime_api_address=address, insecure=True, token=token)
    # Flower's invoker retries a lost SuperLink without end; bound it (as Flower's own
    # serverapp runner bounds it on exit) so that a SuperLink gone mid-run fails the run.
    grid._retry_invoker.max_time = RECONNECT_SECONDS
    runtime = grid._runtime_client
    heartbeat = HeartbeatSender(make_task_heartbeat_fn_http(runtime))
    status, details = SubStatus.FAILED, "the ServerApp failed"
    try:
        heartbeat.start()
        task_input = runtime.PullTaskInput(PullTaskInputRequest())
        # The process's task identity, which Flower's messages are stamped with (as
        # Flower's own serverapp runner sets it): one task per worker process.
        TaskIdentity.task_id = task_input.task_id
        TaskIdentity.run_id = task_input.run.run_id
        TaskIdentity.node_id = task_input.context.node_id
        grid.set_run(run_from_proto(task_input.run))
        main(grid, context_from_proto(task_input.context))
        status, details = SubStatus.COMPLETED, ""
    except httpx.HTTPError as exc:
        details = f"the SuperLink at {address} failed run {run_id}: {exc}"
        raise Unavailable(details, {"superlink": address}) from exc
    except Exception as exc:
        details = f"the ServerApp failed: {exc}"
        raise
    finally:
        grid._retry_invoker.max_tries = 1
        try:
            runtime.PushTaskOutput(PushTaskOutputRequest(sub_status=status, details=details))
        except httpx.HTTPError as exc:
            print(f"federated: could not report the run's end to the SuperLink: {exc}")
        if heartbeat.is_running:
            heartbeat.stop()
        grid.close()
