"""The child process of the script trainer: `python -m modelhub.training.script_runner JOB`.

It confines itself first (`modelhub.training.sandbox`: what the script can reach
and as which user), then imports the user's script by path, calls its entrypoint
with the run's context and writes `result.json` in the run folder:
`{"metrics": {...}}` on success, or `{"error": {"code", "message", "details"}}`
when it fails. Tracebacks go to stderr, which the executor keeps in the run log.
The exit status is 0 only on success. See `modelhub.training.trainers.script` for the parent's side.

In a distributed run each rank's worker starts one of these children. After confining
itself, the child joins a process group of the children (on the rendezvous store its
worker joined, under keys of its own), so the script trains with DDP through the same
context and `TrainingLoop` as a built-in trainer; it leaves the group when the script
returns. The ranks reach each other over TCP on loopback, so a distributed script's
sandbox allows TCP (Landlock filters ports, not addresses, and the ranks' ports are
ephemeral); its files, user and the rest stay confined. Rank K > 0 writes its result
to `result.rank-K.json`.
"""

from __future__ import annotations

import contextlib
import ctypes
import importlib.util
import json
import numbers
import os
import signal
import sys
import traceback
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any, TypeVar, cast

from modelhub.errors import InvalidInput, ModelhubError
from modelhub.training.context import LocalContext, TrainResult, in_run_folder
from modelhub.training.distributed import Group, exit_now, join, leave
from modelhub.training.sandbox import Policy, confine, policy_for

T = TypeVar("T")
PR_SET_PDEATHSIG = 1
PR_SET_CHILD_SUBREAPER = 36
RESULT_FILE = "result.json"
SCRIPT_GROUP = "script/"  # the children's keys in the store, beside their workers' group


def result_name(rank: int) -> str:
    """The file a rank's child writes its result to (result.json for rank 0 or alone)."""
    return RESULT_FILE if rank == 0 else f"result.rank-{rank}.json"


def die_with_parent() -> None:
    """Ask Linux to SIGKILL this process when the parent that started it exits (best effort).

    The signal follows the parent *thread*, which is the one waiting for this
    process in the script trainer, so it outlives us unless the worker dies.
    """
    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):
        return


def import_script(path: Path) -> ModuleType:
    """Import the script at `path` as a module, running its top level."""
    spec = importlib.util.spec_from_file_location(f"modelhub_script_{path.stem}", path)
    if spec is None or spec.loader is None:
        raise InvalidInput(f"cannot import the training script {path}", {"script": str(path)})
    module = importlib.util.module_from_spec(spec)
    sys.path.insert(0, str(path.parent))  # the script may import its sibling files
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def entrypoint_of(module: ModuleType, path: Path, name: str) -> Callable[[LocalContext], object]:
    """The callable `name` of an imported script; InvalidInput naming what is wrong."""
    details = {"script": str(path), "entrypoint": name}
    if not hasattr(module, name):
        raise InvalidInput(f"the training script {path.name} has no function {name!r}", details)
    entrypoint = getattr(module, name)
    if not callable(entrypoint):
        raise InvalidInput(
            f"{name!r} in the training script {path.name} is a "
            f"{type(entrypoint).__name__}, not a function",
            details,
        )
    return cast(Callable[[LocalContext], object], entrypoint)


def metrics_from(returned: object, ctx: LocalContext) -> dict[str, float]:
    """Metrics from what the entrypoint returned: a TrainResult, a dict, or None (last logged)."""
    if isinstance(returned, TrainResult):
        if returned.output_dir.resolve() != ctx.output_dir.resolve():
            raise InvalidInput(
                f"the script returned output_dir {returned.output_dir}; "
                f"write the model into ctx.output_dir ({ctx.output_dir})"
            )
        returned = returned.metrics
    if returned is None:
        return {m["name"]: float(m["value"]) for m in ctx.metrics()}
    if not isinstance(returned, dict):
        raise InvalidInput(
            "the entrypoint must return a TrainResult, a dict of metrics or None, "
            f"not a {type(returned).__name__}"
        )
    metrics: dict[str, float] = {}
    for name, value in returned.items():
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise InvalidInput(
                f"metric {name!r} returned by the script is {value!r}, not a number",
                {"metric": str(name)},
            )
        metrics[str(name)] = float(value)
    return metrics


class _Failed(Exception):
    """A failure already reported on stderr; `error` goes into result.json."""

    def __init__(self, error: dict[str, Any]) -> None:
        super().__init__(error["message"])
        self.error = error


