"""Two servers on one PostgreSQL database and one S3 bucket, one killed halfway.

100 tiny runs (tabular_classifier, 200 rows, one epoch, cpus 1) are submitted
alternately to two `modelhub server` processes with separate homes that share a
fresh PostgreSQL database (the one on 127.0.0.1:5432) and a moto S3 server on
loopback. When half the runs have completed, the server holding the most running
runs is killed with SIGKILL. The other takes its runs over when their leases lapse
(`train_lease_seconds`, 5 here) and drains the queue.

Checked: every run ends completed (none lost), each run's result registered once
(the result model has exactly one version per run, and each run completed with one
result version: none run twice to completion). Measured: time from the first
submit to the last completion (`drain_s`), and, for every run the kill
interrupted, the time from the kill until the survivor queued it again
(`takeover_max_s`, against the lease) and to its next attempt's start
(`restart_max_s`: a requeued run waits for a free slot behind the queue).

Reference, in the same run: the same runs drained by one server alone, no kill
(`reference_one_server_drain_s`). Two servers with one killed halfway should drain
no slower than one server: half the work ran on two, the rest on one.

    python bench/bench_two_servers.py [--runs 100] [--quick]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

from benchlib import (
    admin_token,
    emit,
    free_port,
    isolate_from_user_env,
    log,
    modelhub_server_argv,
    rounded,
    server_process,
    stop_process,
    wait_http,
)
from trainlib import pipeline_yaml, write_blobs_csv

PG_ADMIN = os.environ.get("MODELHUB_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
BUCKET = "bench-two-servers"
LEASE_SECONDS = 5.0
AWS = {
    "AWS_ACCESS_KEY_ID": "test",
    "AWS_SECRET_ACCESS_KEY": "test",
    "AWS_DEFAULT_REGION": "us-east-1",
}


@contextlib.contextmanager
def fresh_database() -> Iterator[str]:
    import psycopg

    name = f"bench_two_{uuid.uuid4().hex[:10]}"
    host = PG_ADMIN.split("//", 1)[1].rsplit("/", 1)[0]
    with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"postgresql+psycopg://{host}/{name}"
    finally:
        with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
            admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s",
                (name,),
            )
            admin.execute(f'DROP DATABASE IF EXISTS "{name}"')


@contextlib.contextmanager
def moto_server(root: Path) -> Iterator[str]:
    import boto3

    port = free_port()
    with open(root / "moto.log", "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        endpoint = f"http://127.0.0.1:{port}"
        wait_http(f"{endpoint}/moto-api/", proc)
        client = boto3.client(
            "s3",
            endpoint_url=endpoint,
            region_name="us-east-1",
            aws_access_key_id=AWS["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=AWS["AWS_SECRET_ACCESS_KEY"],
        )
        client.create_bucket(Bucket=BUCKET)
        yield endpoint
    finally:
        stop_process(proc)


def server_env(home: Path, name: str, database: str, s3: str, prefix: str) -> dict[str, str]:
    return {
        **{k: v for k, v in os.environ.items() if not k.startswith("MODELHUB_")},
        **AWS,
        "MODELHUB_HOME": str(home),
        "MODELHUB_HOST_NAME": name,
        "MODELHUB_KEY_PATH": str(home.parent / "server.key"),
        "MODELHUB_DATABASE_URL": database,
        "MODELHUB_ARTIFACTS": f"s3://{BUCKET}/{prefix}",
        "MODELHUB_S3_ENDPOINT_URL": s3,
        "MODELHUB_TRAIN_CPUS": "2",
        "MODELHUB_TRAIN_GPUS": "0",
        "MODELHUB_TRAIN_LEASE_SECONDS": str(LEASE_SECONDS),
        "MODELHUB_TRAIN_HEARTBEAT_SECONDS": "1",
        "MODELHUB_HOST_HEARTBEAT_SECONDS": "1",
        "MODELHUB_HOST_DEAD_SECONDS": str(LEASE_SECONDS),
        "MODELHUB_SERVE_WARM_SPARES": "0",
    }


def prepare(url: str, token: str, root: Path) -> None:
    from modelhub.client import Client

    csv = root / "blobs.csv"
    write_blobs_csv(csv, 200)
    with Client(url, token=token) as client:
        client.register_dataset(csv, "blobs")
        client.create_pipeline(pipeline_yaml("tiny", "blobs", "tiny-model"))


def submit(urls: list[str], token: str, runs: int) -> list[int]:
    from modelhub.client import Client

    clients = [Client(url, token=token) for url in urls]
    try:
        return [clients[i % len(clients)].start_run("tiny").id for i in range(runs)]
    finally:
        for client in clients:
            client.close()


def statuses(url: str, token: str, runs: int) -> list[Any]:
    from modelhub.client import Client

    with Client(url, token=token) as client:
        return client.list_runs(pipeline="tiny", limit=runs + 10)


def wait_drained(url: str, token: str, runs: int, timeout: float) -> list[Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = statuses(url, token, runs)
        if len(found) == runs and all(r.status.value in ("completed", "failed") for r in found):
            return found
        time.sleep(0.5)
    raise TimeoutError(f"runs not drained in {timeout:.0f} s")


def one_server(root: Path, s3: str, runs: int) -> float:
    with fresh_database() as database:
        home = root / "ref" / "home"
        home.mkdir(parents=True)
        port = free_port()
        env = server_env(home, "ref", database, s3, "ref")
        with server_process(
            modelhub_server_argv(port),
            f"http://127.0.0.1:{port}/readyz",
            env,
            root / "ref.log",
        ):
            url = f"http://127.0.0.1:{port}"
            token = admin_token(home)
            prepare(url, token, root)
            start = time.monotonic()
            submit([url], token, runs)
            found = wait_drained(url, token, runs, timeout=runs * 30)
            drain = time.monotonic() - start
            assert all(r.status.value == "completed" for r in found), "reference runs failed"
            return drain


def _start(env: dict[str, str], port: int, log_path: Path) -> subprocess.Popen[bytes]:
    with open(log_path, "wb") as out:
        proc = subprocess.Popen(
            modelhub_server_argv(port), env=env, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
    wait_http(f"http://127.0.0.1:{port}/readyz", proc)
    return proc


def two_servers(root: Path, s3: str, runs: int) -> dict[str, Any]:
    from modelhub.client import Client

    procs: list[subprocess.Popen[bytes]] = []
    with fresh_database() as database:
        try:
            ports, urls, envs = [], [], []
            for name in ("a", "b"):
                home = root / "two" / name
                home.mkdir(parents=True)
                ports.append(free_port())
                urls.append(f"http://127.0.0.1:{ports[-1]}")
                envs.append(server_env(home, name, database, s3, "two"))
            procs.append(_start(envs[0], ports[0], root / "a.log"))
            token = admin_token(root / "two" / "a")
            procs.append(_start(envs[1], ports[1], root / "b.log"))
            prepare(urls[0], token, root)
            start = time.monotonic()
            ids = submit(urls, token, runs)
            while True:  # until half completed
                found = statuses(urls[0], token, runs)
                if sum(r.status.value == "completed" for r in found) >= runs // 2:
                    break
                time.sleep(0.2)
            held = {0: 0, 1: 0}
            for run in found:
                if run.status.value == "running" and run.owner:
                    pid = int(run.owner.split(":")[1])
                    held[0 if pid == procs[0].pid else 1] += 1
            victim = max(held, key=lambda k: held[k])
            log(f"killing server {'ab'[victim]} (pid {procs[victim].pid}) holding {held}")
            killed_wall = time.time()
            os.kill(procs[victim].pid, signal.SIGKILL)
            procs[victim].wait()
            survivor = urls[1 - victim]
            found = wait_drained(survivor, token, runs, timeout=runs * 30)
            drain = time.monotonic() - start
            with Client(survivor, token=token) as client:
                versions = client.versions("tiny-model")
                interrupted = [r for r in found if r.attempts > 1]
                requeues: list[float] = []
                restarts: list[float] = []
                for run in interrupted:
                    events = list(client.run_events(run.id))
                    for status, into in (("queued", requeues), ("running", restarts)):
                        later = [
                            _wall(e.at)
                            for e in events
                            if e.kind == "status"
                            and e.data.get("status") == status
                            and _wall(e.at) > killed_wall
                        ]
                        if later:
                            into.append(min(later) - killed_wall)
                hosts = {h.name: h.alive for h in client.hosts()}
            completed = [r for r in found if r.status.value == "completed"]
            results = [r.result_version for r in completed if r.result_version is not None]
            return {
                "submitted": len(ids),
                "completed": len(completed),
                "lost": runs - len(completed),
                "run_twice": len(results) - len(set(results)) + (len(versions) - len(completed)),
                "versions_registered": len(versions),
                "interrupted_by_kill": len(interrupted),
                # Queued again by the survivor (the takeover: lease plus one sweep) ...
                "takeover_max_s": rounded(max(requeues) if requeues else None, 2),
                # ... and started again there, once a slot was free (behind the queue).
                "restart_max_s": rounded(max(restarts) if restarts else None, 2),
                "drain_s": rounded(drain, 2),
                "hosts_after": hosts,
            }
        finally:
            for proc in procs:
                stop_process(proc)


def _wall(at: datetime) -> float:
    return at.timestamp()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--quick", action="store_true", help="20 runs")
    args = parser.parse_args()
    runs = 20 if args.quick else args.runs
    isolate_from_user_env()
    with tempfile.TemporaryDirectory(prefix="bench-two-servers-") as tmp:
        root = Path(tmp)
        with moto_server(root) as s3:
            log(f"two servers, {runs} runs, one killed halfway")
            two = two_servers(root, s3, runs)
            log(f"reference: one server, {runs} runs")
            reference = one_server(root, s3, runs)
    emit(
        {
            "bench": "two_servers",
            "runs": runs,
            **two,
            "lease_s": LEASE_SECONDS,
            "reference_one_server_drain_s": rounded(reference, 2),
            "drain_vs_one_server": rounded(two["drain_s"] / reference, 3),
            "ok": two["lost"] == 0 and two["run_twice"] == 0,
        }
    )


if __name__ == "__main__":
    main()
