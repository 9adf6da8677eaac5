"""A real Ray head on this host for the Ray engine's tests, and a server's scheduler using it.

The head is `ray start --head --block` run with this interpreter (so Ray's workers
import modelhub from this tree), in a process group of its own: stopping it kills
that group, never anything else (`ray stop` would stop every Ray on the host).
Every port it opens is picked free, so it can share the host with other heads.

    python -m tests.integration.ray_cluster   run a server's training scheduler (with the
                                              Ray engine of MODELHUB_TRAIN_RAY_ADDRESS)
                                              until killed
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from modelhub.services import build_services
from modelhub.settings import Settings
from tests.integration.conftest import free_port

READY_LINE = "Ray runtime started"


@dataclass
class RayHead:
    address: str  # host:port of its GCS, as a node of the cluster connects
    client_address: str  # ray://host:port, as Ray Client connects
    process: subprocess.Popen[bytes]
    folder: Path

    def group_members(self) -> list[int]:
        """Processes still in the head's process group (its raylet, workers, actors)."""
        found = []
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                with contextlib.suppress(OSError):
                    if os.getpgid(int(entry)) == self.process.pid:
                        found.append(int(entry))
        return found

    def stop(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()
        deadline = time.monotonic() + 10
        while self.group_members() and time.monotonic() < deadline:
            time.sleep(0.1)
        shutil.rmtree(self.folder, ignore_errors=True)  # its session: logs, sockets, spill


def start_ray_head(cpus: int = 2) -> RayHead:
    """A head on 127.0.0.1 with `cpus` CPUs and a small object store; ready when it returns."""
    folder = Path(tempfile.mkdtemp(prefix="mh-ray-", dir="/tmp"))  # short: Ray's socket paths
    gcs, client = free_port(), free_port()
    ports = {
        "--port": gcs,
        "--ray-client-server-port": client,
        "--dashboard-port": free_port(),
        "--dashboard-agent-listen-port": free_port(),
        "--dashboard-agent-grpc-port": free_port(),
        "--runtime-env-agent-port": free_port(),
        "--metrics-export-port": free_port(),
    }
    command = [
        sys.executable,
        *("-m", "ray.scripts.scripts", "start", "--head", "--block"),
        "--node-ip-address=127.0.0.1",
        "--include-dashboard=false",
        "--disable-usage-stats",
        f"--num-cpus={cpus}",
        "--num-gpus=0",
        "--object-store-memory=80000000",
        f"--temp-dir={folder}",
        *(f"{flag}={port}" for flag, port in ports.items()),
    ]
    log = folder / "head.log"
    with open(log, "wb") as out:
        process = subprocess.Popen(
            command, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    head = RayHead(f"127.0.0.1:{gcs}", f"ray://127.0.0.1:{client}", process, folder)
    deadline = time.monotonic() + 120
    while READY_LINE not in log.read_text(errors="replace"):
        if process.poll() is not None or time.monotonic() > deadline:
            said = log.read_text(errors="replace")[-3000:]
            head.stop()
            raise RuntimeError(f"the Ray head did not start:\n{said}")
        time.sleep(0.2)
    return head


def serve() -> None:
    """A training server's scheduler on the Ray engine, until this process is killed."""
    services = build_services(Settings())
    assert services.settings.train_ray_address, "MODELHUB_TRAIN_RAY_ADDRESS is not set"
    services.training.start_scheduler()
    print("scheduling", flush=True)
    threading.Event().wait()


if __name__ == "__main__":
    serve()
