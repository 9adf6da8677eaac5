"""One replica process: a ModelHost behind the data plane, on uvicorn (uvloop + httptools).

Started by the replica supervisor, never by hand:

    python -m modelhub.api.dataplane.replica --shared-fd 5 --private-fd 6 --models FILE

The shared socket is the deployment's endpoint: every replica of a deployment accepts
on the same listening socket, so the kernel spreads connections over them and no
proxy sits in the request path. The private socket is this replica's own: the
supervisor probes and administers it there. The process dies with its supervisor.
"""

from __future__ import annotations

import argparse
import asyncio
import ctypes
import json
import os
import signal
import socket
import sys
from pathlib import Path

PR_SET_PDEATHSIG = 1
SECRET_ENV = "MODELHUB_REPLICA_SECRET"


def _die_with_parent() -> None:
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    except OSError:  # not Linux: the supervisor stops replicas itself
        pass


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="modelhub-replica")
    parser.add_argument("--shared-fd", type=int, required=True)
    parser.add_argument("--private-fd", type=int, required=True)
    parser.add_argument("--models", type=Path, required=True)
    parser.add_argument("--memory", type=int, default=0, help="bytes; 0 = no budget")
    parser.add_argument("--max-batch-size", type=int, default=32)
    parser.add_argument("--max-wait-ms", type=float, default=0.0)
    parser.add_argument("--max-body-bytes", type=int, default=16 * 1024 * 1024)
    parser.add_argument("--threads", type=int, default=1)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = _arguments(argv)
    _die_with_parent()
    # Before torch or onnxruntime load: one replica per core beats threads fighting.
    for variable in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[variable] = str(args.threads)

    import uvicorn

    import modelhub
    from modelhub.api.dataplane.app import DataPlane
    from modelhub.serving.host import ModelHost, ServedModel

    shared = socket.socket(fileno=args.shared_fd)
    private = socket.socket(fileno=args.private_fd)
    private_port = private.getsockname()[1]
    models = [ServedModel.from_json(item) for item in json.loads(args.models.read_text())]
    host = ModelHost(
        memory_budget=args.memory or None,
        max_batch_size=args.max_batch_size,
        max_wait_seconds=args.max_wait_ms / 1000.0,
    )
    host.apply(models)
    plane = DataPlane(
        host,
        max_body_bytes=args.max_body_bytes,
        private_port=private_port,
        secret=os.environ.get(SECRET_ENV),
        version=modelhub.__version__,
    )
    config = uvicorn.Config(
        plane,
        loop="uvloop",
        http="httptools",
        lifespan="off",
        access_log=False,
        log_level="warning",
        timeout_keep_alive=75,
        timeout_graceful_shutdown=30,
    )
    server = uvicorn.Server(config)

    async def serve() -> None:
        preload = asyncio.ensure_future(host.preload())
        try:
            await server.serve(sockets=[shared, private])
        finally:
            preload.cancel()
            host.close()

    with asyncio.Runner(loop_factory=config.get_loop_factory()) as runner:
        runner.run(serve())
    sys.exit(0)


if __name__ == "__main__":
    main()
