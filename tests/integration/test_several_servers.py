"""Two real servers with separate homes on one PostgreSQL database and one S3 bucket.

One pair for the module: they list each other, share auth and one audit chain,
claim each run once, place deployments on either host and answer for both; the last
test kills one with SIGKILL and watches the other take over its run and its
deployment. A second server on one SQLite file is refused (no pair needed).
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from modelhub.client import Client, RegisterRequest
from modelhub.domain.runs import RunStatus
from modelhub.services import build_services
from modelhub.settings import Settings
from tests.conftest import BUCKET, CREDENTIALS
from tests.integration.conftest import ServerProcess, clean_env, free_port, make_server
from tests.integration.serving_helpers import oip_body, settled, wait_for, write_model_a
from tests.integration.training_engine import tabular_spec, write_blobs

LEASE_SECONDS = 3.0
DEAD_SECONDS = 3.0


@dataclass
class Pair:
    a: ServerProcess
    b: ServerProcess
    token: str
    root: Path

    def client(self, server: ServerProcess) -> Client:
        return Client(server.url, token=self.token)

    def http(self, server: ServerProcess, timeout: float = 60) -> httpx.Client:
        """Raw HTTP to `server` with the admin's token (made by a, valid on both)."""
        headers = {"authorization": f"Bearer {self.token}"}
        return httpx.Client(base_url=server.url, headers=headers, timeout=timeout)


