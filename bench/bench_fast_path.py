"""The authenticated fast path against the deployment's own endpoint (issue 16, parts 2, 5).

One `modelhub server` with its data-plane listener on 127.0.0.1, model A deployed with
two replicas (the serving benchmark's setup). wrk (closed loop, keep-alive; see
bench/serving/loadgen.py) POSTs model A's batch-1 OIP body to:

- `endpoint`: the deployment's loopback endpoint, no token (the reference);
- `fast_path`: the data-plane listener, `/v2/models/model-a/infer` with the admin token;
- `platform`: the platform route `/v2/models/model-a/infer` with the token (reference).

Default mode, at 32 connections, the three interleaved over `--rounds` rounds: goals
fast_path >= 90 % of endpoint and >= 10,000 req/s (medians over rounds).

`--tail` (part 5): the fast path and the endpoint at 1, 32 and 512 connections. Little's
law gives the mean latency a closed loop must have (connections / throughput); goals at
every point: p99 <= 2x that mean, and max < 10x p50 (no request starved).

    python bench/bench_fast_path.py [--tail] [--seconds S] [--rounds N] [--quick]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

from benchlib import admin_token, emit, free_port, isolate_from_user_env, log, median
from serving import model_a
from serving.loadgen import LoadResult, measure_point, raise_nofile_limit
from serving.ours import platform

FAST_GOAL_RATIO = 0.90
FAST_GOAL_RPS = 10_000
TAIL_P99_FACTOR = 2.0
TAIL_MAX_FACTOR = 10.0


@contextlib.contextmanager
def token_in_wrk(token: str | None) -> Iterator[None]:
    """post.lua sends WRK_AUTHORIZATION when set."""
    if token is None:
        yield
        return
    os.environ["WRK_AUTHORIZATION"] = f"Bearer {token}"
    try:
        yield
    finally:
        del os.environ["WRK_AUTHORIZATION"]


def point(
    label: str, url: str, body: Path, token: str | None, c: int, seconds: float, warmup: float
) -> LoadResult:
    with token_in_wrk(token):
        result = measure_point(label, url, body, c, seconds, warmup)
    log(
        f"{label} c={c}: {result.rps:.0f} req/s, p50 {result.p50_us} us, "
        f"p99 {result.p99_us} us, max {result.max_us} us, failed {result.failed}"
    )
    return result


def tail_verdict(result: LoadResult) -> dict[str, Any]:
    little_mean_us = result.concurrency / result.rps * 1e6 if result.rps else float("inf")
    return {
        **result.as_dict(),
        "little_mean_us": round(little_mean_us, 1),
        "p99_over_little_mean": round(result.p99_us / little_mean_us, 3),
        "max_over_p50": round(result.max_us / max(1, result.p50_us), 2),
        "goal_p99_met": result.p99_us <= TAIL_P99_FACTOR * little_mean_us,
        "goal_max_met": result.max_us < TAIL_MAX_FACTOR * result.p50_us,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tail", action="store_true", help="1, 32 and 512 connections")
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    if args.quick:
        args.seconds, args.warmup, args.rounds = 2.0, 1.0, 1
    isolate_from_user_env()
    raise_nofile_limit(8192)
    with tempfile.TemporaryDirectory(prefix="bench-fast-path-") as tmp:
        work = Path(tmp)
        model = model_a.write(work / "model-a")
        data_port = free_port()
        with platform(work, "fastpath", MODELHUB_DATA_PLANE_PORT=str(data_port)) as hub:
            hub.register(model.trainer_dir, "model-a", "classification")
            deployment = hub.deploy("model-a@1", "model-a")
            token = admin_token(hub.home)
            urls = {
                "endpoint": (f"{deployment['endpoint']}/v2/models/model-a/infer", None),
                "fast_path": (f"http://127.0.0.1:{data_port}/v2/models/model-a/infer", token),
                "platform": (f"{hub.url}/v2/models/model-a/infer", token),
            }
            for label, (url, bearer) in urls.items():  # each answers before it is measured
                headers = {"authorization": f"Bearer {bearer}"} if bearer else {}
                reply = httpx.post(url, content=model.oip_body.read_bytes(), headers=headers)
                reply.raise_for_status()
                log(f"{label}: {url} answers")
            if args.tail:
                emit(tail(urls, model.oip_body, args))
            else:
                emit(throughput(urls, model.oip_body, args))


def throughput(urls: dict[str, tuple[str, str | None]], body: Path, args: Any) -> dict[str, Any]:
    rps: dict[str, list[float]] = {label: [] for label in urls}
    failed = 0
    for round_ in range(args.rounds):
        log(f"round {round_ + 1}/{args.rounds}")
        for label, (url, token) in urls.items():
            result = point(label, url, body, token, 32, args.seconds, args.warmup)
            rps[label].append(result.rps)
            failed += result.failed
    medians = {label: median(values) for label, values in rps.items()}
    ratio = medians["fast_path"] / medians["endpoint"]
    # Each round's own ratio: the two ran seconds apart, so a busy machine moves both.
    round_ratios = [f / e for f, e in zip(rps["fast_path"], rps["endpoint"], strict=True) if e]
    return {
        "bench": "fast_path",
        "concurrency": 32,
        "seconds": args.seconds,
        "rounds": args.rounds,
        "rps_median": {k: round(v, 1) for k, v in medians.items()},
        "rps_rounds": rps,
        "fast_over_endpoint": round(ratio, 3),
        "fast_over_endpoint_rounds": [round(r, 3) for r in round_ratios],
        "fast_over_endpoint_round_median": round(median(round_ratios), 3),
        "platform_over_endpoint": round(medians["platform"] / medians["endpoint"], 3),
        "failed_requests": failed,
        "goal_ratio": FAST_GOAL_RATIO,
        "goal_rps": FAST_GOAL_RPS,
        "goal_ratio_met": ratio >= FAST_GOAL_RATIO,
        "goal_rps_met": medians["fast_path"] >= FAST_GOAL_RPS,
    }


def tail(urls: dict[str, tuple[str, str | None]], body: Path, args: Any) -> dict[str, Any]:
    points: dict[str, list[dict[str, Any]]] = {}
    for label in ("fast_path", "endpoint"):
        url, token = urls[label]
        points[label] = [
            tail_verdict(point(label, url, body, token, c, args.seconds, args.warmup))
            for c in (1, 32, 512)
        ]
    fast = points["fast_path"]
    return {
        "bench": "tail",
        "seconds": args.seconds,
        "points": points,
        "goal": "p99 <= 2x Little's-law mean (c / rps); max < 10x p50",
        "goal_p99_met": all(p["goal_p99_met"] for p in fast),
        "goal_max_met": all(p["goal_max_met"] for p in fast),
    }


if __name__ == "__main__":
    main()
