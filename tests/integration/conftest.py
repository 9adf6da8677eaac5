"""A real `modelhub server` process on loopback, and the CLI run as a user runs it."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import chdir, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from modelhub.client import Client
from modelhub.client.contract import ModelhubClient
from modelhub.client.local import LocalClient
from modelhub.settings import Settings


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MODELHUB_")}
    if env.get("PYTHONPATH"):
        # Subprocesses run in other folders: a relative PYTHONPATH=src would miss this tree.
        parts = env["PYTHONPATH"].split(os.pathsep)
        env["PYTHONPATH"] = os.pathsep.join(os.path.abspath(p) if p else p for p in parts)
    env["COLUMNS"] = "200"
    env.update(extra)
    return env


@dataclass
class ServerProcess:
    home: Path
    port: int
    env: dict[str, str]
    log: Path
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def token(self) -> str:
        """The first admin's token, written by the server on its first start."""
        return (self.home / "admin.token").read_text().strip()

    @property
    def headers(self) -> dict[str, str]:
        return {"authorization": f"Bearer {self.token}"}

    def http(self, **kwargs: Any) -> httpx.Client:
        return httpx.Client(base_url=self.url, headers=self.headers, **kwargs)

    def start(self, timeout: float = 60) -> None:
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "modelhub", "server", "--port", str(self.port)],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited: {self.log.read_text()[-2000:]}")
            try:
                if httpx.get(f"{self.url}/readyz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"server not ready in {timeout}s: {self.log.read_text()[-2000:]}")

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def kill9(self) -> None:
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait()


@contextmanager
def running(srv: ServerProcess) -> Iterator[ServerProcess]:
    """Start the server, and stop it (by PID) however the block ends."""
    srv.start()
    try:
        yield srv
    finally:
        srv.stop()


def make_server(root: Path, **env: str) -> ServerProcess:
    home = root / "server-home"
    home.mkdir(parents=True, exist_ok=True)
    return ServerProcess(
        home=home,
        port=free_port(),
        # No warm training worker or serving spare unless a test asks: each costs imports.
        env=clean_env(
            MODELHUB_HOME=str(home),
            **{"MODELHUB_TRAIN_WARM_WORKERS": "0", "MODELHUB_SERVE_WARM_SPARES": "0", **env},
        ),
        log=root / "server.log",
    )


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerProcess]:
    srv = make_server(tmp_path)
    with running(srv):
        yield srv


@pytest.fixture(scope="module")
def shared_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    srv = make_server(tmp_path_factory.mktemp("shared-server"))
    with running(srv):
        yield srv


@contextmanager
def either_client(kind: str, server: ServerProcess, home: Path) -> Iterator[ModelhubClient]:
    """The HTTP client of `server` ("http"), or a local client over `home` ("local"):
    the two implementations of one contract, for tests run against both."""
    opened: ModelhubClient
    if kind == "http":
        opened = Client(server.url, token=server.token)
    else:
        opened = LocalClient(Settings(home=home), actor="ada")
    try:
        yield opened
    finally:
        opened.close()


@dataclass
class Cli:
    """Runs `modelhub ...` locally or against a server: in this process by default (the
    real entry point, `modelhub.cli.main.main`, with its own streams, environment, folder
    and exit status), or as `python -m modelhub ...` in a subprocess with `subprocess=True`
    where the process itself is the point. A subprocess costs about 1.5 s of imports."""

    mode: str
    env: dict[str, str]
    cwd: Path
    calls: list[list[str]] = field(default_factory=list)
    subprocess: bool = False

    def run(self, *args: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
        self.calls.append(list(args))
        result = self.in_subprocess(args) if self.subprocess else self.in_process(args)
        if ok and result.returncode != 0:
            raise AssertionError(
                f"modelhub {' '.join(args)} exited {result.returncode}:\n{result.stderr}"
            )
        return result

    def in_subprocess(self, args: tuple[str, ...]) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "modelhub", *args],
            env=self.env,
            cwd=self.cwd,
            capture_output=True,
            text=True,
            timeout=120,
        )

    def in_process(self, args: tuple[str, ...]) -> subprocess.CompletedProcess[str]:
        from click.testing import CliRunner

        from modelhub.cli.main import main

        # The subprocess's environment, as overrides: every MODELHUB_ variable of this
        # process that `env` lacks is removed for the call.
        overrides: dict[str, str | None] = {
            k: None for k in os.environ if k.startswith("MODELHUB_") and k not in self.env
        }
        overrides.update({k: v for k, v in self.env.items() if os.environ.get(k) != v})
        overrides.pop("PYTHONPATH", None)
        runner = CliRunner()
        with chdir(self.cwd), runner.isolation(env=overrides) as (out, err, _):
            try:
                main(list(args))
                code: int = 0
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
            sys.stdout.flush()
            sys.stderr.flush()
            stdout, stderr = out.getvalue().decode(), err.getvalue().decode()
        return subprocess.CompletedProcess(["modelhub", *args], code, stdout, stderr)

    def json(self, *args: str) -> Any:
        return json.loads(self.run(*args, "--json").stdout)


@pytest.fixture(params=["local", "server"])
def cli(
    request: pytest.FixtureRequest, tmp_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> Cli:
    """The same CLI suite runs twice: on the local home and against a server process."""
    if request.param == "local":
        return Cli("local", clean_env(MODELHUB_HOME=str(tmp_path / "home")), tmp_path)
    srv: ServerProcess = request.getfixturevalue("server")
    return Cli("server", clean_env(MODELHUB_URL=srv.url, MODELHUB_TOKEN=srv.token), tmp_path)
