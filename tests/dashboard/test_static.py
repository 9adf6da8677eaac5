"""The vendored scripts are the files VENDORED.md records, byte for byte, with their
licenses beside them, and the server serves them to anyone (they hold no data)."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import httpx
import pytest

from modelhub.dashboard.render import STATIC_DIR
from tests.integration.conftest import ServerProcess

TESTS_VENDOR = Path(__file__).parent / "vendor"
ROW = re.compile(r"^\| `(vendor/[^`]+)` .*\| ([0-9a-f]{64}) \|$", re.MULTILINE)
AXE = re.compile(r"axe\.min\.js` \(tarball sha256\s+[0-9a-f]{64}, file sha256\s+([0-9a-f]{64})\)")


def recorded() -> dict[str, str]:
    return dict(ROW.findall((STATIC_DIR / "VENDORED.md").read_text()))


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_every_vendored_file_matches_its_recorded_sha256() -> None:
    files = recorded()
    assert set(files) == {"vendor/htmx.min.js", "vendor/uPlot.iife.min.js", "vendor/uPlot.min.css"}
    for name, digest in files.items():
        assert sha256(STATIC_DIR / name) == digest, name
    shipped = {f"vendor/{p.name}" for p in (STATIC_DIR / "vendor").iterdir()}
    assert shipped - set(files) == {"vendor/htmx.LICENSE", "vendor/uPlot.LICENSE"}


def test_the_accessibility_checker_matches_its_recorded_sha256() -> None:
    found = AXE.search((STATIC_DIR / "VENDORED.md").read_text())
    assert found is not None
    assert sha256(TESTS_VENDOR / "axe.min.js") == found.group(1)
    assert "Mozilla Public License" in (TESTS_VENDOR / "axe-core.LICENSE").read_text()


@pytest.mark.parametrize("name", ["htmx.min.js", "uPlot.iife.min.js", "uPlot.min.css"])
def test_static_files_are_served_without_a_session(
    dashboard_server: ServerProcess, name: str
) -> None:
    answer = httpx.get(f"{dashboard_server.url}/static/vendor/{name}")
    assert answer.status_code == 200
    assert hashlib.sha256(answer.content).hexdigest() == recorded()[f"vendor/{name}"]


def test_static_paths_cannot_leave_the_static_folder(dashboard_server: ServerProcess) -> None:
    for path in ("/static/../settings.py", "/static/%2e%2e/settings.py", "/static/..%2fapp.py"):
        answer = httpx.get(dashboard_server.url + path)
        assert answer.status_code == 404, path
        assert "BaseSettings" not in answer.text
