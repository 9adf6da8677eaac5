"""The script trainer: a user's own training code, run in a child process.

The run's job file (`ctx.job_file`) names the script:
`"script": {"path": "/abs/train.py", "entrypoint": "train"}`. The child,
`python -m modelhub.training.script_runner JOB`, imports the file, calls the
entrypoint with the run's context and writes `result.json`; see
`modelhub.training.script_runner`. The child shares the run folder, so it logs,
checkpoints and sees STOP exactly as a built-in trainer does, and its stdout and
stderr are the worker's (the run log).

Errors, as raised here:
- the job names no script, or the file is missing: InvalidInput;
- the script has no such entrypoint, or it is not callable: InvalidInput;
- the script raises a modelhub error (InvalidInput, TrainingDiverged ...): the same
  class, code, message and details;
- the script raises anything else: InvalidInput "the training script failed:
  <last line of the exception>" (a bug in the script; retrying will not help), with
  the traceback in the run log;
- the child dies without a result (killed, out of memory, os._exit): ModelhubError
  with its exit status, which an executor may retry;
- the script succeeds but wrote nothing into `ctx.output_dir`: InvalidInput.

Distributed (a job with `distributed`): each rank's worker runs its own child, which
joins a process group of the children on the same rendezvous before the script starts
(see `script_runner`), so the script sees `ctx.rank` and `ctx.world_size`, can use
`TrainingLoop` (`order`, `parallel` ...) as a built-in trainer does, and only rank 0
logs, checkpoints and must write `ctx.output_dir`. Each rank's child writes its
result to a file of its own (`script_runner.result_name`).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any

import modelhub
from modelhub.domain.trainer_catalog import BUILTIN_TRAINERS
from modelhub.errors import InvalidInput, ModelhubError, error_from_dict
from modelhub.training import distributed
from modelhub.training.context import LocalContext, TrainResult
from modelhub.training.script_runner import result_name

if TYPE_CHECKING:
    import torch

# The trainer interface's declarations (docs/plugins.md): this trainer's row of the
# domain's table, which checks specs without importing this module.
_TRAITS = BUILTIN_TRAINERS.traits["script"]
pipeline_types = _TRAITS.pipeline_types
result_type = _TRAITS.result_type
hyperparameter_model = _TRAITS.hyperparameters
base_trainer = _TRAITS.base_trainer
data_parallel = _TRAITS.data_parallel

POLL_SECONDS = 0.2
CHILD_RUN_FOLDER = Path("/proc/self/cwd")
# What of the worker's environment a script sees: devices and thread counts it set.
CHILD_VARIABLES = (
    "CUDA_VISIBLE_DEVICES",
    "OMP_NUM_THREADS",
    "MKL_NUM_THREADS",
    "LANG",
    "LC_ALL",
    "TZ",
)
TERMINATE_GRACE_SECONDS = 10.0


def script_of(ctx: LocalContext) -> tuple[Path, str]:
    """(absolute script path, entrypoint) from the run's job file; InvalidInput if unusable."""
    if not ctx.job_file.is_file():
        raise InvalidInput(
            f"the script trainer reads the run's job file, and {ctx.job_file} does not exist",
            {"job": str(ctx.job_file)},
        )
    script = json.loads(ctx.job_file.read_text()).get("script")
    if not isinstance(script, dict) or not script.get("path"):
        raise InvalidInput(
            "the script trainer needs script.path in the run's job file",
            {"job": str(ctx.job_file)},
        )
    path = Path(script["path"])
    if not path.is_absolute():
        path = ctx.run_dir / path
    if not path.is_file():
        raise InvalidInput(f"the training script {path} does not exist", {"script": str(path)})
    return path, str(script.get("entrypoint") or "train")


def train(ctx: LocalContext) -> TrainResult:
    """Run the script named in the job file to completion; see the module for the errors."""
    script, _ = script_of(ctx)
    result_file = ctx.run_dir / result_name(ctx.rank)
    result_file.unlink(missing_ok=True)
    sys.stdout.flush()  # keep the run log in order: ours, then the child's
    sys.stderr.flush()
    child = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "modelhub.training.script_runner",
            str(_child_run_folder(ctx) / ctx.job_file.name),
        ],
        cwd=ctx.run_dir,
        env=_child_environment(ctx),
    )
    returncode = _wait(child)
    result = json.loads(result_file.read_text()) if result_file.exists() else {}
    if "error" in result:
        raise error_from_dict(result["error"])
    if returncode != 0 or "metrics" not in result:
        raise ModelhubError(
            f"the training script {script.name} exited with status {returncode} "
            "without a result; its output is in the run log",
            {"script": str(script), "exit_status": returncode},
        )
    if ctx.writer and not any(ctx.output_dir.iterdir()):
        raise InvalidInput(
            "the script wrote nothing to ctx.output_dir: save the model there "
            "(for example model.safetensors and config.json)",
            {"script": str(script), "output_dir": str(ctx.output_dir)},
        )
    metrics = {str(k): float(v) for k, v in result["metrics"].items()}
    return TrainResult(metrics=metrics, output_dir=ctx.output_dir)


