"""A thousand small deployments on the shared model pool (`deploy --pool shared`).

One `modelhub server` (2 pool replicas); N distinct small ONNX models (y = x @ W1 @ W2,
W1 of 4 x WIDTH and W2 of WIDTH x 2 floats: 48 KiB of weights, two outputs), each
registered and deployed on the pool. Measured:

- deploy -> first prediction (platform route), median over a sample of deployments
  spread through the N (each timed with the earlier ones already placed);
- memory: RSS of the pool replicas after every model was asked for, against the sum
  of the models' weights, over the pool's fixed overhead (its replicas' RSS with one
  model loaded, less that model); goal RSS <= overhead + 1.5 x weights;
- throughput with wrk at C connections on the pool endpoint, each request to the
  next of the N deployments (`bench/serving/spread.lua`); goal >= 5,000 req/s.

Reference in the same run: the same wrk on one model deployed on its own replicas
(REPLICAS dedicated processes, the default placement), and on one pool deployment;
and, when its venv is there, Seldon MLServer's multi-model serving of the same N
models (custom runtime `serving/peer_mlserver_onnx.py`, ONNX Runtime one thread,
parallel_workers=REPLICAS): its start with N models, its RSS, the same spread wrk.
Make the venv once with

    python3.11 -m venv bench/.cache/venv-mlserver-pool
    bench/.cache/venv-mlserver-pool/bin/pip install mlserver "fastapi<0.116" \
        "uvloop<0.22" onnxruntime numpy

    python bench/bench_pool.py [--models 1000] [--seconds 10] [--connections 32] [--quick]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
if str(BENCH_DIR) not in sys.path:
    sys.path.insert(0, str(BENCH_DIR))

import httpx  # noqa: E402

from benchlib import emit, isolate_from_user_env, log  # noqa: E402
from serving.loadgen import LoadResult, raise_nofile_limit, run_wrk, wrk_path  # noqa: E402
from serving.ours import Platform, platform  # noqa: E402

WIDTH = 2048  # 6 x 2048 float32 weights: 48 KiB per model
REPLICAS = 2
SPREAD_LUA = BENCH_DIR / "serving" / "spread.lua"
MLSERVER_VENV = BENCH_DIR / ".cache" / "venv-mlserver-pool"
MEMORY_GOAL = 1.5
THROUGHPUT_GOAL = 5000.0
BODY = {"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP32", "data": [1, 2, 3, 4]}]}


def write_models(root: Path, count: int) -> list[Path]:
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    folders = []
    for index in range(count):
        folder = root / f"m{index}"
        folders.append(folder)
        if (folder / "model.onnx").exists():
            continue
        rng = np.random.default_rng(index)
        w1 = rng.normal(size=(4, WIDTH)).astype(np.float32)
        w2 = rng.normal(size=(WIDTH, 2)).astype(np.float32)
        graph = helper.make_graph(
            [
                helper.make_node("MatMul", ["x", "w1"], ["h"]),
                helper.make_node("MatMul", ["h", "w2"], ["y"]),
            ],
            "two_layers",
            [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 4])],
            [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", 2])],
            initializer=[numpy_helper.from_array(w1, "w1"), numpy_helper.from_array(w2, "w2")],
        )
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
        model.ir_version = 8
        folder.mkdir(parents=True, exist_ok=True)
        onnx.save(model, str(folder / "model.onnx"))
    return folders


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def pool_state(hub: Platform) -> dict[str, Any]:
    found: dict[str, Any] = hub.http.get("/api/v1/pools/shared").json()
    return found


def pool_rss(hub: Platform) -> int:
    return sum(rss_bytes(r["pid"]) for r in pool_state(hub)["replicas"])


def first_prediction(hub: Platform, name: str, timeout: float = 120.0) -> float:
    """Seconds from the deploy request to the first 200 on the platform route."""
    started = time.perf_counter()
    reply = hub.http.post(
        "/api/v1/deployments", json={"model": f"{name}@1", "name": name, "pool": "shared"}
    )
    reply.raise_for_status()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        answer = hub.http.post(f"/v2/models/{name}/infer", json=BODY)
        if answer.status_code == 200:
            return time.perf_counter() - started
        time.sleep(0.002)
    raise RuntimeError(f"{name} did not answer within {timeout:g} s")


def spread_wrk(url: str, prefix: str, count: int, body: Path, conns: int, secs: float) -> Any:
    """wrk over `count` deployments named PREFIX0..; the parsed WRKJSON line."""
    argv = [
        wrk_path(), "-t", str(min(2, conns)), "-c", str(conns), "-d", f"{max(1, round(secs))}s",
        "--timeout", "30s", "--latency", "-s", str(SPREAD_LUA), url,
    ]  # fmt: skip
    env = os.environ | {"WRK_BODY_FILE": str(body), "WRK_MODELS": str(count), "WRK_PREFIX": prefix}
    done = subprocess.run(argv, env=env, capture_output=True, timeout=secs + 120, check=False)
    lines = [x for x in done.stdout.decode().splitlines() if x.startswith("WRKJSON ")]
    if done.returncode != 0 or not lines:
        raise RuntimeError(f"wrk failed: {done.stderr.decode()[-2000:]}")
    data = json.loads(lines[-1][len("WRKJSON ") :])
    seconds = data["duration_us"] / 1e6
    return {
        "rps": round(data["requests"] / seconds, 1),
        "requests": data["requests"],
        # wrk counts a non-2xx answer as a "status" error too: counted once here
        "failed": sum(v for k, v in data["errors"].items() if k != "status") + data["non_2xx"],
        "errors": {k: v for k, v in data["errors"].items() if v},
        "non_2xx": data["non_2xx"],
        "p50_ms": data["latency_us"]["p50"] / 1000,
        "p99_ms": data["latency_us"]["p99"] / 1000,
    }


def brief(result: LoadResult) -> dict[str, Any]:
    return {
        "rps": result.rps,
        "failed": result.failed,
        "p50_ms": result.p50_us / 1000,
        "p99_ms": result.p99_us / 1000,
    }


def measure(work: Path, count: int, seconds: float, conns: int, samples: int) -> dict[str, Any]:
    folders = write_models(work / "models", count)
    weights = sum((f / "model.onnx").stat().st_size for f in folders)
    body = work / "body.json"
    body.write_text(json.dumps(BODY))
    result: dict[str, Any] = {"models": count, "weights_per_model_bytes": weights // count}
    with platform(
        work,
        "pool",
        MODELHUB_POOL_REPLICAS=str(REPLICAS),
        MODELHUB_POOL_MEMORY="512MiB",
        MODELHUB_SERVE_WARM_SPARES="0",
        MODELHUB_TRAIN_WARM_WORKERS="0",
    ) as hub:
        started = time.perf_counter()
        with ThreadPoolExecutor(max_workers=4) as pool:
            list(pool.map(lambda i: hub.register(folders[i], f"m{i}", "custom"), range(count)))
        result["register_s"] = round(time.perf_counter() - started, 1)
        log(f"registered {count} models in {result['register_s']} s")

        # The pool's fixed overhead: its replicas with one model loaded on each.
        first_prediction(hub, "m0")
        for _ in range(20):
            hub.http.post("/v2/models/m0/infer", json=BODY).raise_for_status()
        overhead = pool_rss(hub) - REPLICAS * (weights // count)

        step = max(1, count // samples)
        timed: list[float] = []
        started = time.perf_counter()
        for index in range(1, count):
            name = f"m{index}"
            if index % step == 0:
                for earlier in range(max(1, index - step), index):
                    hub.settled(f"m{earlier}")  # timed on a pool holding the others
                timed.append(first_prediction(hub, name))
                continue
            hub.http.post(
                "/api/v1/deployments", json={"model": f"{name}@1", "name": name, "pool": "shared"}
            ).raise_for_status()
        for index in range(count):
            hub.settled(f"m{index}")
        result["deploy_all_s"] = round(time.perf_counter() - started, 1)
        log(f"deployed {count} on the pool in {result['deploy_all_s']} s")
        result["deploy_to_first_prediction_s"] = {
            "median": round(statistics.median(timed), 3),
            "max": round(max(timed), 3),
            "samples": len(timed),
        }

        endpoint = hub.http.get("/api/v1/deployments/m0").json()["deployment"]["endpoint"]
        with httpx.Client(trust_env=False, timeout=60) as client:
            started = time.perf_counter()
            for index in range(count):  # every model asked for once: cold loads
                client.post(f"{endpoint}/v2/models/m{index}/infer", json=BODY).raise_for_status()
            result["cold_pass_s"] = round(time.perf_counter() - started, 1)
        spread_wrk(endpoint, "/v2/models/m", count, body, conns, 2)  # warm-up
        spread = spread_wrk(endpoint, "/v2/models/m", count, body, conns, seconds)
        state = pool_state(hub)
        rss = pool_rss(hub)
        loaded = sum(r["memory_bytes"] for r in state["replicas"])
        result["memory"] = {
            "pool_rss_mb": round(rss / 1e6, 1),
            "fixed_overhead_mb": round(overhead / 1e6, 1),
            "weights_sum_mb": round(weights / 1e6, 2),
            "loaded_copies_mb": round(loaded / 1e6, 2),
            "rss_over_overhead_per_weight": round((rss - overhead) / weights, 2),
            "rss_over_overhead_per_loaded_copy": round((rss - overhead) / max(1, loaded), 2),
            "goal": f"pool RSS <= overhead + {MEMORY_GOAL} x weights",
            "goal_met": rss <= overhead + MEMORY_GOAL * weights,
        }
        result["pool"] = {
            k: state[k] for k in ("models_loaded", "requests", "loads", "evictions", "hit_rate")
        }
        result["spread_over_all"] = {**spread, "connections": conns}

        # References, same run: one pool deployment alone; one dedicated deployment.
        hot = run_wrk("pool-one-model", f"{endpoint}/v2/models/m1/infer", body, conns, seconds)
        result["pool_one_model"] = brief(hot)
        hub.register(folders[0], "dedicated", "custom")
        dedicated = hub.deploy("dedicated@1", "dedicated", replicas=REPLICAS)
        url = f"{dedicated['endpoint']}/v2/models/dedicated/infer"
        run_wrk("dedicated", url, body, conns, 2)
        result["dedicated_one_model"] = brief(run_wrk("dedicated", url, body, conns, seconds))
    rps = result["spread_over_all"]["rps"]
    result["throughput_goal"] = f">= {THROUGHPUT_GOAL:g} req/s spread over all {count}"
    result["throughput_goal_met"] = rps >= THROUGHPUT_GOAL
    result["spread_vs_dedicated"] = round(rps / result["dedicated_one_model"]["rps"], 3)
    if (MLSERVER_VENV / "bin" / "mlserver").exists():
        peer = mlserver(work, folders, weights, seconds, conns)
        result["mlserver"] = peer
        result["spread_vs_mlserver"] = round(rps / peer["spread_over_all"]["rps"], 3)
    else:
        result["mlserver"] = f"not measured: no MLServer venv at {MLSERVER_VENV}"
    return result


def tree_rss(root: int) -> int:
    """RSS of a process and all its descendants."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            children.setdefault(int(fields[1]), []).append(int(entry.name))
    total, todo = 0, [root]
    while todo:
        pid = todo.pop()
        with contextlib.suppress(OSError):
            total += rss_bytes(pid)
        todo.extend(children.get(pid, []))
    return total


