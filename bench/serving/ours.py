"""modelhub's side of the serving benchmark: a real `modelhub server`, deployments of
model A (safetensors and ONNX) and model B (MiniLM), and the measurements that only
concern us: deploy to first prediction, a thousand models in one replica, and a
rolling update under load.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import statistics
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from benchlib import admin_token, free_port, log, modelhub_server_argv
from serving.common import Endpoint
from serving.loadgen import LoadResult, run_wrk
from serving.model_a import ModelA
from serving.peers import child_server

REPLICAS = 2
SERVE_ENV = {
    "MODELHUB_SERVE_WARM_SPARES": "1",
    "MODELHUB_SERVE_HEALTH_SECONDS": "0.5",
    "HF_HUB_OFFLINE": "1",
}


@dataclass
class Platform:
    """A running modelhub server: its URL and an authenticated HTTP client."""

    url: str
    home: Path
    http: httpx.Client

    def register(self, path: Path, name: str, type_: str) -> int:
        from modelhub.client import Client, RegisterRequest

        with Client(self.url, admin_token(self.home)) as client:
            return client.register(RegisterRequest(name=name, type=type_), path).version

    def deploy(self, ref: str, name: str, replicas: int = REPLICAS) -> dict[str, Any]:
        reply = self.http.post(
            "/api/v1/deployments", json={"model": ref, "name": name, "replicas": replicas}
        )
        reply.raise_for_status()
        return self.settled(name)

    def settled(self, name: str, timeout: float = 180.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found: dict[str, Any] = self.http.get(f"/api/v1/deployments/{name}").json()[
                "deployment"
            ]
            if found["status"] in ("running", "failed", "stopped"):
                if found["status"] != "running":
                    raise RuntimeError(f"deployment {name}: {found['status']}: {found['error']}")
                return found
            time.sleep(0.005)
        raise RuntimeError(f"deployment {name} did not settle in {timeout:g} s")

    def stop(self, name: str) -> None:
        self.http.post(f"/api/v1/deployments/{name}/stop").raise_for_status()

    def spare_ready(self, timeout: float = 120.0) -> None:
        """Wait until a warm spare has finished its imports (it idles at ~0% CPU)."""
        folder = self.home / "serving" / "replicas" / "spares"
        deadline = time.monotonic() + timeout
        time.sleep(0.5)
        while time.monotonic() < deadline:
            busy = False
            for pid in _children():
                if "--assignment-fd" in _cmdline(pid) and _cpu_busy(pid):
                    busy = True
            if not busy and folder.exists():
                return
            time.sleep(0.5)


def _children() -> list[int]:
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            pids.append(int(entry))
    return pids


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def _cpu_busy(pid: int, window: float = 0.3) -> bool:
    def ticks() -> int:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return int(fields[11]) + int(fields[12])

    try:
        before = ticks()
        time.sleep(window)
        return ticks() - before > 2
    except (OSError, IndexError):
        return False


@contextlib.contextmanager
def platform(
    work: Path, name: str, home_from: Path | None = None, **env: str
) -> Iterator[Platform]:
    """A server on an empty home, or on a copy of `home_from` (a stopped server's)."""
    home = work / f"{name}-home"
    shutil.rmtree(home, ignore_errors=True)  # every run starts from an empty platform
    if home_from is not None:
        shutil.copytree(home_from, home)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    server_env = {"MODELHUB_HOME": str(home), **SERVE_ENV, **env}
    server_env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
    with child_server(
        modelhub_server_argv(port), f"{url}/readyz", server_env, work / f"{name}.log"
    ):
        token = admin_token(home)
        headers = {"authorization": f"Bearer {token}"}
        with httpx.Client(base_url=url, headers=headers, timeout=300, trust_env=False) as http:
            yield Platform(url, home, http)


def _config(runtime: str) -> dict[str, Any]:
    return {
        "server": "modelhub deployment endpoint: bare ASGI on uvicorn (uvloop + httptools)",
        "replicas": REPLICAS,
        "runtime": runtime,
        "batching": "dynamic, by rows, max 32, no added wait",
        "threads_per_replica": 1,
        "load_balancing": "one listening socket shared by the replicas (kernel)",
    }


def endpoints(model: ModelA, work: Path, stack: contextlib.ExitStack) -> list[Endpoint]:
    """Start one modelhub server; deploy model A as safetensors and as ONNX."""
    hub = stack.enter_context(platform(work, "modelhub"))
    hub.register(model.trainer_dir, "model-a", "classification")
    hub.register(model.onnx, "model-a-onnx", "classification")
    found = []
    for name, runtime in (("model-a", "tabular_classifier (torch)"), ("model-a-onnx", "onnx")):
        deployment = hub.deploy(f"{name}@1", name)
        url = f"{deployment['endpoint']}/v2/models/{name}/infer"
        label = "modelhub" if name == "model-a" else "modelhub-onnx"
        found.append(Endpoint(label, url, model.oip_body, "oip", _config(runtime)))
    return found


# -- deploy to first prediction ---------------------------------------------------


def _first_prediction(hub: Platform, ref: str, name: str, body: dict[str, Any]) -> float:
    started = time.perf_counter()
    reply = hub.http.post("/api/v1/deployments", json={"model": ref, "name": name, "replicas": 1})
    reply.raise_for_status()
    deployment = hub.settled(name)
    answer = httpx.post(f"{deployment['endpoint']}/v2/models/{name}/infer", json=body, timeout=60)
    answer.raise_for_status()
    elapsed = time.perf_counter() - started
    hub.stop(name)
    return elapsed


def deploy_times(model: ModelA, work: Path, trials: int) -> dict[str, Any]:
    """Deploy -> first successful prediction, for model A and MiniLM (88 MB), from a
    warm spare (the default) and, as the reference, from a fresh process."""
    from modelhub.training.trainers.text_classifier import minilm_path

    a_body = json.loads(model.oip_body.read_text())
    text_body = {"inputs": [{"name": "text", "shape": [1], "datatype": "BYTES", "data": ["hello"]}]}
    minilm = minilm_path()
    size = sum(f.stat().st_size for f in minilm.rglob("*") if f.is_file())
    results: dict[str, Any] = {"minilm_mb": round(size / 1e6, 1), "trials": trials}
    for mode, spares in (("warm_spare", "1"), ("fresh_process", "0")):
        with platform(work, f"deploy-{mode}", MODELHUB_SERVE_WARM_SPARES=spares) as hub:
            hub.register(model.trainer_dir, "model-a", "classification")
            hub.register(minilm, "minilm", "embedding_model")
            for label, ref, body in (
                ("model_a", "model-a@1", a_body),
                ("minilm", "minilm@1", text_body),
            ):
                times = []
                for trial in range(trials):
                    if spares != "0":
                        hub.spare_ready()
                    times.append(_first_prediction(hub, ref, f"{label}-{trial}", body))
                results[f"{label}_{mode}_s"] = round(statistics.median(times), 3)
                results[f"{label}_{mode}_all_s"] = [round(t, 3) for t in times]
                log(f"deploy -> first prediction, {label}, {mode}: {times}")
    return results


# -- the first deployment after the server started ------------------------------------

FIRST_DEPLOY_GOAL_S = 2.0


def first_deploy_times(model: ModelA, work: Path, servers: int) -> dict[str, Any]:
    """Deploy -> first prediction of model A on a server that has only just started:
    the deployment is asked for as soon as `/readyz` answers, while the server's warm
    spare (and training worker) are still importing. Each of `servers` fresh servers
    runs on a copy of one stopped home where model A is registered. Reference, on the
    same server: the next deployment once its spare is warm again."""
    a_body = json.loads(model.oip_body.read_text())
    with platform(work, "first-deploy-template") as hub:
        hub.register(model.trainer_dir, "model-a", "classification")
        template = hub.home
    first, next_ = [], []
    for index in range(servers):
        with platform(work, f"first-deploy-{index}", home_from=template) as hub:
            first.append(_first_prediction(hub, "model-a@1", "first", a_body))
            hub.spare_ready()
            next_.append(_first_prediction(hub, "model-a@1", "next", a_body))
        log(f"first deploy after start, server {index}: {first[-1]:.3f} s, next {next_[-1]:.3f} s")
    median = statistics.median(first)
    return {
        "servers": servers,
        "first_deploy_s": round(median, 3),
        "first_deploy_all_s": [round(t, 3) for t in first],
        "next_deploy_s": round(statistics.median(next_), 3),
        "next_deploy_all_s": [round(t, 3) for t in next_],
        "ratio_first_to_next": round(median / statistics.median(next_), 2),
        "goal_s": FIRST_DEPLOY_GOAL_S,
        "goal_met": median < FIRST_DEPLOY_GOAL_S,
    }


# -- a thousand models in one replica -------------------------------------------------


def write_copy(folder: Path, seed: int) -> Path:
    """Another model A (same shape, own weights), as the tabular trainer writes it."""
    import numpy as np
    import torch

    from modelhub.networks import tabular

    folder.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    module = tabular.build_model(32, [64], 10)
    tabular.write_output(folder, module, *MODEL_A_COLUMNS, [64], np.zeros(32), np.ones(32))
    return folder


# features, label and classes of model A
MODEL_A_COLUMNS = ([f"f{i}" for i in range(32)], "label", [f"c{i}" for i in range(10)])
A_BODY = {"inputs": [{"name": "input", "shape": [1, 32], "datatype": "FP32", "data": [0.5] * 32}]}


def _rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def many_models(work: Path, count: int) -> dict[str, Any]:
    """`count` distinct copies of model A (own weights each) served by one replica,
    loaded lazily: cold-load latency of each first request, memory against the sum."""
    from modelhub.serving.host import ServedModel, ServedVersion
    from modelhub.serving.launcher import ReplicaLauncher, ReplicaSettings
    from modelhub.serving.replicas import ReplicaGroup

    root = work / "many-models"
    models = []
    for index in range(count):
        folder = root / f"a{index}"
        if not (folder / "config.json").exists():
            write_copy(folder, index)
        models.append(ServedModel(f"a{index}", (ServedVersion(1, folder, 100),), preload=False))
    launcher = ReplicaLauncher(ReplicaSettings(workdir=work / "many-replicas"))
    group = ReplicaGroup("many", models, launcher)
    try:
        group.start(1)
        replica = group.replicas[0]
        base = f"http://127.0.0.1:{group.port}"
        body = {
            "inputs": [{"name": "input", "shape": [1, 32], "datatype": "FP32", "data": [0.5] * 32}]
        }
        with httpx.Client(trust_env=False, timeout=60) as client:
            client.post(f"{base}/v2/models/a0/infer", json=body).raise_for_status()  # imports
            rss_before = _rss_kb(replica.pid)
            cold, warm = [], []
            for index in range(1, count):
                started = time.perf_counter()
                client.post(f"{base}/v2/models/a{index}/infer", json=body).raise_for_status()
                cold.append((time.perf_counter() - started) * 1000)
            for index in range(1, count, max(1, count // 100)):
                started = time.perf_counter()
                client.post(f"{base}/v2/models/a{index}/infer", json=body).raise_for_status()
                warm.append((time.perf_counter() - started) * 1000)
        rss_after = _rss_kb(replica.pid)
        stats = group.stats()[0][1]
        model_bytes = sum(m["memory_bytes"] for m in stats["models"])
    finally:
        group.stop()
        launcher.close()
    grown = (rss_after - rss_before) * 1024
    return {
        "models": count,
        "cold_load_p50_ms": round(statistics.median(cold), 3),
        "cold_load_p90_ms": round(statistics.quantiles(cold, n=10)[-1], 3),
        "warm_request_p50_ms": round(statistics.median(warm), 3),
        "model_weights_mb": round(model_bytes / 1e6, 2),
        "replica_rss_growth_mb": round(grown / 1e6, 2),
        "rss_growth_per_model_kb": round(grown / (count - 1) / 1e3, 1),
        "weights_per_model_kb": round(model_bytes / count / 1e3, 1),
        "replica_rss_mb": round(rss_after / 1e3, 1),
    }


# -- a rolling update under load ------------------------------------------------------


def rolling_update(model: ModelA, work: Path, seconds: float) -> dict[str, Any]:
    """wrk at concurrency 32 on a deployment while it is updated from v1 to v2 and
    rolled back: every request must succeed."""
    import numpy as np
    import torch

    from modelhub.networks import tabular

    second = work / "model-a-v2"
    second.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(99)
    tabular.write_output(
        second,
        tabular.build_model(32, [64], 10),
        *MODEL_A_COLUMNS,
        [64],
        np.zeros(32),
        np.ones(32),
    )
    with platform(work, "rollout") as hub:
        hub.register(model.trainer_dir, "model-a", "classification")
        hub.register(second, "model-a", "classification")
        deployment = hub.deploy("model-a@1", "model-a")
        url = f"{deployment['endpoint']}/v2/models/model-a/infer"
        outcome: dict[str, LoadResult] = {}

        def load() -> None:
            outcome["wrk"] = run_wrk("rollout", url, model.oip_body, 32, seconds)

        worker = threading.Thread(target=load)
        worker.start()
        time.sleep(seconds / 4)
        started = time.perf_counter()
        hub.http.post(
            "/api/v1/deployments/model-a/update", json={"version": "2"}
        ).raise_for_status()
        updated = hub.settled("model-a")
        update_s = time.perf_counter() - started
        after = httpx.post(url, json=json.loads(model.oip_body.read_text()))
        served_after_update = after.json()["model_version"]
        time.sleep(seconds / 4)
        hub.http.post("/api/v1/deployments/model-a/rollback").raise_for_status()
        rolled = hub.settled("model-a")
        worker.join()
    result = outcome["wrk"]
    return {
        "requests": result.requests,
        "rps": result.rps,
        "failed": result.failed,
        "errors": result.errors,
        "non_2xx": result.non_2xx,
        "update_s": round(update_s, 3),
        "served_after_update": served_after_update,
        "traffic_after_update": updated["traffic"],
        "traffic_after_rollback": rolled["traffic"],
    }
