"""The CLI starts light: every `modelhub` command pays for what its module imports."""

from __future__ import annotations

import subprocess
import sys

HEAVY = ("numpy", "scipy", "pyarrow", "torch", "pydantic", "ddsketch", "fastapi", "sqlalchemy")


def test_the_cli_imports_no_heavy_library_before_a_command_runs() -> None:
    probe = (
        f"import sys, modelhub.cli.main\nprint(' '.join(m for m in {HEAVY!r} if m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    )
    assert result.stdout.split() == []
