"""PostgreSQL restarted while a run trains: the server reconnects and nothing is lost.

The test starts its own PostgreSQL 15 cluster (a private data folder on a free
loopback port, never the machine's shared server), one real `modelhub server` on it
and a training run; it stops the cluster while the run trains, waits until the
server's scheduler and host heartbeat have each failed a tick on the broken
connections, starts the cluster again and checks that the server answers, the run
completes once with every metric point its worker wrote, and what was written before
the restart is still there.

A second test, in process on SQLite, gives the scheduler what a launch cut short by
the database leaves behind (a run claimed, running under the scheduler, with no
worker) and checks that it is queued again at the next heartbeat rather than held.
"""

from __future__ import annotations

import json
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from modelhub.client import Client, RegisterRequest
from modelhub.domain.runs import RunStatus
from modelhub.training.scheduler.moves import now
from tests.integration.conftest import ServerProcess, free_port, make_server
from tests.integration.serving_helpers import write_model_a
from tests.integration.training_engine import (
    ADMIN,
    engine,
    tabular_spec,
    wait_for,
    with_blobs,
    write_blobs,
)
from tests.stores import stores_of

PG_BIN = Path("/usr/lib/postgresql/15/bin")
REQUIRE_POSTGRES = os.environ.get("MODELHUB_REQUIRE_POSTGRES", "") not in ("", "0")


def _poll(check: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"{what}: not within {timeout} s")