def _ours(step: Callable[[], T]) -> T:
    """Run one of the runner's own steps: its errors are one line, not a traceback."""
    try:
        return step()
    except ModelhubError as exc:
        print(f"modelhub: {exc.message}", file=sys.stderr)
        raise _Failed(exc.to_dict()) from exc


def _users(step: Callable[[], T]) -> T:
    """Run the user's code: any failure prints its traceback (the run log keeps it)."""
    try:
        return step()
    except SystemExit as exc:
        if exc.code in (0, None):
            return cast(T, None)
        traceback.print_exc()
        raise _Failed(_error_for(exc)) from exc
    except BaseException as exc:
        traceback.print_exc()
        raise _Failed(_error_for(exc)) from exc


def _error_for(exc: BaseException) -> dict[str, Any]:
    """A modelhub error keeps its code; any other exception becomes InvalidInput."""
    if isinstance(exc, ModelhubError):
        return exc.to_dict()
    summary = "".join(traceback.format_exception_only(exc)).strip().splitlines()[-1]
    return {
        "code": InvalidInput.code,
        "message": f"the training script failed: {summary}",
        "details": {"exception": type(exc).__name__},
    }


def run(job_file: Path) -> dict[str, float]:
    """Import the script named in the job file, call its entrypoint, return the metrics.

    Paths are taken relative to the job file's folder, the run folder (see
    `LocalContext.from_job`): a script that became another user reaches its run
    folder only through its working directory.
    Raises `_Failed` (already reported on stderr) when anything goes wrong.
    """
    import modelhub.training

    def script_of_job() -> tuple[Path, str]:
        job = json.loads(job_file.read_text())
        script = job.get("script") or {}
        if not script.get("path"):
            raise InvalidInput(f"the job file {job_file} names no script", {"job": str(job_file)})
        written = Path(script["path"])
        if written.is_absolute() and not written.is_relative_to(job["run_dir"]):
            raise InvalidInput(
                f"the training script {written} lies outside the run folder "
                f"{job['run_dir']}, where a script can read nothing",
                {"script": str(written)},
            )
        path = in_run_folder(str(written), Path(job["run_dir"]), job_file.parent)
        if not path.is_file():
            raise InvalidInput(f"the training script {path} does not exist", {"script": str(path)})
        return path, str(script.get("entrypoint") or "train")

    path, name = _ours(script_of_job)
    ctx = _ours(modelhub.training.context)
    try:
        module = _users(lambda: import_script(path))
        entrypoint = _ours(lambda: entrypoint_of(module, path, name))
        returned = _users(lambda: entrypoint(ctx))
        return _ours(lambda: metrics_from(returned, ctx))
    finally:
        ctx.close()  # every line the script logged on disk before its result is


def write_result(run_dir: Path, payload: dict[str, Any], rank: int = 0) -> None:
    path = run_dir / result_name(rank)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(payload))
    tmp.replace(path)


def main(argv: list[str]) -> int:
    die_with_parent()
    if len(argv) != 1:
        print("usage: python -m modelhub.training.script_runner JOB_FILE", file=sys.stderr)
        return 2
    job_file = Path(argv[0])
    job = json.loads(job_file.read_text())
    run_dir = job_file.parent  # as this process reaches it: its working directory
    section = job.get("distributed")
    adopt_orphans()
    group: Group | None = None
    try:
        policy = _policy(Path(job["run_dir"]), job.get("sandbox"), distributed=bool(section))
        for note in _ours(lambda: confine(policy)):
            print(note, file=sys.stderr, flush=True)
        if section:
            group = _ours(lambda: join(section, store_prefix=SCRIPT_GROUP))
        metrics = run(job_file)
    except _Failed as failed:
        code, payload = 1, {"error": failed.error}
    else:
        code, payload = 0, {"metrics": metrics}
    end_descendants()
    write_result(run_dir, payload, group.rank if group else 0)
    if group is not None:
        leave(group)
        exit_now(code)
    return code


def _policy(run_dir: Path, section: dict[str, Any] | None, distributed: bool) -> Policy:
    """The sandbox of the script: a distributed one may use TCP (see the module)."""
    policy = policy_for(run_dir, section)
    if distributed and not policy.network:
        print(
            "sandbox: TCP allowed: the ranks of a distributed run connect over loopback",
            file=sys.stderr,
        )
        policy.network = True
    return policy


def adopt_orphans() -> None:
    """Become the parent of every process the script starts, even one that detaches."""
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None, use_errno=True).prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)


def end_descendants() -> None:
    """SIGKILL what the script started and left running, so nothing of it outlives the run.

    Their own children come back to this process (`adopt_orphans`) and go next.
    """
    from modelhub.training.executor import child_pids

    while pids := child_pids(os.getpid()):
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        for pid in pids:
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, 0)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
