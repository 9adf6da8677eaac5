"""Helpers every benchmark shares: timing, safetensors files, loopback servers.

Standard library only, so the peer scripts (run in their own venvs) import it too.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import statistics
import struct
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
CACHE_DIR = BENCH_DIR / ".cache"
MLFLOW_PYTHON = BENCH_DIR / ".venv-mlflow" / "bin" / "python"

MIB = 1024 * 1024


def isolate_from_user_env() -> None:
    """Forget MODELHUB_* variables, so a bench never touches the user's own store."""
    for key in [k for k in os.environ if k.startswith("MODELHUB_")]:
        del os.environ[key]


def log(message: str) -> None:
    """Progress goes to stderr: stdout carries only the one JSON line."""
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def emit(result: dict[str, Any]) -> None:
    print(json.dumps(result, sort_keys=False), flush=True)


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


def rounded(value: float | None, digits: int = 3) -> float | None:
    if value is None or value != value:  # NaN
        return None
    return round(value, digits)


def time_calls(fn: Callable[[], object], iterations: int, warmup: int = 20) -> list[float]:
    """Seconds per call, one sample per call, after `warmup` untimed calls."""
    for _ in range(warmup):
        fn()
    samples: list[float] = []
    for _ in range(iterations):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return samples


# -- safetensors ---------------------------------------------------------------


def write_safetensors(
    path: Path,
    tensors: Sequence[tuple[str, int]],
    chunk_bytes: int = 16 * MIB,
    random_bytes: Callable[[int], bytes] = os.urandom,
) -> int:
    """Write a valid safetensors file of flat F32 tensors (name, element count).

    The data is random bytes written in chunks, so the file never sits in memory
    whole. Returns the file size.
    """
    header: dict[str, Any] = {"__metadata__": {"format": "pt"}}
    offset = 0
    for name, count in tensors:
        header[name] = {
            "dtype": "F32",
            "shape": [count],
            "data_offsets": [offset, offset + 4 * count],
        }
        offset += 4 * count
    encoded = json.dumps(header, separators=(",", ":")).encode()
    encoded += b" " * (-len(encoded) % 8)  # the spec pads the header to 8 bytes
    if (len(encoded) & 0xFF) == 0x78 and (len(encoded) >> 8) & 0xFF in (0x01, 0x5E, 0x9C, 0xDA):
        # Such a length's first two bytes read as a zlib magic number; modelhub's sniff()
        # (found by this bench) calls the file compressed. Pad past it until fixed.
        encoded += b" " * 8
    with open(path, "wb") as out:
        out.write(struct.pack("<Q", len(encoded)))
        out.write(encoded)
        left = offset
        while left:
            n = min(chunk_bytes, left)
            out.write(random_bytes(n))
            left -= n
    return path.stat().st_size


def write_small_safetensors(path: Path, data_bytes: int = MIB) -> int:
    """A ~1 MB safetensors file with random (hence distinct) data: two F32 tensors."""
    elements = data_bytes // 4
    return write_safetensors(path, [("weight", elements - 16), ("bias", 16)])


# -- processes and ports -----------------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_http(url: str, proc: subprocess.Popen[bytes], timeout: float = 90.0) -> None:
    """Poll `url` until it answers 2xx; fail early if the process died."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode} before answering {url}")
        with (
            contextlib.suppress(urllib.error.URLError, ConnectionError, TimeoutError, OSError),
            urllib.request.urlopen(url, timeout=2) as response,
        ):
            if 200 <= response.status < 300:
                return
        time.sleep(0.2)
    raise RuntimeError(f"{url} did not answer within {timeout:.0f}s")


def stop_process(proc: subprocess.Popen[bytes]) -> None:
    """Stop exactly this process (and the process group it leads) by its PID."""
    if proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=15)


@contextlib.contextmanager
def server_process(
    argv: Sequence[str],
    health_url: str,
    env: dict[str, str] | None = None,
    log_path: Path | None = None,
) -> Iterator[subprocess.Popen[bytes]]:
    """Start a server in its own process group, wait until healthy, stop it by PID."""
    out = open(log_path, "wb") if log_path else subprocess.DEVNULL  # noqa: SIM115
    proc = subprocess.Popen(
        list(argv),
        env={k: v for k, v in os.environ.items() if not k.startswith("MODELHUB_")} | (env or {}),
        stdout=out,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its own group: workers it forks stop with it
    )
    log(f"started {Path(argv[0]).name} {' '.join(argv[1:4])}... pid={proc.pid}")
    try:
        wait_http(health_url, proc)
        yield proc
    finally:
        stop_process(proc)
        log(f"stopped pid={proc.pid}")
        if log_path and not isinstance(out, int):
            out.close()


def modelhub_server_argv(port: int) -> list[str]:
    """`modelhub server` when the CLI has it, else uvicorn on the app factory."""
    python = sys.executable
    try:
        import modelhub.cli.main  # noqa: F401
    except ImportError:
        return [
            python, "-m", "uvicorn", "--factory", "modelhub.api.app:create_app",
            "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning",
        ]  # fmt: skip
    return [python, "-m", "modelhub", "server", "--host", "127.0.0.1", "--port", str(port)]


def run_peer(script: str, args: Sequence[str], timeout: float | None = None) -> dict[str, Any]:
    """Run a peer script with the peer venv's python; parse its one JSON line."""
    if not MLFLOW_PYTHON.exists():
        raise RuntimeError(f"{MLFLOW_PYTHON} missing: run bench/setup_peers.sh first")
    argv = [str(MLFLOW_PYTHON), str(BENCH_DIR / "peers" / script), *args]
    log(f"peer: {' '.join(argv[1:])}")
    done = subprocess.run(argv, stdout=subprocess.PIPE, timeout=timeout, check=True)
    lines = [line for line in done.stdout.decode().splitlines() if line.startswith("{")]
    if not lines:
        raise RuntimeError(f"{script} printed no JSON line")
    result: dict[str, Any] = json.loads(lines[-1])
    return result


def admin_token(home: Path) -> str:
    """The first admin's token, which `modelhub server` writes on its first start."""
    return (home / "admin.token").read_text().strip()
