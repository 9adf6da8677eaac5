"""The metrics file is written in batches, and no line a trainer logged is lost at a
checkpoint or at exit: real child processes log, then are killed or exit."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

from modelhub.training.context import LocalContext
from modelhub.training.metrics_writer import MetricsWriter

# Logs 100 lines, checkpoints, logs 5 more, then ends as argv[2] says: "wait" (to be
# killed), "exit" (returns without closing anything) or "raise" (an uncaught error).
CHILD = """
import sys
from pathlib import Path
from modelhub.training.context import LocalContext

ctx = LocalContext(Path(sys.argv[1]), metrics_flush_seconds=3600)
for step in range(1, 101):
    ctx.log("loss", 1.0 / step, step)
ctx.checkpoint({"step": 100}, 100)
for step in range(101, 106):
    ctx.log("loss", 0.0, step)
print("checkpointed", flush=True)
if sys.argv[2] == "wait":
    sys.stdin.readline()
elif sys.argv[2] == "raise":
    raise RuntimeError("the script failed after logging")
"""


def run_child(run_dir: Path, ending: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", CHILD, str(run_dir), ending],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def logged_steps(run_dir: Path) -> list[int]:
    lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    return [json.loads(line)["step"] for line in lines]


def test_a_worker_killed_after_a_checkpoint_keeps_every_line_logged_before_it(
    tmp_path: Path,
) -> None:
    child = run_child(tmp_path / "run", "wait")
    try:
        assert child.stdout is not None
        assert child.stdout.readline() == "checkpointed\n", child.stderr
        child.send_signal(signal.SIGKILL)
    finally:
        child.kill()
        child.communicate(timeout=60)
    assert child.returncode == -signal.SIGKILL
    # The checkpoint flushed steps 1-100; the 5 lines after it were still queued.
    assert logged_steps(tmp_path / "run") == list(range(1, 101))


def test_a_normal_exit_or_an_uncaught_error_loses_no_line(tmp_path: Path) -> None:
    for ending, code in (("exit", 0), ("raise", 1)):
        child = run_child(tmp_path / ending, ending)
        _, stderr = child.communicate(timeout=120)
        assert child.returncode == code, stderr
        assert logged_steps(tmp_path / ending) == list(range(1, 106))


def test_lines_reach_the_file_when_the_interval_has_passed(tmp_path: Path) -> None:
    now = [0.0]
    path = tmp_path / "metrics.jsonl"
    writer = MetricsWriter(path, interval=1.0, clock=lambda: now[0])
    writer.write('{"step": 1}')
    writer.write('{"step": 2}')
    assert not path.exists()
    now[0] = 1.0
    writer.write('{"step": 3}')
    assert path.read_text().splitlines() == ['{"step": 1}', '{"step": 2}', '{"step": 3}']
    writer.write('{"step": 4}')
    assert len(path.read_text().splitlines()) == 3
    writer.close()
    assert len(path.read_text().splitlines()) == 4
    writer.write('{"step": 5}')  # written to after close: opened again, flushed at close
    writer.close()
    assert path.read_text().splitlines()[-1] == '{"step": 5}'


def test_progress_is_written_at_once_then_at_most_once_an_interval(tmp_path: Path) -> None:
    ctx = LocalContext(tmp_path / "run", metrics_flush_seconds=3600)
    progress = ctx.run_dir / "progress.json"
    ctx.progress(1, 10, 0)
    assert json.loads(progress.read_text())["step"] == 1  # the first report is not held back
    ctx.progress(2, 10, 0)
    ctx.progress(3, 10, 0)
    assert json.loads(progress.read_text())["step"] == 1
    ctx.flush_metrics()
    assert json.loads(progress.read_text()) == {"step": 3, "total_steps": 10, "epoch": 0}
    ctx.progress(4, 10, 1)
    ctx.close()
    assert json.loads(progress.read_text())["step"] == 4
