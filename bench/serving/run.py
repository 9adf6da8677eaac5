"""Serving benchmark (issue 5), model A: modelhub's model server against MLflow and MLServer.

    python bench/serving/run.py [--quick] [--skip-peers] [--out DIR]
                                [--target-url URL --target-name NAME]
                                [--seconds S] [--rounds N] [--concurrency 1,32,512]
                                [--peers mlflow,mlflow-w2,mlserver,...]

In one run, on one machine:

1. model A (`model_a.py`: 32 -> 64 -> ReLU -> 10, seeded) is written as a modelhub
   trainer folder (safetensors + config.json) and as ONNX, with the request bodies;
2. the physical limit (`raw.py`): the forward pass in process, torch and ONNX Runtime,
   one thread, batch 1 and 32, median µs per call;
3. every server under test is started (each on a free 127.0.0.1 port, in its own
   process group) and checked with one real prediction (atol 1e-4 against torch):
   - modelhub's own server, through the hook `measure_modelhub` (skipped while it
     returns None);
   - `--target-url`: any other Open Inference Protocol V2 endpoint already running;
   - the peers (`peers.py`, unless `--skip-peers`), each in a venv the benchmark makes
     once under bench/.cache/serving: `mlflow models serve` with its default worker
     count (1) and with `-w 2`; MLServer with a custom runtime, with its default
     parallel_workers (1) without and with adaptive batching, and with
     parallel_workers 0 (inference on the server's event loop, no IPC);
4. wrk (`loadgen.py`: a warm-up run, then the measured run) loads each server at each
   concurrency (1, 32, 512 by default), in rounds: every round measures every
   concurrency and, within it, every server in turn, the order rotated by round, so
   that drift on a shared machine hits all servers alike; one JSON line per server
   and concurrency, with the medians over the rounds;
5. one summary JSON line (last): the raw figures, each server's throughput and
   latency, and for ours (modelhub, else the target) the ratios the issue's goals name:
   throughput at concurrency 32 against the best MLflow configuration (goal >= 3x) and
   the best MLServer configuration (goal >= 1.5x), p99 at 512 over p99 at 1 (goal
   <= 3), and the p50 at concurrency 1 added over the raw forward pass;
6. `serving-results.json` and the chart `serving-latency.png` in `--out`
   (default bench/results/, ignored by git).

Progress goes to stderr; stdout carries only the JSON lines. wrk and the servers share
this machine's cores, as in any loopback benchmark: read ratios, not absolutes.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import subprocess
import sys
import time
import traceback
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parents[1]
if str(BENCH_DIR) not in sys.path:
    sys.path.insert(0, str(BENCH_DIR))

from benchlib import emit, log  # noqa: E402
from serving import model_a, ours, peers, raw  # noqa: E402
from serving.chart import write_chart  # noqa: E402
from serving.common import Endpoint, check_prediction  # noqa: E402
from serving.loadgen import (  # noqa: E402
    LUA,
    WRK_TIMEOUT,
    LoadResult,
    measure_point,
    raise_nofile_limit,
    wrk_path,
)
from serving.model_a import ModelA  # noqa: E402

DEFAULT_OUT = BENCH_DIR / "results"
CONCURRENCY = (1, 32, 512)
GOAL_VS_MLFLOW = 3.0
GOAL_VS_MLSERVER = 1.5
GOAL_P99_GROWTH = 3.0
GOAL_AT = 32  # the throughput goals are judged at this concurrency
PEERS = ("mlflow", "mlflow-w2", "mlserver", "mlserver-batch", "mlserver-pw0")

ServerFactory = Callable[[], AbstractContextManager[Endpoint]]


@dataclass
class Server:
    endpoint: Endpoint
    samples: dict[int, list[LoadResult]] = field(default_factory=dict)


@dataclass
class Run:
    """Every server is started first and checked; then the points are measured in
    rounds, each round every concurrency and, within it, every server in turn (the
    order rotates by round), so that drift on a shared machine hits all alike."""

    model: ModelA
    concurrency: tuple[int, ...]
    seconds: float
    warmup_s: float
    rounds: int
    servers: list[Server] = field(default_factory=list)
    configs: dict[str, dict[str, Any]] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)

    def start(self, name: str, factory: ServerFactory, stack: ExitStack) -> None:
        """Start one server (stopped when `stack` closes) and check one prediction."""
        try:
            endpoint = stack.enter_context(factory())
            logits = check_prediction(endpoint, self.model)
        except Exception as exc:
            log(f"{name} FAILED: {exc}\n{traceback.format_exc()}")
            self.errors[name] = str(exc)[:2000]
            return
        log(f"{endpoint.name}: prediction matches torch (first logit {logits[0]:.6f})")
        self.configs[endpoint.name] = {
            "url": endpoint.url,
            "protocol": endpoint.protocol,
            **endpoint.config,
        }
        self.servers.append(Server(endpoint))

    def measure_all(self) -> None:
        for round_ in range(self.rounds):
            shift = round_ % max(1, len(self.servers))
            order = self.servers[shift:] + self.servers[:shift]
            for concurrency in self.concurrency:
                for server in order:
                    name = server.endpoint.name
                    if name in self.errors:
                        continue
                    try:
                        result = measure_point(
                            name,
                            server.endpoint.url,
                            server.endpoint.body,
                            concurrency,
                            self.seconds,
                            self.warmup_s,
                        )
                    except Exception as exc:
                        log(f"{name} c={concurrency} FAILED: {exc}")
                        self.errors[name] = str(exc)[:2000]
                        continue
                    server.samples.setdefault(concurrency, []).append(result)
                    log(
                        f"round {round_ + 1}/{self.rounds} {name:>15} c={concurrency:<4} "
                        f"{result.rps:>9,.0f} req/s  p50 {result.p50_us / 1000:8.2f} ms  "
                        f"p99 {result.p99_us / 1000:8.2f} ms"
                        + (f"  FAILED {result.failed}" if result.failed else "")
                    )

    def points(self) -> list[LoadResult]:
        """One result per server and concurrency: medians over the rounds."""
        return [
            combine(server.samples[c])
            for server in self.servers
            for c in self.concurrency
            if server.samples.get(c)
        ]


def combine(samples: list[LoadResult]) -> LoadResult:
    """Median rps and latency percentiles over rounds; counts summed; max of the max."""
    first = samples[0]
    errors: dict[str, int] = {}
    for sample in samples:
        for key, value in sample.errors.items():
            errors[key] = errors.get(key, 0) + value
    return LoadResult(
        server=first.server,
        concurrency=first.concurrency,
        threads=first.threads,
        duration_s=round(sum(s.duration_s for s in samples), 3),
        requests=sum(s.requests for s in samples),
        rps=round(statistics.median(s.rps for s in samples), 1),
        errors=errors,
        non_2xx=sum(s.non_2xx for s in samples),
        p50_us=round(statistics.median(s.p50_us for s in samples)),
        p90_us=round(statistics.median(s.p90_us for s in samples)),
        p99_us=round(statistics.median(s.p99_us for s in samples)),
        max_us=max(s.max_us for s in samples),
        mean_us=round(statistics.median(s.mean_us for s in samples), 1),
        extra={
            "rounds": len(samples),
            "rps_by_round": [s.rps for s in samples],
            "p99_ms_by_round": [round(s.p99_us / 1000, 3) for s in samples],
        },
    )


def point_line(result: LoadResult) -> dict[str, Any]:
    def ms(us: float) -> float:
        return round(us / 1000, 3)

    return {
        "bench": "serving",
        "model": "A",
        "server": result.server,
        "concurrency": result.concurrency,
        "wrk_threads": result.threads,
        "seconds": result.duration_s,
        "requests": result.requests,
        "rps": result.rps,
        "p50_ms": ms(result.p50_us),
        "p90_ms": ms(result.p90_us),
        "p99_ms": ms(result.p99_us),
        "max_ms": ms(result.max_us),
        "mean_ms": ms(result.mean_us),
        "errors": result.errors,
        "non_2xx": result.non_2xx,
        "failed": result.failed,
        **result.extra,
    }


def wrk_version() -> str:
    done = subprocess.run([wrk_path(), "-v"], capture_output=True, text=True, check=False)
    first = (done.stdout or done.stderr).strip().splitlines()
    return first[0] if first else "wrk"


def _at(points: list[LoadResult], server: str, concurrency: int) -> LoadResult | None:
    return next((p for p in points if p.server == server and p.concurrency == concurrency), None)


def _best(points: list[LoadResult], prefix: str, concurrency: int) -> LoadResult | None:
    """The peer configuration (name starting with `prefix`) with the most requests/s."""
    mine = [p for p in points if p.concurrency == concurrency and p.server.split("-")[0] == prefix]
    return max(mine, key=lambda p: p.rps, default=None)


def _rps(point: LoadResult | None) -> float | None:
    return point.rps if point else None


def _ratio(a: float | None, b: float | None, digits: int = 2) -> float | None:
    return round(a / b, digits) if a is not None and b else None


def summary(
    run: Run,
    points: list[LoadResult],
    raw_results: list[raw.RawResult],
    ours: str | None,
    extra: dict[str, Any],
) -> dict[str, Any]:
    raw_us = {
        f"{'ort' if r.engine == 'onnxruntime' else r.engine}_b{r.batch}": r.median_us
        for r in raw_results
    }
    servers: dict[str, Any] = {}
    for name in dict.fromkeys(p.server for p in points):
        mine = [p for p in points if p.server == name]
        low, high = _at(points, name, 1), _at(points, name, 512)
        servers[name] = {
            "by_concurrency": {
                str(p.concurrency): {
                    "rps": p.rps,
                    "p50_ms": round(p.p50_us / 1000, 3),
                    "p99_ms": round(p.p99_us / 1000, 3),
                    "failed": p.failed,
                }
                for p in mine
            },
            "p99_c512_over_c1": _ratio(high.p99_us if high else None, low.p99_us if low else None),
            "config": run.configs.get(name, {}),
        }
    result: dict[str, Any] = {
        "bench": "serving",
        "kind": "summary",
        "model": "A (MLP 32 -> 64 -> 10, fp32)",
        **extra,
        "raw_us": raw_us,
        "servers": servers,
        "ours": ours,
    }
    mlflow = _best(points, "mlflow", GOAL_AT)
    mlserver = _best(points, "mlserver", GOAL_AT)
    result["best_mlflow_at_32"] = mlflow.server if mlflow else None
    result["best_mlserver_at_32"] = mlserver.server if mlserver else None
    if ours is None:
        result["goal_note"] = "no modelhub server measured yet: ratios are left out"
        return result
    mine_at = _at(points, ours, GOAL_AT)
    low, high = _at(points, ours, 1), _at(points, ours, 512)
    vs_mlflow = _ratio(mine_at.rps if mine_at else None, mlflow.rps if mlflow else None)
    vs_mlserver = _ratio(mine_at.rps if mine_at else None, mlserver.rps if mlserver else None)
    growth = _ratio(high.p99_us if high else None, low.p99_us if low else None)
    result |= {
        "throughput_vs_mlflow": vs_mlflow,
        "throughput_vs_mlserver": vs_mlserver,
        "throughput_ratios_by_concurrency": {
            str(c): {
                "vs_mlflow": _ratio(_rps(_at(points, ours, c)), _rps(_best(points, "mlflow", c))),
                "vs_mlserver": _ratio(
                    _rps(_at(points, ours, c)), _rps(_best(points, "mlserver", c))
                ),
            }
            for c in run.concurrency
        },
        "p99_c512_over_c1": growth,
        "added_p50_ms_over_raw": (
            round(low.p50_us / 1000 - raw_us["torch_b1"] / 1000, 3) if low else None
        ),
        "goals": {
            "throughput_vs_mlflow": GOAL_VS_MLFLOW,
            "throughput_vs_mlserver": GOAL_VS_MLSERVER,
            "p99_c512_over_c1_max": GOAL_P99_GROWTH,
            "judged_at_concurrency": GOAL_AT,
        },
        "goal_met": {
            "vs_mlflow": vs_mlflow is not None and vs_mlflow >= GOAL_VS_MLFLOW,
            "vs_mlserver": vs_mlserver is not None and vs_mlserver >= GOAL_VS_MLSERVER,
            "p99_growth": growth is not None and growth <= GOAL_P99_GROWTH,
        },
    }
    return result


def parse_concurrency(text: str) -> tuple[int, ...]:
    values = tuple(int(v) for v in text.split(",") if v.strip())
    if not values or any(v < 1 for v in values):
        raise argparse.ArgumentTypeError("a comma-separated list of positive integers")
    return values


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="1 round, 3 s per point, 1 s warm-up")
    parser.add_argument("--skip-peers", action="store_true", help="no MLflow, no MLServer")
    parser.add_argument("--skip-modelhub", action="store_true", help="peers only")
    parser.add_argument(
        "--skip-extras",
        action="store_true",
        help="no deploy-time, thousand-model or rolling-update measurements",
    )
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="results and chart")
    parser.add_argument("--target-url", help="an extra OIP V2 infer URL to measure")
    parser.add_argument("--target-name", default="target", help="its name in the results")
    parser.add_argument("--seconds", type=float, help="per point and round (default 10, quick 3)")
    parser.add_argument("--rounds", type=int, help="interleaved rounds (default 3, quick 1)")
    parser.add_argument("--warmup", type=float, help="warm-up per point (default 2, quick 1)")
    parser.add_argument(
        "--concurrency", type=parse_concurrency, default=CONCURRENCY, help="e.g. 1,8,32,128,512"
    )
    parser.add_argument(
        "--peers",
        default=",".join(PEERS),
        help="peer configurations, comma-separated: mlflow[-wN] (N uvicorn workers), "
        "mlserver[-pwN][-batch] (parallel_workers N, adaptive batching); "
        f"default {','.join(PEERS)}",
    )
    parser.add_argument(
        "--mlserver-batch-time",
        type=float,
        default=0.002,
        help="MLServer max_batch_time in s with adaptive batching (max_batch_size 32)",
    )
    args = parser.parse_args(argv)
    if args.target_url and not args.target_url.startswith("http"):
        parser.error("--target-url must be an http URL")
    try:
        args.peer_configs = [peers.parse_peer(p) for p in args.peers.split(",") if p]
    except ValueError as exc:
        parser.error(str(exc))
    return args


@contextlib.contextmanager
def external(name: str, url: str, model: ModelA) -> Iterator[Endpoint]:
    yield Endpoint(name, url, model.oip_body, "oip", {"server": "external (--target-url)"})


def start_peers(
    run: Run, model: ModelA, work: Path, args: argparse.Namespace, stack: ExitStack
) -> None:
    """Make the peers' venvs (cached), log the MLflow model, start every peer server."""
    chosen: list[peers.PeerConfig] = [] if args.skip_peers else args.peer_configs
    if any(c.peer == "mlflow" for c in chosen):
        try:
            venv = peers.ensure_venv(peers.mlflow_spec())
            logged = peers.log_mlflow_model(venv, model, work)
        except Exception as exc:
            log(f"MLflow setup FAILED: {exc}")
            run.errors["mlflow-setup"] = str(exc)[:2000]
        else:
            for config in (c for c in chosen if c.peer == "mlflow"):
                run.start(
                    config.name,
                    lambda c=config: peers.mlflow_server(
                        venv, model, logged, work, c.workers, c.name
                    ),
                    stack,
                )
    if any(c.peer == "mlserver" for c in chosen):
        try:
            mls_venv = peers.ensure_venv(peers.mlserver_spec())
        except Exception as exc:
            log(f"MLServer setup FAILED: {exc}")
            run.errors["mlserver-setup"] = str(exc)[:2000]
        else:
            for config in (c for c in chosen if c.peer == "mlserver"):
                run.start(
                    config.name,
                    lambda c=config: peers.mlserver_server(
                        mls_venv,
                        model,
                        work,
                        c.name,
                        batching=c.batching,
                        parallel_workers=c.workers,
                        max_batch_time=args.mlserver_batch_time,
                    ),
                    stack,
                )


