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
    message, fds, _, _ = socket.recv_fds(channel, 65536, 1)
    channel.close()
    if not message or not fds:  # the supervisor closed the channel: nothing to serve
        sys.exit(0)
    data = json.loads(message)
    return Assignment(socket.socket(fileno=fds[0]), Path(data["models"]), data["secret"])


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
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = _arguments(argv)
    die_with_parent(int(os.environ.get(PARENT_ENV, os.getppid())))
    # Before torch or onnxruntime load: one replica per core beats threads fighting.
    for variable in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[variable] = str(args.threads)
    if args.assignment_fd is not None:
        assignment = _await_assignment(args.assignment_fd, args.warm)
    else:
        assignment = Assignment(
            socket.socket(fileno=args.shared_fd), args.models, os.environ.get(SECRET_ENV)
        )

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
            await server.serve(sockets=[shared, private])  # listening starts here
        finally:
            host.close()
            if prediction_log is not None:
                prediction_log.close()  # what is buffered goes to the spool as closed files

    with asyncio.Runner(loop_factory=config.get_loop_factory()) as runner:
        runner.run(serve())
    sys.exit(0)


if __name__ == "__main__":
    main()