def mlserver(work: Path, folders: list[Path], weights: int, secs: float, conns: int) -> Any:
    """MLServer serving the same models (all loaded at its start), the same spread wrk."""
    import shutil

    from benchlib import free_port
    from serving.peers import child_server

    repo = work / "mlserver-repo"
    port = free_port()
    settings = {
        "host": "127.0.0.1",
        "http_port": port,
        "grpc_port": free_port(),
        "metrics_port": free_port(),
        "debug": False,
        "parallel_workers": REPLICAS,
    }
    repo.mkdir(parents=True)
    (repo / "settings.json").write_text(json.dumps(settings))
    for index, folder in enumerate(folders):
        target = repo / f"m{index}"
        target.mkdir()
        shutil.copyfile(folder / "model.onnx", target / "model.onnx")
        implementation = "peer_mlserver_onnx.OnnxRuntime"
        model = {"name": f"m{index}", "implementation": implementation}
        (target / "model-settings.json").write_text(
            json.dumps({**model, "parameters": {"uri": "./model.onnx"}})
        )
    bin_dir = MLSERVER_VENV / "bin"
    env = {
        "PYTHONPATH": str(BENCH_DIR / "serving"),
        "PATH": f"{bin_dir}:{os.environ.get('PATH', '')}",
    }
    last = f"http://127.0.0.1:{port}/v2/models/m{len(folders) - 1}/ready"
    started = time.perf_counter()
    argv = [str(bin_dir / "mlserver"), "start", str(repo)]
    with child_server(argv, last, env, work / "mlserver.log", cwd=work, timeout=1200) as proc:
        url = f"http://127.0.0.1:{port}"
        waiting = [f"m{index}" for index in range(len(folders))]
        with httpx.Client(trust_env=False, timeout=30) as client:
            while waiting:  # MLServer loads its models in no set order: wait for all
                waiting = [
                    name
                    for name in waiting
                    if client.get(f"{url}/v2/models/{name}/ready").status_code != 200
                ]
                if waiting:
                    time.sleep(0.2)
        ready_s = time.perf_counter() - started
        body = work / "body.json"
        spread_wrk(url, "/v2/models/m", len(folders), body, conns, 2)
        spread = spread_wrk(url, "/v2/models/m", len(folders), body, conns, secs)
        rss = tree_rss(proc.pid)
    return {
        "start_with_all_models_s": round(ready_s, 1),
        "rss_mb": round(rss / 1e6, 1),
        "rss_per_weight": round(rss / weights, 2),
        "spread_over_all": {**spread, "connections": conns},
        "parallel_workers": REPLICAS,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--samples", type=int, default=20, help="deployments timed")
    parser.add_argument("--quick", action="store_true", help="50 models, 3 s runs")
    args = parser.parse_args(argv)
    isolate_from_user_env()
    raise_nofile_limit()
    count, seconds = (50, 3.0) if args.quick else (args.models, args.seconds)
    with tempfile.TemporaryDirectory(prefix="bench-pool-") as folder:
        found = measure(Path(folder), count, seconds, args.connections, args.samples)
    emit({"bench": "pool", **found})
    return 0


if __name__ == "__main__":
    sys.exit(main())