def _child_run_folder(ctx: LocalContext) -> Path:
    """The run folder as the child names it: through its working directory on Linux.

    A script that runs as another user cannot walk down to its run folder from /
    (the home above it is closed to it); /proc/self/cwd takes it there directly,
    and `LocalContext.from_job` makes every path of the run folder start there too.
    """
    return CHILD_RUN_FOLDER if sys.platform.startswith("linux") else ctx.run_dir


def _child_environment(ctx: LocalContext) -> dict[str, str]:
    """The child's whole environment: the run's own variables, never the server's.

    No MODELHUB_* setting, database URL or token reaches a script: only a PATH, the
    job file, a home and temporary folder inside the run folder, the devices and
    thread counts the worker chose, and a PYTHONPATH that finds this modelhub even
    when it comes from a source tree named by a relative path (the child runs in
    the run folder), added after the inherited entries. In a distributed run, also
    what the child needs to join its rank's rendezvous.
    """
    source_root = str(Path(modelhub.__file__).resolve().parent.parent)
    inherited = os.environ.get("PYTHONPATH")
    python_path = f"{inherited}{os.pathsep}{source_root}" if inherited else source_root
    (ctx.run_dir / "tmp").mkdir(exist_ok=True)
    folder = _child_run_folder(ctx)
    passed = {name: os.environ[name] for name in CHILD_VARIABLES if name in os.environ}
    return (
        passed
        | distributed.child_environment()
        | {
            "PATH": os.pathsep.join(
                [str(Path(sys.executable).parent), "/usr/local/bin", "/usr/bin", "/bin"]
            ),
            "HOME": str(folder),
            "TMPDIR": str(folder / "tmp"),
            "MODELHUB_RUN_JOB": str(folder / ctx.job_file.name),
            "PYTHONPATH": python_path,
        }
    )


def _wait(child: subprocess.Popen[bytes]) -> int:
    """Wait for the child; if this process is told to terminate, end the child first.

    A SIGTERM to the worker ends the child (SIGTERM, then SIGKILL after a grace
    period) and is then handled as it would have been without us; Python lets only
    the main thread handle signals, so elsewhere PR_SET_PDEATHSIG is what remains.
    Any exception while waiting (KeyboardInterrupt ...) ends the child too.
    """
    handling = (
        threading.current_thread() is threading.main_thread()
        and signal.getsignal(signal.SIGTERM) != signal.SIG_IGN
    )
    previous: Any = None
    if handling:

        def on_terminate(signum: int, frame: FrameType | None) -> None:
            _end(child)
            signal.signal(signal.SIGTERM, previous)
            if callable(previous):
                previous(signum, frame)
            else:
                signal.raise_signal(signal.SIGTERM)

        previous = signal.signal(signal.SIGTERM, on_terminate)
        if previous is None:  # installed outside Python: treat as the default
            previous = signal.SIG_DFL
    try:
        while child.poll() is None:
            time.sleep(POLL_SECONDS)
        return child.returncode
    finally:
        _end(child)
        if handling and signal.getsignal(signal.SIGTERM) is not previous:
            signal.signal(signal.SIGTERM, previous)


def _end(child: subprocess.Popen[bytes]) -> None:
    if child.poll() is not None:
        return
    child.terminate()
    try:
        child.wait(TERMINATE_GRACE_SECONDS)
    except subprocess.TimeoutExpired:
        child.kill()
        child.wait()


@dataclass
class ScriptModel:
    """What a script wrote: its config.json and the tensors of model.safetensors.

    A script's model class lives in the user's code, so this is data, not a
    predictor: serving script models comes with their runtime.
    """

    folder: Path
    config: dict[str, Any]
    tensors: dict[str, torch.Tensor]


def load(folder: Path) -> ScriptModel:
    """Read a script's output folder; InvalidInput when it holds neither file."""
    from safetensors.torch import load_file

    config_file, weights = folder / "config.json", folder / "model.safetensors"
    if not config_file.exists() and not weights.exists():
        raise InvalidInput(
            f"{folder} holds neither config.json nor model.safetensors", {"path": str(folder)}
        )
    config = json.loads(config_file.read_text()) if config_file.exists() else {}
    if not isinstance(config, dict):
        raise InvalidInput(f"{config_file} is not a JSON object", {"path": str(config_file)})
    tensors = load_file(str(weights)) if weights.exists() else {}
    return ScriptModel(folder=folder, config=config, tensors=tensors)
