"""A training script cannot reach the server's secrets, its database or other runs.

Each test runs a real script through the script trainer, as a worker does: the
child process confines itself (Landlock; as root, no capabilities or another user)
before it imports the script, and gets only the run's own environment.
"""

from __future__ import annotations

import json
import os
import pwd
import socket
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from modelhub.errors import InvalidInput
from modelhub.training.context import LocalContext
from modelhub.training.sandbox import job_section
from modelhub.training.trainers import script
from tests.sandbox_probe import PROBE_HELPERS

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux only")

# Tries every read an attacker would, and reports what happened to each.
PROBE = (
    """
import json
import os
import tempfile
import socket
import sys

"""
    + PROBE_HELPERS
    + """

def train(ctx):
    probe = json.loads((ctx.run_dir / "probe.json").read_text())
    found = {name: attempt(read(path)) for name, path in probe["files"].items()}
    found["chmod_token"] = attempt(lambda: os.chmod(probe["files"]["admin_token"], 0o644))
    found["list_home"] = attempt(lambda: os.listdir(probe["home"]))
    found["write_home"] = attempt(lambda: open(probe["home"] + "/dropped", "w").close())
    found["connect"] = attempt(lambda: socket.create_connection(("127.0.0.1", probe["port"]), 5))
    found["signal_parent"] = attempt(lambda: os.kill(os.getppid(), 0))
    found["parent_environ"] = attempt(read(f"/proc/{os.getppid()}/environ"))
    found["cwd"] = os.getcwd()
    found["tmp"] = attempt(lambda: tempfile.TemporaryFile().close())
    found["environ"] = sorted(os.environ)
    found["environ_text"] = " ".join(os.environ.values())
    found["uid"] = os.geteuid()
    status = open("/proc/self/status").read().splitlines()
    found["caps"] = {x.split(":")[0]: x.split()[1] for x in status if x.startswith("Cap")}
    (ctx.output_dir / "config.json").write_text(json.dumps(found))
    return {"probed": len(found)}
"""
)

SECRET = "mh_secret_admin_token"
WORKER = (
    "import sys; from pathlib import Path;"
    "from modelhub.training.context import LocalContext;"
    "from modelhub.training.trainers import script;"
    "script.train(LocalContext.from_job(Path(sys.argv[1])))"
)
# An interpreter every user may run (the test machine's own lives under a closed /root).
SYSTEM_PYTHON = Path(f"/usr/bin/python{sys.version_info.major}.{sys.version_info.minor}")


@pytest.fixture
def listener() -> Iterator[int]:
    """A TCP port on loopback that accepts connections (a database, the API ...)."""
    with socket.create_server(("127.0.0.1", 0)) as server:
        yield server.getsockname()[1]


def server_home(tmp_path: Path) -> Path:
    """A home as the server leaves it: secrets, a database, artifacts, two runs."""
    home = tmp_path / "home"
    (home / "artifacts" / "blobs").mkdir(parents=True)
    (home / "admin.token").write_text(SECRET)
    (home / "admin.token").chmod(0o600)
    (home / "server.key").write_bytes(b"k" * 32)
    with sqlite3.connect(home / "modelhub.db") as db:
        db.execute("create table t (x)")
    (home / "artifacts" / "blobs" / "ab12").write_text("a blob")
    (home / "runs" / "1").mkdir(parents=True)
    (home / "runs" / "1" / "logs.txt").write_text("another run's log")
    return home


