"""Prediction logging must not slow serving: the same model behind three deployments of
one `modelhub server`: the prediction log at the default policy (10 % of requests, at
most 600 a minute), at 10 % with no practical cap (every tenth request written
whatever the load), and off, measured in interleaved rounds.

Each round sends one-row Open Inference Protocol requests to a deployment's own
endpoint for `--seconds`, over one keep-alive connection, each request as soon as the
last answer came (closed loop), and records the throughput and the median latency.
Each deployment goes first in turn, so that drift of a shared machine moves all
three. Out: the medians over rounds, `throughput_ratio` (goal >= 0.95) and
`p50_growth_ms` (goal < 0.05) of the default policy against off, the same for the
uncapped log, the logging replicas' counters (sampled, capped, dropped, logged), and,
measured in this process, `hot_path_us`: the median cost per request of what logging
adds on the request path (the sampling decision, and for a sampled request the
entry put on the queue) at 10 %.

    python bench/bench_prediction_log.py [--rounds 8] [--seconds 4] [--quick]
"""

from __future__ import annotations

import argparse
import http.client
import json
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from benchlib import (
    admin_token,
    emit,
    free_port,
    isolate_from_user_env,
    log,
    median,
    modelhub_server_argv,
    rounded,
    server_process,
)

FEATURES = 32


def write_model(folder: Path) -> Path:
    """A 32 -> 64 -> 10 MLP as the tabular trainer writes it."""
    import numpy as np
    import torch

    from modelhub.networks import tabular

    folder.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    model = tabular.build_model(FEATURES, [64], 10)
    features = [f"f{i}" for i in range(FEATURES)]
    classes = [f"c{i}" for i in range(10)]
    tabular.write_output(
        folder, model, features, "label", classes, [64], np.zeros(FEATURES), np.ones(FEATURES)
    )
    return folder


def call(base: str, token: str, method: str, path: str, body: Any = None) -> Any:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(
        base + path,
        data=data,
        method=method,
        headers={"authorization": f"Bearer {token}", "content-type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=120) as response:
        return json.loads(response.read())


def deploy(base: str, token: str, name: str, rate: float, cap: int = 600) -> str:
    policy = {"rate": rate, "max_per_minute": cap}
    body = {"model": "bench@1", "name": name, "prediction_log": policy}
    call(base, token, "POST", "/api/v1/deployments", body)
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        found = call(base, token, "GET", f"/api/v1/deployments/{name}")["deployment"]
        if found["status"] == "running":
            return str(found["endpoint"])
        if found["status"] == "failed":
            raise RuntimeError(f"{name} failed: {found['error']}")
        time.sleep(0.2)
    raise RuntimeError(f"{name} did not start")


def round_of(endpoint: str, name: str, body: bytes, seconds: float) -> tuple[float, float]:
    """(requests per second, median latency in ms) of one closed-loop round."""
    host, port = endpoint.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port))
    path = f"/v2/models/{name}/infer"
    headers = {"content-type": "application/json"}
    latencies: list[float] = []
    started = time.perf_counter()
    end = started + seconds
    now = started
    while now < end:
        conn.request("POST", path, body, headers)
        response = conn.getresponse()
        response.read()
        if response.status != 200:
            raise RuntimeError(f"{name} answered {response.status}")
        done = time.perf_counter()
        latencies.append(done - now)
        now = done
    conn.close()
    return len(latencies) / (now - started), median(latencies) * 1000.0