@pytest.fixture(scope="module")
def pair(pg_url: str, s3_endpoint: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pair]:
    import psycopg

    schema = f"hosts_{uuid.uuid4().hex[:12]}"
    plain = pg_url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(plain, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    root = tmp_path_factory.mktemp("two-servers")
    shared = {
        "MODELHUB_DATABASE_URL": f"{pg_url}?options=-csearch_path%3D{schema}",
        "MODELHUB_ARTIFACTS": f"s3://{BUCKET}/{schema}",
        "MODELHUB_S3_ENDPOINT_URL": s3_endpoint,
        "AWS_ACCESS_KEY_ID": CREDENTIALS["aws_access_key_id"],
        "AWS_SECRET_ACCESS_KEY": CREDENTIALS["aws_secret_access_key"],
        "AWS_DEFAULT_REGION": "us-east-1",
        "MODELHUB_HOST_HEARTBEAT_SECONDS": "0.5",
        "MODELHUB_HOST_DEAD_SECONDS": str(DEAD_SECONDS),
        "MODELHUB_TRAIN_LEASE_SECONDS": str(LEASE_SECONDS),
        "MODELHUB_TRAIN_HEARTBEAT_SECONDS": "0.5",
        "MODELHUB_TRAIN_CPUS": "2",
        "MODELHUB_TRAIN_GPUS": "0",
        "MODELHUB_TRAIN_MAX_RUNNING": "2",
        "MODELHUB_SERVE_HEALTH_SECONDS": "0.2",
        # Tokens are hashed with one key on every server sharing the database.
        "MODELHUB_KEY_PATH": str(root / "server.key"),
    }
    a = make_server(root / "a", MODELHUB_HOST_NAME="a", **shared)
    b = make_server(root / "b", MODELHUB_HOST_NAME="b", **shared)
    try:
        # Two servers, starting one after the other on a loaded 2-core machine.
        a.start(timeout=150)  # the first start makes the admin, its token in a's home
        b.start(timeout=150)
        yield Pair(a, b, a.token, root)
    finally:
        b.stop()
        a.stop()
        with psycopg.connect(plain, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


pytestmark = pytest.mark.postgres


def test_each_server_lists_both_and_only_admins_may_read(pair: Pair) -> None:
    with pair.client(pair.b) as client:
        hosts = client.hosts()
        client.add_user("vic", "viewer")
        _, viewer = client.create_token(user="vic", scope="read")
    assert [(h.name, h.alive, h.cpus, h.port) for h in hosts] == [
        ("a", True, 2.0, pair.a.port),
        ("b", True, 2.0, pair.b.port),
    ]
    assert [h.pid for h in hosts] == [pair.a.proc.pid, pair.b.proc.pid]  # type: ignore[union-attr]
    assert all(h.memory_bytes > 0 and h.address == "127.0.0.1" for h in hosts)
    url = f"{pair.a.url}/api/v1/hosts"
    assert httpx.get(url).status_code == 401
    assert httpx.get(url, headers={"authorization": f"Bearer {viewer}"}).status_code == 403


def test_audit_chain_stays_intact_with_both_servers_writing_at_once(pair: Pair) -> None:
    def add_users(server: ServerProcess, prefix: str) -> None:
        with pair.client(server) as client:
            for i in range(8):
                client.add_user(f"{prefix}{i}", "viewer")

    threads = [
        threading.Thread(target=add_users, args=(server, prefix))
        for server, prefix in ((pair.a, "from-a-"), (pair.b, "from-b-"))
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    with pair.client(pair.a) as client:
        verdict = client.audit_verify()
        added = client.audit_events(action="users.add", limit=100)
    assert verdict.intact, verdict.problems
    targets = {e.target for e in added}
    assert {f"from-{s}-{i}" for s in "ab" for i in range(8)} <= targets


def test_runs_submitted_to_both_servers_each_run_once(pair: Pair) -> None:
    blobs = write_blobs(pair.root / "blobs.csv", 400)
    with pair.client(pair.a) as a, pair.client(pair.b) as b:
        a.register_dataset(blobs, "blobs")
        a.create_pipeline(tabular_spec("shared", max_epochs=1))
        runs = [(a if i % 2 else b).start_run("shared") for i in range(4)]

        def all_done() -> list[Any] | None:
            current = [a.get_run(r.id) for r in runs]
            return current if all(r.status is RunStatus.COMPLETED for r in current) else None

        done = wait_for(all_done, timeout=180)
    assert [r.attempts for r in done] == [1] * 4
    assert sorted(r.result_version for r in done) == [1, 2, 3, 4]


def test_deployments_spread_over_hosts_and_either_server_answers(pair: Pair) -> None:
    with pair.client(pair.a) as client:
        client.register(
            RegisterRequest(name="spread", type="classification"),
            write_model_a(pair.root / "model"),
        )
    body = oip_body(np.ones((1, 32)))
    with pair.http(pair.a) as http:
        for name in ("one", "two"):
            reply = http.post("/api/v1/deployments", json={"model": "spread@1", "name": name})
            assert reply.status_code == 202, reply.text
        placed = {name: settled(http, name) for name in ("one", "two")}
    assert {d["status"] for d in placed.values()} == {"running"}
    assert sorted(d["host"] for d in placed.values()) == ["a", "b"]
    for server in (pair.a, pair.b):
        for name in ("one", "two"):
            with pair.http(server) as http:
                reply = http.post(f"/v2/models/{name}/infer", json=body)
            assert reply.status_code == 200, (server.url, name, reply.text)


def test_kill_9_of_one_server_its_run_and_deployment_come_back_on_the_other(pair: Pair) -> None:
    with pair.client(pair.a) as client:
        client.register_dataset(write_blobs(pair.root / "long.csv", 2_400), "long-blobs")
        spec = tabular_spec(
            "long",
            datasets="[long-blobs]",
            max_epochs=3,
            hyperparameters="{batch_size: 8}",
            checkpoint="{every_steps: 50}",
        )
        client.create_pipeline(spec)
        run = client.start_run("long")
        wait_for(lambda: client.run_checkpoints(run.id), timeout=120)
        held = client.get_run(run.id)
        assert held.status is RunStatus.RUNNING and held.owner is not None
        pid = int(held.owner.split(":")[1])
        victim, survivor = (pair.a, pair.b) if pid == pair.a.proc.pid else (pair.b, pair.a)  # type: ignore[union-attr]
        victim_name = "a" if victim is pair.a else "b"
        placed = {d.name: d.host for d in client.list_deployments()}
    moving = [name for name, host in placed.items() if host == victim_name]
    assert moving, placed

    victim.kill9()
    killed = time.monotonic()
    with pair.client(survivor) as client:

        def taken_over() -> bool:
            now = client.get_run(run.id)
            return now.attempts == 2 or now.status is RunStatus.COMPLETED

        wait_for(taken_over, timeout=LEASE_SECONDS + 30)
        takeover_seconds = time.monotonic() - killed
        finished = wait_for(
            lambda: (r := client.get_run(run.id)).status is RunStatus.COMPLETED and r, 180
        )

        def moved_and_serving() -> bool:
            found = {d.name: d for d in client.list_deployments()}
            return all(
                found[n].host != victim_name
                and found[n].status.value == "running"
                and any(h.ready for h in found[n].health)
                for n in moving
            )

        wait_for(moved_and_serving, timeout=DEAD_SECONDS + 60)
        hosts = {h.name: h.alive for h in client.hosts()}
        versions = [v.version for v in client.versions("long-model")]
    # Taken over within the lease (and the heartbeats that notice it), from its checkpoint.
    assert takeover_seconds < LEASE_SECONDS + 10, takeover_seconds
    assert finished.attempts == 2 and finished.result_version is not None
    assert versions == [finished.result_version]  # completed once: one version
    assert hosts == {"a": victim is not pair.a, "b": victim is not pair.b}
    with pair.http(survivor) as http:
        for name in moving:
            reply = http.post(f"/v2/models/{name}/infer", json=oip_body(np.ones((1, 32))))
            assert reply.status_code == 200, reply.text


def test_a_second_server_on_one_sqlite_file_is_refused_and_changes_nothing(
    tmp_path: Path,
) -> None:
    home = tmp_path / "home"
    services = build_services(Settings(home=home, port=free_port()))
    try:
        services.hosts.start()  # this test process: a live server on the file, heartbeating
        hosts_before = [(h.name, h.pid, h.started_at) for h in services.hosts.list_hosts(_admin())]
        events_before = services.audit.verify(_admin(), None).events
        result = subprocess.run(
            [sys.executable, "-m", "modelhub", "server", "--port", str(free_port())],
            env=clean_env(MODELHUB_HOME=str(home), MODELHUB_SERVE_WARM_SPARES="0"),
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert result.returncode != 0
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and "SQLite serves one server only" in lines[0], result.stderr
        after = [(h.name, h.pid, h.started_at) for h in services.hosts.list_hosts(_admin())]
        assert after == hosts_before
        assert services.audit.verify(_admin(), None).events == events_before
        assert not (home / "admin.token").exists()
    finally:
        services.hosts.stop()
        services.close()


def _admin() -> Any:
    from modelhub.domain.auth import Caller, Role

    return Caller(name="root", role=Role.ADMIN)
