"""Chaos under load: replica kills, one server kill -9 with an immediate restart.

A real `modelhub server` (default settings: one warm spare, a 10 s run lease) serves
model A as deployment `chaos` with 2 replicas. For the whole window:

- load: 8 keep-alive connections, 4 on the deployment's endpoint and 4 on the
  platform route (`/v2/models/chaos/infer` on the server, with a token), each sending
  its next request when the last answered; a client that gets no 2xx waits 0.1 s
  before trying again, as a retrying client would;
- a new version of model `chaos-reg` registered every 2 s (random 64 KiB safetensors);
- a training run started every `run_every` s (tabular, checkpoint every 50 steps);
- a replica killed (SIGKILL) every `replica_kill_every` s;
- once, at `server_kill_at` and with a run training past its first stored checkpoint,
  the server is killed with SIGKILL and started again at once (the old process is
  reaped only afterwards, as a supervisor restarting it would).

Reported (one JSON line): requests and availability (2xx / attempts) per target
and per phase (before the kill; the restart, from the kill until both targets answer
again; after), answers by status, the longest gap without a 2xx per target; after the
server kill, seconds from the new process's start until the platform API, the platform
route and the endpoint answer 2xx, against the replica load time measured at the
first deploy; whether the API ever showed the dead server's replicas; how long until
the interrupted run was requeued (from the kill) and the step it resumed after; every
acknowledged version downloaded and checked against its digest and the bytes sent;
every acknowledged run in a terminal state with exactly one terminal event; memory
(RSS of the server and every process under it) and warm spares at start and end.

Goals: no 5xx; availability >= 99.9 % over the window; API back within 2 s and
inference within 3 s + the replica load time of the new process's start; the
interrupted run requeued within the lease (plus the server's start when that is
longer) and resumed from its checkpoint; nothing lost.

    python bench/bench_chaos.py            # 12 minutes
    python bench/bench_chaos.py --quick    # about 2 minutes (plus setup and drain)
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import itertools
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from benchlib import (
    CACHE_DIR,
    admin_token,
    emit,
    free_port,
    isolate_from_user_env,
    log,
    modelhub_server_argv,
    rounded,
    stop_process,
    wait_http,
    write_small_safetensors,
)
from modelhub.client import Client, DeployRequest, RegisterRequest
from modelhub.domain.runs import FINAL, RunStatus
from modelhub.stores.metadata.sql import SqlMetadataStore
from trainlib import write_blobs_csv

LEASE_SECONDS = 10.0  # the default of MODELHUB_TRAIN_LEASE_SECONDS
RETRY_PAUSE = 0.1
PIPELINE = """
name: chaos-train
type: pre_training
trainer: tabular_classifier
datasets: [blobs]
max_epochs: 2
hyperparameters: {batch_size: 8, log_every: 10}
checkpoint: {every_steps: 50}
resources: {cpus: 0.5, memory: 2GiB}
result_model: {name: chaos-trained}
"""


@dataclass(frozen=True)
class Plan:
    duration: float
    server_kill_at: float
    replica_kill_every: float
    run_every: float
    register_every: float = 2.0


FULL = Plan(duration=720, server_kill_at=360, replica_kill_every=90, run_every=60)
QUICK = Plan(duration=120, server_kill_at=60, replica_kill_every=40, run_every=25)


# -- the server process --------------------------------------------------------------


@dataclass
class Server:
    home: Path
    port: int
    proc: subprocess.Popen[bytes] | None = None
    started_at: float = 0.0
    dead: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("MODELHUB_")}
        env["MODELHUB_HOME"] = str(self.home)
        with open(self.home / "server.log", "ab") as out:
            self.proc = subprocess.Popen(
                modelhub_server_argv(self.port),
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.started_at = time.monotonic()

    def kill9_and_restart(self) -> None:
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGKILL)
        self.dead.append(self.proc)  # reaped later: its pid stays taken meanwhile
        self.start()

    def stop(self) -> None:
        if self.proc is not None:
            stop_process(self.proc)
        for proc in self.dead:
            proc.wait()


def process_tree(root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as stat:
                ppid = int(stat.read().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        children.setdefault(ppid, []).append(int(entry))
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(children.get(pid, []))
    return found


def rss_mib(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        with contextlib.suppress(OSError), open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
    return total / 1024


def spares(pids: list[int]) -> int:
    count = 0
    for pid in pids:
        with contextlib.suppress(OSError), open(f"/proc/{pid}/cmdline", "rb") as cmd:
            count += b"--assignment-fd" in cmd.read()
    return count


# -- load -------------------------------------------------------------------------


class Load(threading.Thread):
    """One keep-alive connection posting the same body until stopped: (time, status)."""

    def __init__(self, url: str, body: bytes, headers: dict[str, str], stop: threading.Event):
        super().__init__(daemon=True)
        self.url, self.body, self.stop = url, body, stop
        self.headers = {"content-type": "application/json", **headers}
        self.samples: list[tuple[float, int]] = []  # status; -1 no connection, -2 timeout
        self.retry_after_503 = 0  # 503s that said when to retry (no replica ready yet)

    def run(self) -> None:
        timeout = httpx.Timeout(10.0, connect=2.0)
        with httpx.Client(timeout=timeout, headers=self.headers, trust_env=False) as client:
            while not self.stop.is_set():
                try:
                    reply = client.post(self.url, content=self.body)
                    code = reply.status_code
                    self.retry_after_503 += code == 503 and "retry-after" in reply.headers
                except httpx.TimeoutException:
                    code = -2
                except httpx.HTTPError:
                    code = -1
                self.samples.append((time.monotonic(), code))
                if not 200 <= code < 300:
                    time.sleep(RETRY_PAUSE)


def availability(samples: list[tuple[float, int]], start: float, end: float) -> dict[str, Any]:
    window = [code for at, code in samples if start <= at < end]
    ok = sum(200 <= code < 300 for code in window)
    return {
        "requests": len(window),
        "availability_pct": rounded(100.0 * ok / len(window), 4) if window else None,
    }


def longest_gap(samples: list[tuple[float, int]], start: float, end: float) -> float:
    times = [start, *sorted(at for at, code in samples if 200 <= code < 300), end]
    return max(b - a for a, b in itertools.pairwise(times))


def back_after(samples: list[tuple[float, int]], killed: float) -> float | None:
    """When a 2xx came again after the first failure that followed the kill."""
    failed = [at for at, code in samples if at >= killed and not 200 <= code < 300]
    if not failed:
        return killed
    found = [at for at, code in samples if at > min(failed) and 200 <= code < 300]
    return min(found) if found else None


# -- the chaos ----------------------------------------------------------------------


@dataclass
class Chaos:
    server: Server
    token: str
    plan: Plan
    stop: threading.Event = field(default_factory=threading.Event)
    versions: list[tuple[int, str, str]] = field(default_factory=list)  # version, digest, sha
    runs: list[int] = field(default_factory=list)
    refused: Counter[str] = field(default_factory=Counter)
    replica_kills: int = 0

    def idle_spares(self) -> int:
        """Spare processes not serving: a spare that took an assignment keeps its
        command line, so the deployment's replicas (steady, all reported) are left out."""
        assert self.server.proc is not None
        with self.client() as client:
            deployment, _ = client.get_deployment("chaos")
        serving = {h.pid for h in deployment.health}
        return spares([p for p in process_tree(self.server.proc.pid) if p not in serving])

    def client(self) -> Client:
        return Client(self.server.url, self.token)

    def every(self, seconds: float, action: Any, name: str) -> threading.Thread:
        def loop() -> None:
            while not self.stop.wait(seconds):
                try:
                    action()
                except Exception as exc:  # the server may be down: count it, go on
                    self.refused[f"{name}: {type(exc).__name__}"] += 1

        thread = threading.Thread(target=loop, daemon=True, name=name)
        thread.start()
        return thread

    def register(self, folder: Path) -> None:
        path = folder / f"v{len(self.versions) + sum(self.refused.values())}.safetensors"
        write_small_safetensors(path, 64 * 1024)
        sha = hashlib.sha256(path.read_bytes()).hexdigest()
        with self.client() as client:
            version = client.register(RegisterRequest(name="chaos-reg", type="custom"), path)
        self.versions.append((version.version, version.digest, sha))

    def start_run(self) -> None:
        with self.client() as client:
            self.runs.append(client.start_run("chaos-train").id)

    def kill_replica(self) -> None:
        with self.client() as client:
            deployment, _ = client.get_deployment("chaos")
        ready = [h.pid for h in deployment.health if h.ready and h.pid]
        if ready:
            os.kill(ready[0], signal.SIGKILL)
            self.replica_kills += 1


