"""The peers: model A behind MLflow's `mlflow models serve` and behind Seldon MLServer.

Each peer gets its own virtual environment, made by the benchmark under
`bench/.cache/serving/` (ignored by git) with the interpreter the benchmark runs on
(`python -m venv`), torch==2.13.0 installed first (the local CPU wheel), then:

- MLflow: the latest mlflow 3.x (`MLFLOW_VERSION` pins one) and safetensors;
- MLServer: the latest mlserver (`MLSERVER_VERSION` pins one), `fastapi<0.116` (its
  pin), `uvloop<0.22` (uvloop 0.22 makes MLServer's parallel workers die at start:
  "There is no current event loop", SeldonIO/MLServer#2286) and safetensors.

A venv is made once: a stamp file records the install steps and the versions
installed, and a later run with the same steps reuses it without touching pip.

Servers run as children in their own process group on a free 127.0.0.1 port, are
polled until ready, checked with one real prediction (atol 1e-4 against torch's
logits) by the runner, and stopped by their process group's id; the group is
killed if anything of it is still alive after the leader exited.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchlib import BENCH_DIR, free_port, log, wait_http
from serving.common import Endpoint
from serving.model_a import ModelA

HERE = Path(__file__).resolve().parent
CACHE = BENCH_DIR / ".cache" / "serving"
TORCH = "torch==2.13.0"  # first, alone: the local CPU wheel (else pip pulls a GPU build)
MLSERVER_MODEL = "model-a"
DEFAULT_MLSERVER_WORKERS = 1  # mlserver.settings.DEFAULT_PARALLEL_WORKERS (1.7)


@dataclass(frozen=True)
class VenvSpec:
    name: str
    steps: tuple[tuple[str, ...], ...]  # `pip install` arguments, one step after another
    versions_of: tuple[str, ...]  # distributions whose versions the stamp records


def mlflow_spec() -> VenvSpec:
    pin = os.environ.get("MLFLOW_VERSION")
    mlflow = f"mlflow=={pin}" if pin else "mlflow>=3,<4"
    return VenvSpec(
        "mlflow", ((TORCH,), (mlflow, "safetensors")), ("mlflow", "torch", "uvicorn", "numpy")
    )


def mlserver_spec() -> VenvSpec:
    pin = os.environ.get("MLSERVER_VERSION")
    mlserver = f"mlserver=={pin}" if pin else "mlserver"
    return VenvSpec(
        "mlserver",
        ((TORCH,), (mlserver, "fastapi<0.116", "uvloop<0.22", "safetensors")),
        ("mlserver", "torch", "fastapi", "uvicorn", "uvloop", "numpy"),
    )


@dataclass(frozen=True)
class Venv:
    name: str
    root: Path
    versions: dict[str, str]

    @property
    def python(self) -> Path:
        return self.root / "bin" / "python"

    @property
    def bin(self) -> Path:
        return self.root / "bin"


def _versions(python: Path, names: tuple[str, ...]) -> dict[str, str]:
    code = (
        "import json, sys\nfrom importlib.metadata import version\n"
        "print(json.dumps({n: version(n) for n in sys.argv[1:]}))"
    )
    done = subprocess.run(
        [str(python), "-c", code, *names], capture_output=True, text=True, check=True
    )
    versions: dict[str, str] = json.loads(done.stdout)
    return versions


def base_python() -> str:
    """The interpreter under the project venv (a venv made from a venv's python works too)."""
    base = getattr(sys, "_base_executable", None)
    return base if base and Path(base).exists() else sys.executable


def ensure_venv(spec: VenvSpec) -> Venv:
    """The peer's venv under bench/.cache/serving, made and installed once (stamped)."""
    root = CACHE / f"venv-{spec.name}"
    stamp = root / "bench-installed.json"
    wanted = [list(step) for step in spec.steps]
    if stamp.exists() and (root / "bin" / "python").exists():
        recorded = json.loads(stamp.read_text())
        if recorded.get("steps") == wanted:
            log(f"{spec.name} venv cached: {root} {recorded.get('versions')}")
            return Venv(spec.name, root, recorded.get("versions", {}))
    if root.exists():
        shutil.rmtree(root)
    CACHE.mkdir(parents=True, exist_ok=True)
    install_log = CACHE / f"install-{spec.name}.log"
    log(f"creating the {spec.name} venv in {root} (pip output: {install_log}); a few minutes")
    with open(install_log, "w") as out:
        subprocess.run([base_python(), "-m", "venv", str(root)], check=True, stdout=out)
        for step in spec.steps:
            log(f"  pip install {' '.join(step)}")
            done = subprocess.run(
                [str(root / "bin" / "python"), "-m", "pip", "install", *step],
                stdout=out,
                stderr=subprocess.STDOUT,
                check=False,
            )
            if done.returncode != 0:
                raise RuntimeError(f"pip install {' '.join(step)} failed: see {install_log}")
    versions = _versions(root / "bin" / "python", spec.versions_of)
    stamp.write_text(json.dumps({"steps": wanted, "versions": versions}, indent=2))
    log(f"{spec.name} venv ready: {versions}")
    return Venv(spec.name, root, versions)


# -- process groups ------------------------------------------------------------------


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def stop_group(proc: subprocess.Popen[bytes], grace_s: float = 15.0) -> None:
    """SIGTERM the process group led by `proc`, wait for all of it, SIGKILL what stays."""
    pgid = proc.pid
    if proc.poll() is None or _group_alive(pgid):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline:
        proc.poll()
        if proc.returncode is not None and not _group_alive(pgid):
            return
        time.sleep(0.1)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGKILL)
    proc.wait(timeout=15)
    deadline = time.monotonic() + 10
    while _group_alive(pgid) and time.monotonic() < deadline:
        time.sleep(0.1)
    if _group_alive(pgid):
        raise RuntimeError(f"process group {pgid} is still alive after SIGKILL")