def measure_extras(
    model: ModelA, work: Path, quick: bool, errors: dict[str, str]
) -> dict[str, Any]:
    """What only modelhub is measured on: deploy -> first prediction (model A and
    MiniLM, warm spare against a fresh process; model A on a server just started), a
    thousand copies of model A in one replica, and a rolling update under wrk load."""
    found: dict[str, Any] = {}
    steps = (
        ("deploy_to_first_prediction", lambda: ours.deploy_times(model, work, 1 if quick else 3)),
        (
            "first_deploy_after_start",
            lambda: ours.first_deploy_times(model, work, 1 if quick else 3),
        ),
        ("many_models", lambda: ours.many_models(work, 100 if quick else 1000)),
        ("rolling_update_under_load", lambda: ours.rolling_update(model, work, 4 if quick else 12)),
    )
    for name, measure in steps:
        try:
            found[name] = measure()
        except Exception as exc:
            log(f"{name} FAILED: {exc}\n{traceback.format_exc()}")
            errors[name] = str(exc)[:2000]
            continue
        emit({"bench": "serving", "measure": name, **found[name]})
    return found


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    seconds = args.seconds or (3.0 if args.quick else 10.0)
    rounds = args.rounds or (1 if args.quick else 3)
    warmup = args.warmup if args.warmup is not None else (1.0 if args.quick else 2.0)
    version = wrk_version()  # fails loudly, with the install command, when wrk is missing
    nofile = raise_nofile_limit(max(args.concurrency) + 1024)
    out: Path = args.out.resolve()
    work = out / "serving-work"
    work.mkdir(parents=True, exist_ok=True)
    started = time.time()

    model = model_a.write(out / "model_a")
    log(f"model A written to {model.root}; torch logits[0] {model.logits[0]:.6f}")
    raw_results = raw.measure(model, seconds_per_point=1.0 if args.quick else 3.0)
    for r in raw_results:
        emit({"bench": "serving", "model": "A", "server": "raw", **r.as_dict()})
        log(f"raw {r.engine:>11} batch {r.batch:>2}: {r.median_us:8.2f} µs per call")

    run = Run(model, args.concurrency, seconds, warmup, rounds)
    ours_name: str | None = None
    with ExitStack() as stack:
        if not args.skip_modelhub:
            try:
                deployed = ours.endpoints(model, work, stack)
            except Exception as exc:
                log(f"modelhub FAILED: {exc}\n{traceback.format_exc()}")
                run.errors["modelhub"] = str(exc)[:2000]
                deployed = []
            for endpoint in deployed:
                run.start(endpoint.name, lambda e=endpoint: contextlib.nullcontext(e), stack)
        if args.target_url:
            run.start(
                args.target_name,
                lambda: external(args.target_name, args.target_url, model),
                stack,
            )
        for name in ("modelhub", args.target_name if args.target_url else None):  # ours
            if (
                name is not None
                and ours_name is None
                and any(s.endpoint.name == name for s in run.servers)
            ):
                ours_name = name
        start_peers(run, model, work, args, stack)
        if not run.servers:
            log("no server to measure")
        run.measure_all()
    points = run.points()
    for point in points:
        emit(point_line(point))

    extra = {
        "load_generator": f"{version}; wrk -t min(2,C) -c C -d {seconds:g}s --timeout "
        f"{WRK_TIMEOUT} --latency -s {LUA.name} (POST, keep-alive, closed loop); "
        f"{warmup:g} s warm-up per point",
        "concurrency": list(args.concurrency),
        "seconds_per_point": seconds,
        "rounds": rounds,
        "order": "all servers up at once; each round: every concurrency, every server in "
        "turn (order rotated by round); figures are medians over the rounds",
        "open_files_limit": nofile,
        "wall_s": round(time.time() - started, 1),
        "errors": run.errors,
    }
    result = summary(run, points, raw_results, ours_name, extra)
    if not args.skip_modelhub and not args.skip_extras:
        result["extras"] = measure_extras(model, work, args.quick, run.errors)
    lines = [point_line(p) for p in points]
    results_path = out / "serving-results.json"
    results_path.write_text(json.dumps({"summary": result, "points": lines}, indent=2))
    if lines:
        chart = write_chart(
            lines,
            out / "serving-latency.png",
            result["raw_us"].get("torch_b1"),
            highlight=ours_name,
        )
        result["chart"] = str(chart)
    result["results_file"] = str(results_path)
    emit(result)
    return 1 if run.errors else 0


if __name__ == "__main__":
    sys.exit(main())
