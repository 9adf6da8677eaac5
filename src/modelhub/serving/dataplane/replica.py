"""One replica process: a ModelHost behind the data plane, on uvicorn (uvloop + httptools).

Started by the replica supervisor, never by hand, in one of two ways:

    python -m modelhub.serving.dataplane.replica --shared-fd 5 --private-fd 6 --models FILE
    python -m modelhub.serving.dataplane.replica --assignment-fd 5 --private-fd 6 --warm torch

The second is a warm spare: it imports what every replica needs and the heavy
libraries first (torch and friends), then waits on its
assignment channel for the endpoint socket (passed as a file descriptor) and the
models to serve. A deployment that takes a spare skips seconds of imports. A spare
can be taken before its imports are done (the first deployment after the server
started): it then stops between two imports and goes on with its assignment, ahead
of a process started only now.

The shared socket is the deployment's endpoint: every replica of a deployment accepts
on the same listening socket, so the kernel spreads connections over them and no
proxy sits in the request path. The private socket is this replica's own: the
supervisor probes and administers it there. The process dies with its supervisor.

Both sockets arrive bound but not listening. The replica loads its preloaded models
first and only then listens on both: a deployment's port refuses connections until
one of its replicas can answer them, and a probe of a replica still loading fails
at once instead of waiting on an accept queue nobody reads.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import importlib
import json
import os
import select
import socket
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from modelhub.processes import die_with_parent

SECRET_ENV = "MODELHUB_REPLICA_SECRET"
GC_THRESHOLD = 20_000
BACKLOG = 4096
WARM = b"w"  # what a spare sends on its channel once its imports are done
PARENT_ENV = "MODELHUB_REPLICA_PARENT"
# What every replica imports whatever it serves: a spare imports these first, then
# the libraries most models need (its --warm list).
EVERY_REPLICA_IMPORTS = (
    "modelhub.serving.runtimes",
    "modelhub.serving.host",
    f"{__package__}.app",  # the data plane, beside this module
    "uvicorn",
    "uvloop",
    "httptools",
)


@dataclass(frozen=True)
class Assignment:
    shared: socket.socket
    models: Path
    secret: str | None
    limits: dict[str, Any] | None = None
    handoff: socket.socket | None = None  # connections the data-plane listener hands over
    deployment: str = ""


def _await_assignment(channel_fd: int, warm: list[str]) -> Assignment:
    channel = socket.socket(fileno=channel_fd)
    for module in [*EVERY_REPLICA_IMPORTS, *warm]:
        if select.select([channel], [], [], 0)[0]:
            # Taken before its imports were done (a deployment just after the server
            # started): the rest is imported by the models that need it, not first.
            break
        with contextlib.suppress(ImportError):
            importlib.import_module(module)
    else:
        with contextlib.suppress(OSError):  # tell the launcher this spare is warm now
            channel.sendall(WARM)
    message, fds, _, _ = socket.recv_fds(channel, 65536, 2)
    channel.close()
    if not message or not fds:  # the supervisor closed the channel: nothing to serve
        sys.exit(0)
    data = json.loads(message)
    handoff = socket.socket(fileno=fds[1]) if len(fds) > 1 else None
    return Assignment(
        socket.socket(fileno=fds[0]),
        Path(data["models"]),
        data["secret"],
        data.get("limits"),
        handoff,
        data.get("deployment", ""),
    )


def _limit(limits: dict[str, Any] | None, warm: list[str]) -> None:
    """Apply the replica's limits to itself (see modelhub.limits): its GPUs before CUDA
    starts, then, with its libraries imported, CPU affinity and address space."""
    from modelhub.limits import Limits, limit_self

    chosen = Limits.from_json(limits)
    if chosen.empty:
        return
    os.environ["CUDA_VISIBLE_DEVICES"] = ",".join(str(gpu) for gpu in chosen.gpus)
    if chosen.memory is not None:  # what is imported before the limit is not counted
        for module in [*EVERY_REPLICA_IMPORTS, *warm]:
            with contextlib.suppress(ImportError):
                importlib.import_module(module)
    notes = limit_self(chosen)
    if chosen.gpus:
        notes.append(_place_on_gpus(chosen.gpus))
    for note in notes:
        print(f"replica {os.getpid()}: {note}", file=sys.stderr, flush=True)


def _place_on_gpus(gpus: tuple[int, ...]) -> str:
    """Have the torch runtimes load on CUDA when this replica sees one of its GPUs."""
    from modelhub.serving.runtimes._common import use_device

    try:
        import torch
    except ImportError:
        return "torch is not installed: serving on CPU"
    shown = ",".join(str(gpu) for gpu in gpus)
    if not torch.cuda.is_available():
        return f"GPUs {shown} given but CUDA sees none: serving on CPU"
    use_device("cuda")
    return f"serving on CUDA, GPUs {shown} ({torch.cuda.get_device_name(0)})"


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="modelhub-replica")
    parser.add_argument("--shared-fd", type=int)
    parser.add_argument("--assignment-fd", type=int)
    parser.add_argument("--warm", action="append", default=[])
    parser.add_argument("--private-fd", type=int, required=True)
    parser.add_argument("--models", type=Path)
    parser.add_argument("--memory", type=int, default=0, help="bytes; 0 = no budget")
    parser.add_argument("--max-batch-size", type=int, default=32)
    parser.add_argument("--max-wait-ms", type=float, default=0.0)
    parser.add_argument("--rollup-seconds", type=int, default=60)
    parser.add_argument("--max-body-bytes", type=int, default=16 * 1024 * 1024)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--trusted-proxy", action="append", default=[])
    parser.add_argument("--spool", type=Path, help="where closed prediction log files go")
    parser.add_argument("--log-queue", type=int, default=4096)
    parser.add_argument("--log-file-bytes", type=int, default=8 * 1024 * 1024)
    parser.add_argument("--log-file-seconds", type=float, default=60.0)
    parser.add_argument("--limits", type=json.loads, help="JSON of modelhub.limits.Limits")
    parser.add_argument("--handoff-fd", type=int, help="connections from the data-plane listener")
    parser.add_argument("--deployment", default="")
    parser.add_argument("--verify-socket", type=Path, help="where to ask about tokens")
    parser.add_argument("--token-cache-seconds", type=float, default=1.0)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = _arguments(argv)
    die_with_parent(int(os.environ.get(PARENT_ENV, os.getppid())))
    # Before torch or onnxruntime load: one replica per core beats threads fighting.
    for variable in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[variable] = str(args.threads)
    if args.assignment_fd is not None:
        assignment = _await_assignment(args.assignment_fd, args.warm)
        _limit(assignment.limits, args.warm)  # imported already, unless taken early
    else:
        assignment = Assignment(
            socket.socket(fileno=args.shared_fd),
            args.models,
            os.environ.get(SECRET_ENV),
            None,
            socket.socket(fileno=args.handoff_fd) if args.handoff_fd is not None else None,
            args.deployment,
        )
        _limit(args.limits, args.warm)

    import uvicorn

    import modelhub
    from modelhub.serving.dataplane.app import DataPlane
    from modelhub.serving.host import ModelHost, ServedModel
    from modelhub.web.proxies import proxy_options

    shared = assignment.shared
    private = socket.socket(fileno=args.private_fd)
    private_port = private.getsockname()[1]
    models = [ServedModel.from_json(item) for item in json.loads(assignment.models.read_text())]
    host = ModelHost(
        memory_budget=args.memory or None,
        max_batch_size=args.max_batch_size,
        max_wait_seconds=args.max_wait_ms / 1000.0,
        rollup_seconds=args.rollup_seconds,
    )
    host.apply(models)
    prediction_log = None
    if args.spool is not None:
        from modelhub.serving.predlog import PredictionLog

        prediction_log = PredictionLog(
            args.spool,
            queue_size=args.log_queue,
            max_file_bytes=args.log_file_bytes,
            max_file_seconds=args.log_file_seconds,
        )
        prediction_log.start()
    plane = DataPlane(
        host,
        max_body_bytes=args.max_body_bytes,
        private_port=private_port,
        secret=assignment.secret,
        version=modelhub.__version__,
        prediction_log=prediction_log,
    )
    plane.configure_log(models)
    config = uvicorn.Config(
        plane,
        loop="uvloop",
        http="httptools",
        lifespan="off",
        access_log=False,
        log_level="warning",
        timeout_keep_alive=75,
        timeout_graceful_shutdown=30,
        **proxy_options(args.trusted_proxy),
        backlog=BACKLOG,
    )
    server = uvicorn.Server(config)

    # What is loaded so far lives as long as the process: keep the collector off it,
    # and collect young objects less often (a request makes many short-lived ones).
    gc.collect()
    gc.freeze()
    gc.set_threshold(GC_THRESHOLD, 20, 50)

    async def serve() -> None:
        try:
            await host.preload()  # failures are kept on their slots; stats report them
            gc.collect()
            gc.freeze()
            if assignment.handoff is not None and args.verify_socket is not None:
                take_handoffs(server, config, plane, assignment, args)
            await server.serve(sockets=[shared, private])  # listening starts here
        finally:
            host.close()
            if prediction_log is not None:
                prediction_log.close()  # what is buffered goes to the spool as closed files

    with asyncio.Runner(loop_factory=config.get_loop_factory()) as runner:
        runner.run(serve())
    sys.exit(0)


async def _accept(loop: asyncio.AbstractEventLoop, factory: Any, connection: socket.socket) -> None:
    try:
        await loop.connect_accepted_socket(factory, connection)
    except OSError:
        connection.close()  # the client went while it was handed over


def take_handoffs(
    server: Any, config: Any, plane: Any, assignment: Assignment, args: argparse.Namespace
) -> None:
    """Serve the connections the data-plane listener hands over, behind the token gate,
    once the server has started (uvicorn's own protocol, as if accepted here)."""
    import functools

    import uvicorn

    from modelhub.serving.dataplane.gate import Gate, TokenCache, VerifyClient

    assert assignment.handoff is not None
    handoff = assignment.handoff
    handoff.setblocking(False)
    verifier = VerifyClient(args.verify_socket)
    tokens = TokenCache(verifier.ask, args.token_cache_seconds)
    verifier.on_forget = tokens.clear
    gate = Gate(plane, assignment.deployment, tokens)
    gate_config = uvicorn.Config(
        gate,
        loop=config.loop,
        http=config.http,
        lifespan="off",
        access_log=False,
        log_level="warning",
        timeout_keep_alive=config.timeout_keep_alive,
        proxy_headers=False,  # the peer is the caller: no proxy sits before this gate
    )
    gate_config.load()
    loop = asyncio.get_running_loop()

    protocol: Any = gate_config.http_protocol_class
    factory = functools.partial(
        protocol, config=gate_config, server_state=server.server_state, app_state={}
    )

    def receive() -> None:
        # Every connection waiting, not one per loop turn: under load a turn takes
        # milliseconds, and the 500th connection of a burst would wait seconds for it.
        while True:
            try:
                message, fds, _, _ = socket.recv_fds(handoff, 16, 1)
            except (BlockingIOError, InterruptedError):
                return
            if not message:  # the server closed the channel: this replica is retiring
                loop.remove_reader(handoff.fileno())
                return
            for fd in fds:
                connection = socket.socket(fileno=fd)
                connection.setblocking(False)
                task = loop.create_task(_accept(loop, factory, connection))
                _TASKS.add(task)
                task.add_done_callback(_TASKS.discard)

    async def when_started() -> None:
        while not server.started and not server.should_exit:
            await asyncio.sleep(0.01)
        if server.started:
            loop.add_reader(handoff.fileno(), receive)

    _TASKS.add(loop.create_task(when_started()))


_TASKS: set[asyncio.Task[None]] = set()  # held until done: the loop keeps only weak refs


if __name__ == "__main__":
    main()