def verify_versions(chaos: Chaos, work: Path) -> dict[str, int]:
    verified = failed = 0
    with chaos.client() as client:
        for version, digest, sha in chaos.versions:
            try:
                got, files = client.download(f"chaos-reg@{version}", work / f"dl-{version}")
                same = got.digest == digest and len(files) == 1
                same = same and hashlib.sha256(files[0].read_bytes()).hexdigest() == sha
            except Exception:
                same = False
            verified += same
            failed += not same
    return {"acknowledged": len(chaos.versions), "verified": verified, "failed": failed}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="about 2 minutes, not 12")
    args = parser.parse_args()
    plan = QUICK if args.quick else FULL
    isolate_from_user_env()
    from serving import model_a

    work = Path(tempfile.mkdtemp(prefix="modelhub-chaos-"))
    server = Server(home=work / "home", port=free_port())
    server.home.mkdir()
    server.start()
    assert server.proc is not None
    wait_http(f"{server.url}/readyz", server.proc)
    token = admin_token(server.home)
    chaos = Chaos(server, token, plan)
    headers = {"authorization": f"Bearer {token}"}
    try:
        model = model_a.write(CACHE_DIR / "chaos-model-a")
        with chaos.client() as client:
            client.register(
                RegisterRequest(name="chaos-a", type="classification"), model.trainer_dir
            )
            began = time.monotonic()
            client.deploy(DeployRequest(ref="chaos-a@1", replicas=2, name="chaos"))
            deployment = client.wait_deployment("chaos", timeout=180)
            replica_load_s = time.monotonic() - began
            assert deployment.endpoint, deployment
            write_blobs_csv(work / "blobs.csv", 2_000)
            client.register_dataset(work / "blobs.csv", "blobs")
            client.create_pipeline(PIPELINE)
        log(f"deployed in {replica_load_s:.2f} s; load for {plan.duration:.0f} s")
        body = model.oip_body.read_bytes()
        loads = [Load(f"{deployment.endpoint}/v2/models/chaos/infer", body, {}, chaos.stop)]
        loads += [Load(loads[0].url, body, {}, chaos.stop) for _ in range(3)]
        platform = f"{server.url}/v2/models/chaos/infer"
        loads += [Load(platform, body, headers, chaos.stop) for _ in range(4)]
        memory_start = rss_mib(process_tree(server.proc.pid))
        spares_start = chaos.idle_spares()
        start = time.monotonic()
        for load in loads:
            load.start()
        (work / "versions").mkdir()
        threads = [
            chaos.every(plan.register_every, lambda: chaos.register(work / "versions"), "reg"),
            chaos.every(plan.run_every, chaos.start_run, "run"),
            chaos.every(plan.replica_kill_every, chaos.kill_replica, "replica-kill"),
        ]
        chaos.start_run()
        after_kill = server_kill(chaos, start, plan)
        while time.monotonic() - start < plan.duration:
            time.sleep(0.5)
        chaos.stop.set()
        for thread in [*loads, *threads]:
            thread.join(timeout=30)
        end = time.monotonic()
        log("load stopped; waiting for every run to end")
        with chaos.client() as client:
            deadline = time.monotonic() + 600
            while time.monotonic() < deadline:
                with contextlib.suppress(Exception):  # an unreadable run shows in the report
                    if all(client.get_run(run_id).status in FINAL for run_id in chaos.runs):
                        break
                time.sleep(1)
        versions = verify_versions(chaos, work)
        memory_end = rss_mib(process_tree(server.proc.pid))  # the same kinds as at start
        spares_end = chaos.idle_spares()
    finally:
        chaos.stop.set()
        server.stop()

    store = SqlMetadataStore(f"sqlite:///{server.home / 'modelhub.db'}")
    try:
        runs = run_report(store, chaos.runs)
        resumed = resume_report(store, after_kill)
    finally:
        store.close()
        shutil.rmtree(work, ignore_errors=True)
    endpoint = [s for load in loads[:4] for s in load.samples]
    routed = [s for load in loads[4:] for s in load.samples]
    killed_at, back = after_kill["killed_at"], after_kill["all_back_at"] or end
    phases = {"before": (start, killed_at), "restart": (killed_at, back), "after": (back, end)}
    codes = Counter(code for _, code in endpoint + routed)
    result: dict[str, Any] = {
        "bench": "chaos",
        "mode": "quick" if args.quick else "full",
        "window_s": rounded(end - start, 1),
        "requests": len(endpoint) + len(routed),
        "answers": {str(code): count for code, count in sorted(codes.items())},
        "5xx": sum(count for code, count in codes.items() if code >= 500),
        "503_with_retry_after": sum(load.retry_after_503 for load in loads),
        "availability_pct": availability(endpoint + routed, start, end)["availability_pct"],
        "endpoint": {
            **{p: availability(endpoint, *span) for p, span in phases.items()},
            "longest_gap_s": rounded(longest_gap(endpoint, start, end), 2),
            "timeouts": sum(code == -2 for _, code in endpoint),
        },
        "platform_route": {
            **{p: availability(routed, *span) for p, span in phases.items()},
            "longest_gap_s": rounded(longest_gap(routed, start, end), 2),
        },
        "replica_kills": chaos.replica_kills,
        "replica_load_s": rounded(replica_load_s, 2),
        "after_server_kill": {
            "api_s": after_kill["api_s"],
            "platform_route_s": rounded(_since(back_after(routed, killed_at), after_kill)),
            "endpoint_s": rounded(_since(back_after(endpoint, killed_at), after_kill)),
            "stale_replicas_shown": after_kill["stale_replicas_shown"],
            **resumed,
        },
        "versions": versions,
        "runs": runs,
        "memory_mib": {"start": rounded(memory_start, 0), "end": rounded(memory_end, 0)},
        "warm_spares": {
            "setting": 1,
            "start": spares_start,
            "end": spares_end,
        },
        "client_errors": dict(chaos.refused),
    }
    after = result["after_server_kill"]
    result["goals"] = {
        "no_5xx": result["5xx"] == 0,
        "no_5xx_but_503_retry_after": result["5xx"] == result["503_with_retry_after"],
        "availability_99_9": (result["availability_pct"] or 0) >= 99.9,
        "api_within_2s": after["api_s"] is not None and after["api_s"] <= 2.0,
        "inference_within_3s_plus_load": after["endpoint_s"] is not None
        and after["endpoint_s"] <= 3.0 + replica_load_s,
        "run_requeued_within_lease": after["requeued_s"] is not None
        and after["requeued_s"] <= max(LEASE_SECONDS, after_kill["start_s"]) + 2.5,
        "run_resumed_from_checkpoint": bool(after["resumed_from_checkpoint"]),
        "nothing_lost": versions["failed"] == 0 and runs["lost_or_duplicated"] == 0,
        "spares_as_configured": max(spares_start, spares_end) <= 1,
    }
    emit(result)


