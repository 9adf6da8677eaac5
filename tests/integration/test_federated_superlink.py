"""A federated run on real Flower SuperNodes through a SuperLink, on 127.0.0.1.

The test starts `flower-superlink --insecure --isolation process` and two
`flower-supernode --insecure` processes, each in its own process group with its own
FLWR_HOME, each SuperNode holding one site's rows in a CSV named by its `data-path`
node config. A run through the real scheduler with `federated.superlink` set runs the
ServerApp in its worker against that SuperLink; another, pointed at a port nothing
listens on, fails at once saying so. At the end the test kills exactly its groups.
"""

from __future__ import annotations

import contextlib
import csv
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psutil
import pytest

from modelhub.domain.runs import Run, RunStatus
from modelhub.services import Services
from tests.integration.federated_data import write_sites
from tests.integration.serving_helpers import wait_for
from tests.integration.training_engine import ADMIN, engine, finished, tabular_spec

ROUNDS = 2
FLWR_COMMANDS = {  # the executables the SuperNodes start, on this interpreter
    "flower-superlink": ("flwr.superlink.cli", "flower_superlink"),
    "flower-supernode": ("flwr.supernode.cli", "flower_supernode"),
    "flower-superexec": ("flwr.supercore.cli", "flower_superexec"),
    "flwr-clientapp": ("flwr.supernode.cli", "flwr_clientapp"),
}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def accepting(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def command_folder(folder: Path) -> Path:
    """Scripts named as Flower's commands that run them on this test's interpreter."""
    folder.mkdir()
    for name, (module, function) in FLWR_COMMANDS.items():
        script = folder / name
        script.write_text(
            f"#!{sys.executable}\nimport sys\nfrom {module} import {function}\n"
            f"sys.exit({function}())\n"
        )
        script.chmod(0o755)
    return folder


def group_members(groups: list[int]) -> list[psutil.Process]:
    members = []
    for process in psutil.process_iter():
        try:
            if os.getpgid(process.pid) in groups and process.status() != psutil.STATUS_ZOMBIE:
                members.append(process)
        except (ProcessLookupError, psutil.NoSuchProcess):
            continue
    return members


def listening_addresses(processes: list[psutil.Process]) -> set[str]:
    addresses: set[str] = set()
    for process in processes:
        try:
            sockets = process.net_connections(kind="inet")
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
        addresses |= {s.laddr.ip for s in sockets if s.status == psutil.CONN_LISTEN}
    return addresses


def split_by_site(dataset: Path, folder: Path) -> list[Path]:
    """One CSV per site (the dataset's columns), the first two sites: a SuperNode's rows."""
    with dataset.open() as source:
        rows = list(csv.DictReader(source))
    paths = []
    for site in ("north", "south"):
        path = folder / f"{site}.csv"
        with path.open("w", newline="") as target:
            writer = csv.DictWriter(target, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(row for row in rows if row["site"] == site)
        paths.append(path)
    return paths


@dataclass
class Federation:
    address: str
    groups: list[int]
    logs: Path


@pytest.fixture(scope="module")
def federation(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Federation]:
    tmp = tmp_path_factory.mktemp("superlink")
    bin_dir = command_folder(tmp / "bin")
    sites = split_by_site(write_sites(tmp / "sites.csv"), tmp)
    base_env = os.environ | {
        "FLWR_TELEMETRY_ENABLED": "0",
        "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
    }
    link_port = free_port()
    processes: list[subprocess.Popen[bytes]] = []

    def start(name: str, args: list[str], home: str) -> None:
        with (tmp / f"{home}.log").open("wb") as log:  # the child keeps its own copy
            processes.append(
                subprocess.Popen(
                    [str(bin_dir / name), *args],
                    env=base_env | {"FLWR_HOME": str(tmp / home)},
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            )

    try:
        start(
            "flower-superlink",
            [
                "--insecure",
                "--isolation",
                "process",
                "--host",
                "127.0.0.1",
                "--port",
                str(link_port),
            ],
            "superlink",
        )
        wait_for(lambda: accepting(link_port), timeout=60)
        for number, rows in enumerate(sites):
            node_port = free_port()
            start(
                "flower-supernode",
                [
                    *("--insecure", "--superlink", f"127.0.0.1:{link_port}"),
                    *("--host", "127.0.0.1", "--port", str(node_port)),
                    *("--node-config", f'data-path="{rows}"'),
                ],
                f"supernode-{number}",
            )
            wait_for(lambda port=node_port: accepting(port), timeout=60)
        yield Federation(f"127.0.0.1:{link_port}", [p.pid for p in processes], tmp)
    finally:
        for process in processes:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=30)
        groups = [p.pid for p in processes]
        wait_for(lambda: not group_members(groups), timeout=30)


def federated_spec(name: str, superlink: str) -> str:
    return tabular_spec(
        name,
        type="federated_learning",
        datasets="[sites]",
        hyperparameters="{batch_size: 8, learning_rate: 0.05, hidden: [16]}",
        federated=f"{{clients: 2, rounds: {ROUNDS}, superlink: '{superlink}'}}",
        resources="{cpus: 1, memory: 2GiB}",
    )


@dataclass
class Runs:
    services: Services
    real: Run
    real_address: str
    unreachable: Run
    addresses: set[str]


@pytest.fixture(scope="module")
def runs(federation: Federation, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Runs]:
    tmp = tmp_path_factory.mktemp("superlink-runs")
    with engine(tmp, train_cpus=2.0, train_memory="8GiB") as services:
        services.datasets.register(ADMIN, write_sites(tmp / "sites.csv"), "sites")
        nobody = f"127.0.0.1:{free_port()}"
        started = {}
        for key, address in (("real", federation.address), ("unreachable", nobody)):
            text = federated_spec(f"fed-{key}", address)
            services.training.create_pipeline(ADMIN, text)
            started[key] = services.training.start(ADMIN, f"fed-{key}")
        services.training.start_scheduler()
        done = {key: finished(services, run.id, timeout=240) for key, run in started.items()}
        addresses = listening_addresses(group_members(federation.groups))
        yield Runs(services, done["real"], federation.address, done["unreachable"], addresses)


def values(services: Services, run: Run, name: str) -> dict[int, float]:
    return {p.step: p.value for p in services.training.metrics(ADMIN, run.id, name)}


def test_a_run_on_real_supernodes_records_its_rounds_and_registers(
    runs: Runs, federation: Federation
) -> None:
    services, run = runs.services, runs.real
    logs = "".join(p.read_text(errors="replace") for p in federation.logs.glob("*.log"))
    assert run.status is RunStatus.COMPLETED, f"{run.error}\n{logs[-4000:]}"
    rounds = list(range(1, ROUNDS + 1))
    for name in ("train_loss", "val_loss", "val_accuracy", "clients_sampled", "clients_failed"):
        assert sorted(values(services, run, name)) == rounds, name
    assert set(values(services, run, "clients_sampled").values()) == {2.0}
    assert set(values(services, run, "clients_failed").values()) == {0.0}
    assert sorted(values(services, run, "clients_eval_accuracy")) == rounds
    assert run.metrics["val_accuracy"] >= 0.9
    assert [c.step for c in services.training.checkpoints(ADMIN, run.id)] == rounds
    version = services.registry.get("fed-real-model@1")
    assert version.metrics["val_accuracy"] == run.metrics["val_accuracy"]
    federated = version.lineage.federated
    assert federated["superlink"] == runs.real_address
    assert federated["partitioning"] == "each SuperNode's data-path"


def test_an_unreachable_superlink_fails_the_run_saying_so(runs: Runs) -> None:
    run = runs.unreachable
    assert run.status is RunStatus.FAILED
    assert run.error is not None and "is not reachable" in run.error, run.error
    assert run.error_code == "unavailable"
    assert run.attempts == 1  # unavailable is not retried


def test_the_federation_listened_on_loopback_only(runs: Runs) -> None:
    assert runs.addresses, "the SuperLink and SuperNodes listen somewhere"
    assert runs.addresses <= {"127.0.0.1"}