@dataclass
class Cluster:
    """A private PostgreSQL cluster, run as the `postgres` OS user when we are root."""

    root: Path
    port: int
    as_user: list[str]

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def pg_ctl(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*self.as_user, str(PG_BIN / "pg_ctl"), "-D", str(self.data), *args],
            capture_output=True,
            text=True,
            timeout=90,
            check=check,
        )

    def start(self) -> None:
        options = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off"
        self.pg_ctl("start", "-w", "-t", "60", "-l", str(self.root / "postgres.log"), "-o", options)

    def stop(self, check: bool = True) -> None:
        self.pg_ctl("stop", "-w", "-t", "60", "-m", "fast", check=check)

    def postmaster_pid(self) -> int | None:
        try:
            return int((self.data / "postmaster.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None


def _cluster_user() -> tuple[list[str], int | None]:
    """The command prefix that runs a tool as `postgres` (root may not run initdb)."""
    if os.geteuid() != 0:
        return [], None
    try:
        uid = pwd.getpwnam("postgres").pw_uid
    except KeyError:
        return [], None
    return ["runuser", "-u", "postgres", "--"], uid


def _missing() -> str | None:
    for tool in ("initdb", "pg_ctl", "postgres"):
        if not (PG_BIN / tool).is_file():
            return f"PostgreSQL 15 not installed: {PG_BIN / tool} is missing"
    if os.geteuid() == 0 and _cluster_user()[1] is None:
        return "running as root and no `postgres` OS user to run a private cluster as"
    if os.geteuid() == 0 and shutil.which("runuser") is None:
        return "running as root and no `runuser` to start a private cluster as `postgres`"
    return None


@pytest.fixture
def cluster() -> Iterator[Cluster]:
    reason = _missing()
    if reason is not None:
        if REQUIRE_POSTGRES:
            pytest.fail(f"MODELHUB_REQUIRE_POSTGRES=1 and {reason}", pytrace=False)
        pytest.skip(reason)
    as_user, uid = _cluster_user()
    # Not under pytest's tmp folder: that one is private to root, and `postgres` must
    # reach the data folder and the socket folder.
    root = Path(tempfile.mkdtemp(prefix="modelhub-pg-"))
    if uid is not None:
        os.chown(root, uid, -1)
    found = Cluster(root, free_port(), as_user)
    try:
        initdb = [str(PG_BIN / "initdb"), "-D", str(found.data), "-U", "postgres"]
        subprocess.run(
            [*as_user, *initdb, "--auth=trust", "-E", "UTF8", "--no-sync", "--no-instructions"],
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        )
        found.start()
        yield found
    finally:
        pid = found.postmaster_pid()
        found.stop(check=False)
        if pid is not None and found.postmaster_pid() == pid:
            os.kill(pid, signal.SIGQUIT)  # pg_ctl could not stop it: the immediate stop
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def server(cluster: Cluster, tmp_path: Path) -> Iterator[ServerProcess]:
    srv = make_server(
        tmp_path,
        MODELHUB_DATABASE_URL=cluster.url,
        MODELHUB_HOST_NAME="only",
        MODELHUB_HOST_HEARTBEAT_SECONDS="0.5",
        MODELHUB_TRAIN_HEARTBEAT_SECONDS="0.5",
        MODELHUB_TRAIN_MAX_RUNNING="1",
        MODELHUB_TRAIN_CPUS="1",
        MODELHUB_TRAIN_GPUS="0",
    )
    srv.start(timeout=120)
    try:
        yield srv
    finally:
        srv.stop()


def _answers(server: ServerProcess) -> bool:
    try:
        reply = httpx.get(f"{server.url}/api/v1/models/kept", headers=server.headers, timeout=2)
    except httpx.HTTPError:
        return False
    return reply.status_code == 200


@pytest.mark.postgres
def test_postgres_restarted_mid_run_the_server_reconnects_and_nothing_is_lost(
    cluster: Cluster, server: ServerProcess, tmp_path: Path
) -> None:
    with Client(server.url, token=server.token) as client:
        client.register(
            RegisterRequest(name="kept", type="classification"), write_model_a(tmp_path / "a")
        )
        client.add_user("vic", "viewer")
        client.register_dataset(write_blobs(tmp_path / "blobs.csv", 1_200), "blobs")
        client.create_pipeline(
            tabular_spec("restart", max_epochs=2, hyperparameters="{batch_size: 8}")
        )
        run = client.start_run("restart")
        # Training, and its first metric points recorded: the restart lands mid-run.
        _poll(lambda: client.run_metrics(run.id), 60, "the run's first metric points")
        before = client.get_run(run.id)
        assert before.status is RunStatus.RUNNING, before
        audit_before = client.audit_verify()
        assert audit_before.intact, audit_before.problems

    log_start = server.log.stat().st_size
    cluster.stop()
    stopped = datetime.now(UTC)

    def failed_ticks() -> bool:
        with open(server.log, "rb") as log:
            log.seek(log_start)
            text = log.read().decode(errors="replace")
        return "scheduler tick failed" in text and "host heartbeat failed" in text

    # Both loops met the broken connections before the database comes back.
    _poll(failed_ticks, 30, "the scheduler and the heartbeat failing a tick")
    assert not _answers(server)
    cluster.start()

    _poll(lambda: _answers(server), 30, "the server answering again after the restart")
    with Client(server.url, token=server.token) as client:
        finished = _poll(
            lambda: (
                (r := client.get_run(run.id)).status in (RunStatus.COMPLETED, RunStatus.FAILED)
                and r
            ),
            90,
            "the run finishing",
        )
        metrics = client.run_metrics(run.id)
        versions = [v.version for v in client.versions("restart-model")]
        kept = [v.version for v in client.versions("kept")]
        users = {u.name for u in client.list_users()}
        verdict = client.audit_verify()
        hosts = client.hosts()
    assert finished.status is RunStatus.COMPLETED, finished
    assert finished.attempts == 1  # never interrupted: the worker trained through it
    assert versions == [finished.result_version] == [1]  # completed once
    assert kept == [1] and "vic" in users
    assert verdict.intact, verdict.problems
    assert verdict.events > audit_before.events  # the run's registration, chained on
    # The heartbeat is renewed again: the host is alive, beating after the restart.
    assert [(h.name, h.alive) for h in hosts] == [("only", True)]
    assert hosts[0].heartbeat_at > stopped
    # Every metric point the worker wrote reached the database, the restart's included.
    written = [
        (item["name"], int(item["step"]))
        for line in (server.home / "runs" / str(run.id) / "metrics.jsonl").read_text().splitlines()
        if (item := json.loads(line))
    ]
    assert sorted((p.name, p.step) for p in metrics) == sorted(written)


def test_a_run_claimed_but_left_without_a_worker_is_queued_again_at_the_next_heartbeat(
    tmp_path: Path,
) -> None:
    settings = {"train_max_running": 2, "train_heartbeat_seconds": 0.2}
    with engine(tmp_path, **settings) as services:
        with_blobs(services, tmp_path, rows=800)
        services.training.create_pipeline(
            ADMIN, tabular_spec("long", max_epochs=3, hyperparameters="{batch_size: 8}")
        )
        services.training.create_pipeline(ADMIN, tabular_spec("cut", max_epochs=1))
        scheduler = services.training.build_scheduler()  # ticked by hand
        long = services.training.start(ADMIN, "long")
        scheduler.tick()
        assert list(scheduler.active) == [long.id]
        cut = services.training.start(ADMIN, "cut")
        # What a launch leaves when the database goes away just after its claim: the
        # run running under this scheduler, its lease renewed with the others, and no
        # worker followed.
        with stores_of(services) as stores:
            stores.metadata.move_run(
                cut.id,
                [RunStatus.QUEUED],
                status=RunStatus.RUNNING,
                attempts=1,
                started_at=now(),
                owner=scheduler.owner,
                lease_expires_at=now() + timedelta(seconds=scheduler.config.lease_seconds),
            )

        def relaunched() -> bool:
            return services.training.get_run(ADMIN, cut.id).attempts == 2

        wait_for(relaunched, timeout=30, scheduler=scheduler)
        # Queued again while the other run still trains, not once the scheduler's
        # leases all lapse.
        assert services.training.get_run(ADMIN, long.id).status is RunStatus.RUNNING

        def both_done() -> bool:
            runs = [services.training.get_run(ADMIN, r.id) for r in (long, cut)]
            return all(r.status is RunStatus.COMPLETED for r in runs)

        wait_for(both_done, timeout=120, scheduler=scheduler)
        versions = [v.version for v in services.registry.versions("cut-model")]
    assert versions == [1]  # completed once
