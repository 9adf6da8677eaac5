"""Measuring what an attempt used: the worker tree sampled with psutil, and the figure
the worker writes at exit."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from modelhub.training.usage import read_usage, tree_cpu_seconds, write_usage

# A parent that starts a child; both burn CPU, then wait to be stopped.
BURN = """
import subprocess, sys, time
def burn(seconds):
    end = time.process_time() + seconds
    while time.process_time() < end:
        pass
if sys.argv[1:] == ["child"]:
    burn(0.3)
    time.sleep(60)
else:
    child = subprocess.Popen([sys.executable, __file__, "child"])
    burn(0.3)
    time.sleep(60)
"""


def test_the_tree_counts_the_worker_and_its_children(tmp_path: Path) -> None:
    script = tmp_path / "burn.py"
    script.write_text(BURN)
    process = subprocess.Popen([sys.executable, str(script)], start_new_session=True)
    try:
        deadline = time.monotonic() + 30
        measured = 0.0
        while measured < 0.55:
            assert time.monotonic() < deadline, f"only {measured} CPU-seconds seen"
            time.sleep(0.05)
            measured = tree_cpu_seconds(process.pid)
        # Both burned 0.3 s: one process alone could not have shown 0.55 s.
        assert measured < 5
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    assert tree_cpu_seconds(process.pid) == 0.0  # gone


def test_the_workers_own_figure_round_trips(tmp_path: Path) -> None:
    assert read_usage(tmp_path) is None
    write_usage(tmp_path, 12.5, 30.0)
    assert read_usage(tmp_path) == pytest.approx(12.5)
    (tmp_path / "usage.json").write_text("{not json")
    assert read_usage(tmp_path) is None