def _since(at: float | None, after_kill: dict[str, Any]) -> float | None:
    return None if at is None else at - after_kill["restarted_at"]


def server_kill(chaos: Chaos, start: float, plan: Plan) -> dict[str, Any]:
    """Wait for the kill time and a run past its first checkpoint; kill -9, restart."""
    server = chaos.server
    while time.monotonic() - start < plan.server_kill_at:
        time.sleep(0.2)
    victim, checkpoint = None, 0
    deadline = time.monotonic() + 120
    with chaos.client() as client:
        while victim is None and time.monotonic() < deadline:
            for run in client.list_runs(status="running"):
                stored = client.run_checkpoints(run.id)
                if stored:
                    victim, checkpoint = run.id, max(c.step for c in stored)
            time.sleep(0.2)
        deployment, _ = client.get_deployment("chaos")
    old_replicas = {h.pid for h in deployment.health}
    log(f"kill -9 of the server; run {victim} past its checkpoint at step {checkpoint}")
    killed_at, killed_wall = time.monotonic(), datetime.now(UTC)
    server.kill9_and_restart()
    restarted_at = server.started_at
    stale = 0
    api_s = None
    headers = {"authorization": f"Bearer {chaos.token}"}
    with httpx.Client(base_url=server.url, headers=headers, trust_env=False) as http:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                reply = http.get("/api/v1/deployments/chaos", timeout=2)
            except httpx.HTTPError:
                time.sleep(0.02)
                continue
            if reply.status_code == 200:
                api_s = api_s or time.monotonic() - restarted_at
                health = reply.json()["deployment"]["health"]
                stale += sum(h["pid"] in old_replicas for h in health)
                if any(h["ready"] for h in health):
                    break
            time.sleep(0.05)
    readyz_s = None
    with contextlib.suppress(Exception):
        wait_http(f"{server.url}/readyz", server.proc)  # type: ignore[arg-type]
        readyz_s = time.monotonic() - restarted_at
    return {
        "killed_at": killed_at,
        "killed_wall": killed_wall,
        "restarted_at": restarted_at,
        "all_back_at": time.monotonic(),
        "api_s": rounded(api_s, 2),
        "start_s": readyz_s or 0.0,
        "stale_replicas_shown": stale,
        "run": victim,
        "checkpoint_step": checkpoint,
    }


