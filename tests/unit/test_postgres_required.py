"""PostgreSQL tests skip on a laptop without the server, and fail the run in CI.

Both cases run pytest, with our conftest, on one test that needs PostgreSQL, pointed
at a port where nothing listens.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
NEEDS_POSTGRES = "def test_needs_postgres(pg_url: str) -> None:\n    assert pg_url\n"


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])  # nothing listens once the socket closes


def start_pytest(folder: Path, **env: str) -> subprocess.Popen[str]:
    folder.mkdir()
    (folder / "test_one.py").write_text(NEEDS_POSTGRES)
    inherited = {k: v for k, v in os.environ.items() if k != "MODELHUB_REQUIRE_POSTGRES"}
    url = f"postgresql://postgres@127.0.0.1:{closed_port()}/test"
    pytest = [sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider"]
    ours_only = ["-p", "tests.conftest", "-c", os.devnull, "--rootdir", str(folder)]
    return subprocess.Popen(
        [*pytest, *ours_only, str(folder / "test_one.py")],
        cwd=ROOT,
        env={**inherited, "MODELHUB_TEST_POSTGRES_URL": url, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def test_an_absent_server_skips_with_the_reason_unless_required(tmp_path: Path) -> None:
    laptop = start_pytest(tmp_path / "laptop")
    ci = start_pytest(tmp_path / "ci", MODELHUB_REQUIRE_POSTGRES="1")
    laptop_out, _ = laptop.communicate(timeout=120)
    ci_out, _ = ci.communicate(timeout=120)

    assert laptop.returncode == 0, laptop_out
    assert "1 skipped" in laptop_out and "PostgreSQL not reachable at 127.0.0.1:" in laptop_out

    assert ci.returncode == 1, ci_out
    said = [line for line in ci_out.splitlines() if "MODELHUB_REQUIRE_POSTGRES=1" in line]
    assert len(said) == 1 and "PostgreSQL not reachable at 127.0.0.1:" in said[0], ci_out
    assert "skipped" not in ci_out and "passed" not in ci_out