def counter(endpoint: str, name: str) -> float | None:
    with urllib.request.urlopen(f"{endpoint}/metrics", timeout=10) as response:
        for line in response.read().decode().splitlines():
            if line.startswith(name + " "):
                return float(line.split()[1])
    return None


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    if args.quick:
        args.rounds, args.seconds = 2, 1.0
    isolate_from_user_env()
    with tempfile.TemporaryDirectory(prefix="bench-predlog-") as tmp:
        root = Path(tmp)
        home = root / "home"
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        env = {
            "MODELHUB_HOME": str(home),
            "MODELHUB_SERVE_WARM_SPARES": "0",
            "MODELHUB_TRAIN_WARM_WORKERS": "0",
        }
        with server_process(modelhub_server_argv(port), f"{base}/readyz", env, root / "server.log"):
            token = admin_token(home)
            model = write_model(root / "model")
            from modelhub.client import Client, RegisterRequest

            with Client(base, token) as client:
                client.register(RegisterRequest(name="bench", type="classification"), model)
            endpoints = {
                "off": deploy(base, token, "off", 0.0),
                "on": deploy(base, token, "on", 0.1),
                "uncapped": deploy(base, token, "uncapped", 0.1, 1_000_000),
            }
            row = [0.1 * i for i in range(FEATURES)]
            tensor = {"name": "input", "shape": [1, FEATURES], "datatype": "FP32", "data": row}
            body = json.dumps({"inputs": [tensor]}).encode()
            for name, endpoint in endpoints.items():  # warm-up, untimed
                round_of(endpoint, name, body, min(1.0, args.seconds))
            names = list(endpoints)
            results: dict[str, list[tuple[float, float]]] = {name: [] for name in names}
            for i in range(args.rounds):
                for name in names[i % 3 :] + names[: i % 3]:  # each goes first in turn
                    results[name].append(round_of(endpoints[name], name, body, args.seconds))
                log(f"round {i + 1}: " + ", ".join(f"{n} {results[n][-1]}" for n in names))
            counts = {
                name: {
                    key: counter(endpoints[name], f"modelhub_prediction_log_{key}_total")
                    for key in ("sampled", "capped", "dropped", "logged")
                }
                for name in ("on", "uncapped")
            }
    rps = {k: median([r for r, _ in v]) for k, v in results.items()}
    p50 = {k: median([p for _, p in v]) for k, v in results.items()}
    ratio = rps["on"] / rps["off"]
    growth = p50["on"] - p50["off"]
    emit(
        {
            "bench": "prediction_log",
            "rounds": args.rounds,
            "seconds_per_round": args.seconds,
            "rps_off": rounded(rps["off"], 1),
            "rps_on": rounded(rps["on"], 1),
            "rps_uncapped": rounded(rps["uncapped"], 1),
            "throughput_ratio": rounded(ratio, 4),
            "throughput_ratio_uncapped": rounded(rps["uncapped"] / rps["off"], 4),
            "p50_off_ms": rounded(p50["off"], 4),
            "p50_on_ms": rounded(p50["on"], 4),
            "p50_uncapped_ms": rounded(p50["uncapped"], 4),
            "p50_growth_ms": rounded(growth, 4),
            "p50_growth_uncapped_ms": rounded(p50["uncapped"] - p50["off"], 4),
            "log_counters": counts,
            "hot_path_us": rounded(hot_path_us(), 3),
            "goal_met": ratio >= 0.95 and growth < 0.05,
        }
    )


def hot_path_us() -> float:
    """Median µs per request of the sampling decision plus, when sampled, the enqueue
    (what `DataPlane.infer` adds when a deployment logs), in batches of 1,000."""
    import numpy as np

    from modelhub.serving.predlog import Entry, LogTarget, PredictionLog

    with tempfile.TemporaryDirectory(prefix="bench-predlog-hot-") as spool:
        plog = PredictionLog(Path(spool), queue_size=1_000_000)
        plog.configure([LogTarget("d", "m", 0.1, 1_000_000_000)])
        inputs = {"input": np.zeros((1, FEATURES), np.float32)}
        outputs = {"label": np.array(["c1"], dtype=object)}
        per_batch = []
        for _ in range(200):
            started = time.perf_counter()
            for i in range(1000):
                if plog.sample("d", 1):
                    plog.offer(Entry("d", 1, f"r{i}", time.time(), 0.3, 1, inputs, outputs))
            per_batch.append((time.perf_counter() - started) / 1000 * 1e6)
        return median(per_batch)


if __name__ == "__main__":
    main()
