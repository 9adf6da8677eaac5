"""The script trainer runs a user's file in a child process that shares the run folder."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import torch
from safetensors.torch import load_file

import modelhub.training
from modelhub.errors import InvalidInput, ModelhubError, TrainingDiverged
from modelhub.training.context import LocalContext
from modelhub.training.trainers import script, trainer_module

# A user's script: linear regression on y = 3x + 1 that logs, checkpoints, resumes
# from the run's newest checkpoint and honours STOP.
LINEAR = """
import json
import re

import torch
from safetensors.torch import save_file


def train(ctx):
    torch.set_num_threads(1)
    steps = int(ctx.hp("steps", 30))
    stop_at = ctx.hp("stop_at", None)
    torch.manual_seed(ctx.seed)
    x = torch.linspace(-1, 1, 64).unsqueeze(1)
    y = 3 * x + 1
    model = torch.nn.Linear(1, 1)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.3, momentum=0.5)
    step = 0
    saved = ctx.latest_checkpoint()
    if saved is not None:
        step, state = saved
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        print(f"resuming at step {step}", flush=True)

    def save():
        ctx.checkpoint({"model": model.state_dict(), "optimizer": optimizer.state_dict()}, step)

    while step < steps:
        if ctx.should_stop():
            save()
            break
        loss = torch.nn.functional.mse_loss(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        step += 1
        ctx.log("loss", loss.item(), step)
        ctx.progress(step, steps)
        if step % 5 == 0 or step == steps:
            save()
        if step == stop_at:
            (ctx.run_dir / "STOP").touch()  # what `modelhub runs stop` does
    with torch.no_grad():
        final = torch.nn.functional.mse_loss(model(x), y).item()
    state = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
    save_file(state, str(ctx.output_dir / "model.safetensors"))
    (ctx.output_dir / "config.json").write_text(json.dumps({"kind": "linear", "inputs": 1}))
    print(f"trained {step} steps, loss {final:.6f}", flush=True)
    return {"loss": final, "steps": step}
"""


def script_run(
    tmp_path: Path,
    source: str,
    entrypoint: str = "train",
    run: str = "run",
    **context: Any,
) -> LocalContext:
    """A run folder whose job file names `source`, as the executor writes it."""
    path = tmp_path / run / "script" / f"{run}_train.py"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(source)
    ctx = LocalContext(tmp_path / run, **context)
    ctx.write_job(trainer="script", script={"path": str(path), "entrypoint": entrypoint})
    return ctx


def logged_steps(ctx: LocalContext, name: str) -> list[int]:
    return [m["step"] for m in ctx.metrics() if m["name"] == name]


def test_a_torch_script_trains_and_its_output_is_the_result(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    ctx = script_run(tmp_path, LINEAR, hyperparameters={"steps": 30}, keep_checkpoints=2)
    result = trainer_module("script").train(ctx)

    assert result.output_dir == ctx.output_dir
    assert result.metrics["steps"] == 30.0
    assert result.metrics["loss"] < 1e-3
    assert logged_steps(ctx, "loss") == list(range(1, 31))
    assert json.loads((ctx.run_dir / "progress.json").read_text())["step"] == 30
    assert sorted(p.name for p in ctx.checkpoint_dir.iterdir()) == [
        "step-000000025.pt",
        "step-000000030.pt",
    ]
    model = script.load(ctx.output_dir)
    assert model.config == {"kind": "linear", "inputs": 1}
    assert set(model.tensors) == {"weight", "bias"}
    assert model.tensors["weight"].item() == pytest.approx(3.0, abs=0.05)
    assert model.tensors["bias"].item() == pytest.approx(1.0, abs=0.05)
    assert "trained 30 steps" in capfd.readouterr().out  # the child writes to the run log


def test_a_stopped_script_resumes_to_the_same_weights_as_an_uninterrupted_run(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    ctx = script_run(tmp_path, LINEAR, hyperparameters={"steps": 30, "stop_at": 10})
    stopped = script.train(ctx)
    assert stopped.metrics["steps"] == 10.0
    assert logged_steps(ctx, "loss") == list(range(1, 11))

    (ctx.run_dir / "STOP").unlink()
    resumed = script.train(ctx)
    assert "resuming at step 10" in capfd.readouterr().out
    assert resumed.metrics["steps"] == 30.0
    assert logged_steps(ctx, "loss") == list(range(1, 31))

    whole = script_run(tmp_path, LINEAR, run="whole", hyperparameters={"steps": 30})
    script.train(whole)
    expected = load_file(str(whole.output_dir / "model.safetensors"))
    got = load_file(str(ctx.output_dir / "model.safetensors"))
    assert all(torch.equal(got[name], expected[name]) for name in expected)


def test_the_best_checkpoint_is_kept_for_a_script(tmp_path: Path) -> None:
    source = """
import torch
from safetensors.torch import save_file


def train(ctx):
    for step, score in enumerate(ctx.hp("scores", []), start=1):
        ctx.log("score", score, step)
        ctx.checkpoint({"w": torch.full((2,), float(step))}, step)
    step, state = ctx.best_checkpoint()
    save_file({"w": state["w"]}, str(ctx.output_dir / "model.safetensors"))
    return {"best_step": step, "score": ctx.best()["value"]}
"""
    ctx = script_run(
        tmp_path,
        source,
        hyperparameters={"scores": [3.0, 1.0, 2.0, 1.5]},
        keep_checkpoints=1,
        keep_best=("score", "min"),
    )
    result = script.train(ctx)
    assert result.metrics == {"best_step": 2.0, "score": 1.0}
    assert sorted(p.name for p in ctx.checkpoint_dir.iterdir()) == ["best.pt", "step-000000004.pt"]
    assert json.loads(ctx.best_file.read_text())["value"] == 1.0
    assert torch.equal(script.load(ctx.output_dir).tensors["w"], torch.full((2,), 2.0))


def test_returning_none_reports_the_last_logged_value_of_each_metric(tmp_path: Path) -> None:
    source = """
def train(ctx):
    for step in range(1, 4):
        ctx.log("loss", 1.0 / step, step)
    ctx.log("accuracy", 0.75, 3)
    (ctx.output_dir / "notes.txt").write_text("a model of sorts")
"""
    result = script.train(script_run(tmp_path, source))
    assert result.metrics == {"loss": pytest.approx(1 / 3), "accuracy": 0.75}


def test_a_script_imports_its_sibling_files(tmp_path: Path) -> None:
    (tmp_path / "run" / "script").mkdir(parents=True)
    (tmp_path / "run" / "script" / "features.py").write_text("COLUMNS = ['rooms', 'area']\n")
    source = """
import json

from features import COLUMNS


def train(ctx):
    (ctx.output_dir / "config.json").write_text(json.dumps({"features": COLUMNS}))
    return {"features": len(COLUMNS)}
"""
    ctx = script_run(tmp_path, source)
    assert script.train(ctx).metrics == {"features": 2.0}
    assert script.load(ctx.output_dir).config == {"features": ["rooms", "area"]}


@pytest.mark.parametrize(
    ("returned", "message"),
    [
        ("'done'", "must return a TrainResult, a dict of metrics or None, not a str"),
        ("{'loss': 'low'}", "metric 'loss' returned by the script is 'low', not a number"),
    ],
)
def test_a_script_must_return_numbers(tmp_path: Path, returned: str, message: str) -> None:
    source = f"""
def train(ctx):
    (ctx.output_dir / "weights.bin").write_bytes(b"0")
    return {returned}
"""
    with pytest.raises(InvalidInput, match=re.escape(message)):
        script.train(script_run(tmp_path, source))


def test_a_failing_script_raises_with_its_traceback_in_the_log(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    source = """
def helper(rows):
    raise ValueError(f"column 'price' is missing in {rows} rows")


def train(ctx):
    helper(12)
"""
    ctx = script_run(tmp_path, source)
    with pytest.raises(InvalidInput) as caught:
        script.train(ctx)
    message = "the training script failed: ValueError: column 'price' is missing in 12 rows"
    assert caught.value.message == message
    assert caught.value.details == {"exception": "ValueError"}
    err = capfd.readouterr().err
    assert "Traceback (most recent call last)" in err
    assert "in helper" in err and "ValueError: column 'price' is missing in 12 rows" in err


def test_a_modelhub_error_from_the_script_keeps_its_class_and_details(tmp_path: Path) -> None:
    source = """
from modelhub.errors import TrainingDiverged


def fit(ctx):
    raise TrainingDiverged("loss became nan at step 7", {"step": 7})
"""
    with pytest.raises(TrainingDiverged) as caught:
        script.train(script_run(tmp_path, source, entrypoint="fit"))
    assert caught.value.message == "loss became nan at step 7"
    assert caught.value.details == {"step": 7}


@pytest.mark.parametrize(
    ("source", "entrypoint", "message"),
    [
        ("def fit(ctx):\n    pass\n", "train", "run_train.py has no function 'train'"),
        ("train = 3\n", "train", "'train' in the training script run_train.py is a int"),
    ],
)
def test_a_missing_entrypoint_is_invalid_input(
    tmp_path: Path,
    capfd: pytest.CaptureFixture[str],
    source: str,
    entrypoint: str,
    message: str,
) -> None:
    with pytest.raises(InvalidInput, match=re.escape(message)) as caught:
        script.train(script_run(tmp_path, source, entrypoint=entrypoint))
    assert caught.value.details["entrypoint"] == entrypoint
    err = capfd.readouterr().err
    assert message.split(" ")[-1] in err and "Traceback" not in err


def test_a_missing_script_or_script_section_is_invalid_input(tmp_path: Path) -> None:
    ctx = LocalContext(tmp_path / "run")
    with pytest.raises(InvalidInput, match=r"job\.json does not exist"):
        script.train(ctx)
    ctx.write_job(trainer="script")
    with pytest.raises(InvalidInput, match=r"needs script\.path"):
        script.train(ctx)
    ctx.write_job(trainer="script", script={"path": str(tmp_path / "gone.py")})
    with pytest.raises(InvalidInput, match=r"gone\.py does not exist"):
        script.train(ctx)


def test_a_script_that_writes_nothing_is_refused(tmp_path: Path) -> None:
    ctx = script_run(tmp_path, "def train(ctx):\n    return {'loss': 0.5}\n")
    with pytest.raises(InvalidInput, match=r"the script wrote nothing to ctx\.output_dir"):
        script.train(ctx)


def test_a_child_that_dies_without_a_result_is_a_plain_modelhub_error(tmp_path: Path) -> None:
    ctx = script_run(tmp_path, "import os\n\ndef train(ctx):\n    os._exit(3)\n")
    with pytest.raises(ModelhubError, match="exited with status 3 without a result") as caught:
        script.train(ctx)
    assert type(caught.value) is ModelhubError


def test_context_outside_a_run_is_invalid_input(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MODELHUB_RUN_JOB", raising=False)
    with pytest.raises(InvalidInput, match="not inside a modelhub training run: MODELHUB_RUN_JOB"):
        modelhub.training.context()
    monkeypatch.setenv("MODELHUB_RUN_JOB", str(tmp_path / "job.json"))
    with pytest.raises(InvalidInput, match="not inside a modelhub training run: the job file"):
        modelhub.training.context()

    ctx = LocalContext(tmp_path / "run", hyperparameters={"steps": 4}, seed=3)
    monkeypatch.setenv("MODELHUB_RUN_JOB", str(ctx.write_job(trainer="script")))
    assert modelhub.training.context() == ctx


# A script that waits forever, and a worker process that runs it.
WAITS = """
import os
import signal
import time


def train(ctx):
    def on_terminate(signum, frame):
        (ctx.run_dir / "terminated").touch()
        os._exit(0)

    signal.signal(signal.SIGTERM, on_terminate)
    (ctx.run_dir / "child.pid").write_text(str(os.getpid()))
    while True:
        time.sleep(0.05)
"""
WORKER = (
    "import sys; from pathlib import Path;"
    "from modelhub.training.context import LocalContext;"
    "from modelhub.training.trainers import script;"
    "script.train(LocalContext.from_job(Path(sys.argv[1])))"
)


def start_worker(ctx: LocalContext) -> tuple[subprocess.Popen[bytes], int]:
    worker = subprocess.Popen([sys.executable, "-c", WORKER, str(ctx.job_file)])
    pid_file = ctx.run_dir / "child.pid"
    deadline = time.monotonic() + 30
    while not pid_file.exists() or not pid_file.read_text():
        assert worker.poll() is None, "the worker ended before its script started"
        assert time.monotonic() < deadline, "the script never started"
        time.sleep(0.05)
    return worker, int(pid_file.read_text())


def ended(pid: int, within: float = 15.0) -> bool:
    """Whether the process is gone (or a zombie nobody reaped yet) within the time."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (FileNotFoundError, ProcessLookupError):
            return True
        if state in ("Z", "X"):
            return True
        time.sleep(0.05)
    return False


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="uses /proc and prctl")
def test_terminating_the_worker_terminates_the_script(tmp_path: Path) -> None:
    ctx = script_run(tmp_path, WAITS)
    worker, child = start_worker(ctx)
    worker.send_signal(signal.SIGTERM)
    assert worker.wait(timeout=30) == -signal.SIGTERM  # then the worker's own handling
    assert ended(child)
    assert (ctx.run_dir / "terminated").exists()  # the script got SIGTERM, not SIGKILL


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="uses /proc and prctl")
def test_a_killed_worker_takes_the_script_with_it(tmp_path: Path) -> None:
    ctx = script_run(tmp_path, WAITS)
    worker, child = start_worker(ctx)
    worker.kill()
    worker.wait(timeout=30)
    assert ended(child)  # PR_SET_PDEATHSIG: the kernel sends SIGKILL
    assert not (ctx.run_dir / "terminated").exists()