def probe_run(
    tmp_path: Path, port: int, worker: Path | None = None
) -> tuple[LocalContext, dict[str, Any]]:
    """Run PROBE as a script run of a server home; in a worker on `worker` if given."""
    home = server_home(tmp_path)
    ctx = LocalContext(home / "runs" / "2")
    source = ctx.run_dir / "script" / "probe.py"
    source.parent.mkdir()
    source.write_text(PROBE)
    files = {
        "admin_token": home / "admin.token",
        "server_key": home / "server.key",
        "database": home / "modelhub.db",
        "blob": home / "artifacts" / "blobs" / "ab12",
        "other_run": home / "runs" / "1" / "logs.txt",
        "shadow": Path("/etc/shadow"),
    }
    (ctx.run_dir / "probe.json").write_text(
        json.dumps(
            {"files": {k: str(v) for k, v in files.items()}, "home": str(home), "port": port}
        )
    )
    ctx.write_job(
        trainer="script",
        script={"path": str(source), "entrypoint": "train"},
        sandbox=job_section(home, str(home / "artifacts"), "nobody", True, False),
    )
    if worker is None:
        script.train(ctx)
    else:
        # This interpreter's packages and modelhub, the other interpreter's stdlib.
        ours = [entry for entry in sys.path if entry and not entry.startswith(sys.base_prefix)]
        paths = os.pathsep.join(ours)
        done = subprocess.run(
            [str(worker), "-c", WORKER, str(ctx.job_file)],
            env={"PATH": "/usr/bin:/bin", "PYTHONPATH": paths},
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr
    return ctx, json.loads((ctx.output_dir / "config.json").read_text())


def test_a_script_reaches_neither_secrets_nor_database_nor_other_runs(
    tmp_path: Path, listener: int
) -> None:
    ctx, found = probe_run(tmp_path, listener)
    for attempt in ("admin_token", "server_key", "database", "blob", "other_run", "shadow"):
        assert found[attempt] == "PermissionError", attempt
    assert (tmp_path / "home" / "admin.token").stat().st_mode & 0o777 == 0o600
    assert found["list_home"] == "PermissionError"
    assert found["write_home"] == "PermissionError"
    assert not (tmp_path / "home" / "dropped").exists()
    assert found["connect"] == "PermissionError"  # no TCP: not the database, not the API
    assert found["signal_parent"] == "PermissionError"
    assert found["parent_environ"] == "PermissionError"
    assert found["cwd"] == str(ctx.run_dir)
    assert found["tmp"] == "allowed"  # its own temporary folder, in the run folder
    if os.geteuid() == 0:  # root keeps no capability (or became another user)
        assert found["uid"] != 0 or set(found["caps"].values()) == {"0000000000000000"}


def test_a_script_sees_only_its_runs_variables(
    tmp_path: Path, listener: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MODELHUB_TOKEN", SECRET)
    monkeypatch.setenv("MODELHUB_DATABASE_URL", "postgresql://postgres@127.0.0.1/prod")
    monkeypatch.setenv("MODELHUB_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "s3-secret")
    _, found = probe_run(tmp_path, listener)
    assert [name for name in found["environ"] if name.startswith("MODELHUB_")] == [
        "MODELHUB_RUN_JOB"
    ]
    assert "AWS_SECRET_ACCESS_KEY" not in found["environ"]
    for secret in (SECRET, "postgresql://", "s3-secret"):
        assert secret not in found["environ_text"]


def test_a_script_outside_its_run_folder_is_refused(tmp_path: Path) -> None:
    source = tmp_path / "train.py"
    source.write_text("def train(ctx):\n    return {}\n")
    ctx = LocalContext(tmp_path / "run")
    ctx.write_job(trainer="script", script={"path": str(source)})
    with pytest.raises(InvalidInput, match="lies outside the run folder"):
        script.train(ctx)


@pytest.mark.skipif(
    os.geteuid() != 0 or not SYSTEM_PYTHON.exists(),
    reason="needs root, and this Python version installed where other users can run it",
)
def test_as_root_a_script_runs_as_the_unprivileged_user(tmp_path: Path, listener: int) -> None:
    ctx, found = probe_run(tmp_path, listener, worker=SYSTEM_PYTHON)
    assert found["uid"] == pwd.getpwnam("nobody").pw_uid
    for attempt in ("admin_token", "server_key", "database", "blob", "other_run", "chmod_token"):
        assert found[attempt] == "PermissionError", attempt
    assert found["connect"] == "PermissionError"
    assert found["cwd"] == str(ctx.run_dir)
    assert found["tmp"] == "allowed"
    assert (ctx.run_dir / "output").stat().st_uid == found["uid"]  # handed over to it


LINGERS = """
import subprocess
import sys


def train(ctx):
    detached = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(600)"], start_new_session=True
    )
    (ctx.run_dir / "lingering.pid").write_text(str(detached.pid))
    (ctx.output_dir / "config.json").write_text("{}")
    return {}
"""


def test_nothing_a_script_started_outlives_it(tmp_path: Path) -> None:
    ctx = LocalContext(tmp_path / "runs" / "1")
    source = ctx.run_dir / "script" / "lingers.py"
    source.parent.mkdir()
    source.write_text(LINGERS)
    ctx.write_job(trainer="script", script={"path": str(source)})
    script.train(ctx)
    pid = int((ctx.run_dir / "lingering.pid").read_text())
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        state = "gone"
    assert state in ("gone", "Z", "X"), f"process {pid} still runs"