def resume_report(store: SqlMetadataStore, after_kill: dict[str, Any]) -> dict[str, Any]:
    run_id = after_kill["run"]
    if run_id is None:
        return {"run": None, "requeued_s": None, "resumed_from_checkpoint": False}
    events = store.run_events(run_id, limit=1_000_000)
    killed = after_kill["killed_wall"]
    requeues = [
        i
        for i, e in enumerate(events)
        if e.kind == "status" and e.data.get("status") == "queued" and e.at >= killed
    ]
    if not requeues:
        return {"run": run_id, "requeued_s": None, "resumed_from_checkpoint": False}
    steps = [
        p["step"] for e in events[requeues[0] :] if e.kind == "metrics" for p in e.data["points"]
    ]
    return {
        "run": run_id,
        "requeued_s": rounded((events[requeues[0]].at - killed).total_seconds(), 2),
        "checkpoint_step": after_kill["checkpoint_step"],
        "first_step_after": min(steps) if steps else None,
        "resumed_from_checkpoint": bool(steps) and min(steps) > after_kill["checkpoint_step"],
        "final_status": store.get_run(run_id).status.value,
    }


def run_report(store: SqlMetadataStore, acknowledged: list[int]) -> dict[str, Any]:
    runs = store.list_runs()
    statuses = Counter(r.status.value for r in runs)
    final = {s.value for s in FINAL}
    odd = 0
    for run in runs:
        ends = [
            e
            for e in store.run_events(run.id, limit=1_000_000)
            if e.kind == "status" and e.data.get("status") in final
        ]
        odd += len(ends) != 1 or run.status not in FINAL
    missing = set(acknowledged) - {r.id for r in runs}
    return {
        "acknowledged": len(acknowledged),
        "in_store": len(runs),
        "statuses": dict(statuses),
        "completed": statuses.get(RunStatus.COMPLETED.value, 0),
        "not_terminal_exactly_once": odd,
        "lost_or_duplicated": len(missing) + odd,
    }


if __name__ == "__main__":
    sys.exit(main())