@contextlib.contextmanager
def child_server(
    argv: list[str],
    ready_url: str,
    env: dict[str, str],
    log_path: Path,
    cwd: Path | None = None,
    timeout: float = 120.0,
) -> Iterator[subprocess.Popen[bytes]]:
    """Start a server in its own process group; wait until `ready_url` answers 2xx."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("MODELHUB_", "MLFLOW_"))}
    with open(log_path, "wb") as out:
        proc = subprocess.Popen(
            argv,
            env=clean | env,
            cwd=cwd,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log(f"started {' '.join(Path(a).name if '/' in a else a for a in argv[:4])} pid={proc.pid}")
        try:
            try:
                wait_http(ready_url, proc, timeout=timeout)
            except RuntimeError as exc:
                tail = log_path.read_bytes()[-3000:].decode(errors="replace")
                raise RuntimeError(f"{exc}; log {log_path}:\n{tail}") from exc
            yield proc
        finally:
            stop_group(proc)
            log(f"stopped pid={proc.pid} (its whole process group)")


# -- peer configurations, by name ----------------------------------------------------

PEER_NAME = re.compile(r"^(mlflow)(?:-w(\d+))?$|^(mlserver)(?:-pw(\d+))?(-batch)?$")


@dataclass(frozen=True)
class PeerConfig:
    """`mlflow[-wN]`: `mlflow models serve` (-w N; none: its default, 1 worker).
    `mlserver[-pwN][-batch]`: MLServer with parallel_workers N (none: its default, 1;
    0 runs inference on the server's own event loop), adaptive batching with `-batch`."""

    name: str
    peer: str  # "mlflow" or "mlserver"
    workers: int | None  # mlflow -w / MLServer parallel_workers; None: the peer's default
    batching: bool = False


def parse_peer(name: str) -> PeerConfig:
    match = PEER_NAME.match(name)
    if match is None:
        raise ValueError(
            f"unknown peer configuration {name!r}: mlflow[-wN] or mlserver[-pwN][-batch]"
        )
    if match.group(1):
        return PeerConfig(name, "mlflow", int(match.group(2)) if match.group(2) else None)
    workers = int(match.group(4)) if match.group(4) else None
    return PeerConfig(name, "mlserver", workers, batching=bool(match.group(5)))


# -- MLflow ----------------------------------------------------------------------------


def log_mlflow_model(venv: Venv, model: ModelA, work: Path) -> dict[str, Any]:
    """Log model A with mlflow.pytorch.log_model in the peer venv; its JSON line."""
    tracking = work / "mlflow-tracking"
    done = subprocess.run(
        [
            str(venv.python),
            str(HERE / "peer_mlflow_log.py"),
            str(model.safetensors),
            str(tracking),
        ],
        capture_output=True,
        check=False,
        timeout=300,
    )
    lines = [line for line in done.stdout.decode().splitlines() if line.startswith("{")]
    if done.returncode != 0 or not lines:
        raise RuntimeError(f"logging the MLflow model failed: {done.stderr.decode()[-3000:]}")
    logged: dict[str, Any] = json.loads(lines[-1])
    log(f"MLflow model logged: {logged['model_uri']} ({logged['format']})")
    return logged


@contextlib.contextmanager
def mlflow_server(
    venv: Venv,
    model: ModelA,
    logged: dict[str, Any],
    work: Path,
    workers: int | None,
    name: str,
) -> Iterator[Endpoint]:
    """`mlflow models serve -m <logged model folder> --env-manager local [-w N]`."""
    port = free_port()
    argv = [
        str(venv.bin / "mlflow"), "models", "serve",
        "-m", str(logged["artifact_path"]),
        "--env-manager", "local",
        "-h", "127.0.0.1",
        "-p", str(port),
    ]  # fmt: skip
    if workers is not None:
        argv += ["-w", str(workers)]
    # it runs `uvicorn` through bash, found on PATH; uvicorn reads its options from
    # UVICORN_* too: no access log line per request (MLServer runs with debug off alike)
    env = {"PATH": f"{venv.bin}:{os.environ.get('PATH', '')}", "UVICORN_ACCESS_LOG": "false"}
    with child_server(argv, f"http://127.0.0.1:{port}/ping", env, work / f"{name}.log", cwd=work):
        yield Endpoint(
            name=name,
            url=f"http://127.0.0.1:{port}/invocations",
            body=model.mlflow_body,
            protocol="mlflow",
            config={
                "server": "mlflow models serve (uvicorn)",
                "workers": workers if workers is not None else "default (1)",
                "access_log": False,
                "mlflow": venv.versions.get("mlflow"),
                "torch": venv.versions.get("torch"),
                "logged_as": "mlflow.pytorch.log_model, input example batch 2 "
                f"({logged['format']} serialization: torch.export program)",
            },
        )


# -- MLServer -------------------------------------------------------------------------


def write_mlserver_repo(
    model: ModelA,
    folder: Path,
    batching: bool,
    parallel_workers: int | None,
    max_batch_size: int,
    max_batch_time: float,
) -> tuple[int, dict[str, Any], dict[str, Any]]:
    """settings.json + model-a/model-settings.json (+ the weights); returns the http port."""
    if folder.exists():
        shutil.rmtree(folder)
    (folder / MLSERVER_MODEL).mkdir(parents=True)
    shutil.copyfile(model.safetensors, folder / MLSERVER_MODEL / "model.safetensors")
    http_port = free_port()
    settings: dict[str, Any] = {
        "host": "127.0.0.1",
        "http_port": http_port,
        "grpc_port": free_port(),
        "metrics_port": free_port(),
        # MLServer's default (debug: true) logs every request: off, as in production
        "debug": False,
    }
    if parallel_workers is not None:
        settings["parallel_workers"] = parallel_workers
    model_settings: dict[str, Any] = {
        "name": MLSERVER_MODEL,
        "implementation": "peer_mlserver_runtime.ModelARuntime",
        "parameters": {"uri": "./model.safetensors"},
    }
    if batching:
        model_settings["max_batch_size"] = max_batch_size
        model_settings["max_batch_time"] = max_batch_time
    (folder / "settings.json").write_text(json.dumps(settings, indent=2))
    (folder / MLSERVER_MODEL / "model-settings.json").write_text(
        json.dumps(model_settings, indent=2)
    )
    return http_port, settings, model_settings


@contextlib.contextmanager
def mlserver_server(
    venv: Venv,
    model: ModelA,
    work: Path,
    name: str,
    batching: bool,
    parallel_workers: int | None,
    max_batch_size: int = 32,
    max_batch_time: float = 0.002,
) -> Iterator[Endpoint]:
    """`mlserver start <repo>` with the custom runtime `peer_mlserver_runtime.ModelARuntime`."""
    repo = work / f"{name}-repo"
    port, settings, model_settings = write_mlserver_repo(
        model, repo, batching, parallel_workers, max_batch_size, max_batch_time
    )
    # the runtime module is imported by the server and by its parallel workers
    env = {"PYTHONPATH": str(HERE), "PATH": f"{venv.bin}:{os.environ.get('PATH', '')}"}
    ready = f"http://127.0.0.1:{port}/v2/models/{MLSERVER_MODEL}/ready"
    argv = [str(venv.bin / "mlserver"), "start", str(repo)]
    with child_server(argv, ready, env, work / f"{name}.log", cwd=work):
        yield Endpoint(
            name=name,
            url=f"http://127.0.0.1:{port}/v2/models/{MLSERVER_MODEL}/infer",
            body=model.oip_body,
            protocol="oip",
            config={
                "server": "mlserver start (custom runtime, torch Sequential, 1 torch thread)",
                "debug": False,
                "parallel_workers": (
                    parallel_workers
                    if parallel_workers is not None
                    else f"default ({DEFAULT_MLSERVER_WORKERS})"
                ),
                "adaptive_batching": (
                    {"max_batch_size": max_batch_size, "max_batch_time_s": max_batch_time}
                    if batching
                    else None
                ),
                "mlserver": venv.versions.get("mlserver"),
                "fastapi": venv.versions.get("fastapi"),
                "uvloop": venv.versions.get("uvloop"),
                "torch": venv.versions.get("torch"),
                "settings": {k: v for k, v in settings.items() if not k.endswith("port")},
                "model_settings": model_settings,
            },
        )
