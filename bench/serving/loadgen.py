"""Load generator: wrk (Debian's `wrk` package, 4.1) with a Lua script that POSTs a body.

`wrk -t T -c C -d Ds --timeout 30s --latency -s post.lua URL`, T = min(2, C): C
keep-alive connections, each sending its next request as soon as the last answer
came (a closed loop, so latency and throughput are measured together).
`post.lua` reads the body from the file named by `WRK_BODY_FILE`, counts non-2xx
answers per thread, and prints one JSON line at the end (requests, duration,
errors by kind, non-2xx, latency p50/p90/p99/max in µs), which `run_wrk` parses.
Each measured point follows an untimed warm-up run at the same concurrency.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import subprocess
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

LUA = Path(__file__).resolve().parent / "post.lua"
MARKER = "WRKJSON "
WRK_TIMEOUT = "30s"  # so that slow answers at c=512 count as latency, not as errors
CONCURRENCY = (1, 32, 512)
INSTALL_HINT = "wrk is missing: install it with `apt-get update && apt-get install -y wrk`"


@dataclass
class LoadResult:
    server: str
    concurrency: int
    threads: int
    duration_s: float
    requests: int
    rps: float
    errors: dict[str, int]
    non_2xx: int
    p50_us: int
    p90_us: int
    p99_us: int
    max_us: int
    mean_us: float
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def failed(self) -> int:
        return sum(self.errors.values()) + self.non_2xx

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        extra = data.pop("extra")
        return {**data, "failed": self.failed, **extra}


def wrk_path() -> str:
    path = shutil.which("wrk")
    if path is None:
        raise SystemExit(INSTALL_HINT)
    return path


def _raise_nofile() -> None:
    """In the wrk child: soft limit of open files up to the hard limit (512+ sockets)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def raise_nofile_limit(minimum: int = 4096) -> int:
    """Raise this process's soft open-file limit (servers started from it inherit it)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard != resource.RLIM_INFINITY else max(soft, 65536)
    if soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    if soft < minimum:
        raise SystemExit(f"open-file limit {soft} < {minimum}: raise it (ulimit -n)")
    return soft


def run_wrk(server: str, url: str, body: Path, concurrency: int, seconds: float) -> LoadResult:
    """One wrk run; its parsed JSON line."""
    threads = min(2, concurrency)
    argv = [
        wrk_path(),
        "-t", str(threads),
        "-c", str(concurrency),
        "-d", f"{max(1, round(seconds))}s",
        "--timeout", WRK_TIMEOUT,
        "--latency",
        "-s", str(LUA),
        url,
    ]  # fmt: skip
    done = subprocess.run(
        argv,
        env=os.environ | {"WRK_BODY_FILE": str(body)},
        capture_output=True,
        preexec_fn=_raise_nofile,
        timeout=seconds + 120,
        check=False,
    )
    out = done.stdout.decode(errors="replace")
    lines = [line for line in out.splitlines() if line.startswith(MARKER)]
    if done.returncode != 0 or not lines:
        raise RuntimeError(
            f"wrk failed ({done.returncode}) on {url}: {done.stderr.decode(errors='replace')}"
            f"{out[-2000:]}"
        )
    data = json.loads(lines[-1][len(MARKER) :])
    duration_s = data["duration_us"] / 1e6
    latency = data["latency_us"]
    return LoadResult(
        server=server,
        concurrency=concurrency,
        threads=threads,
        duration_s=round(duration_s, 3),
        requests=int(data["requests"]),
        rps=round(data["requests"] / duration_s, 1) if duration_s else 0.0,
        errors={k: int(v) for k, v in data["errors"].items()},
        non_2xx=int(data["non_2xx"]),
        p50_us=int(latency["p50"]),
        p90_us=int(latency["p90"]),
        p99_us=int(latency["p99"]),
        max_us=int(latency["max"]),
        mean_us=round(float(latency["mean"]), 1),
    )


def measure_point(
    server: str,
    url: str,
    body: Path,
    concurrency: int,
    seconds: float,
    warmup_s: float,
) -> LoadResult:
    """An untimed warm-up run, then the measured run, at the same concurrency."""
    if warmup_s > 0:
        run_wrk(server, url, body, concurrency, warmup_s)
    return run_wrk(server, url, body, concurrency, seconds)
