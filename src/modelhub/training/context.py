"""What a trainer sees of the platform while it runs.

Trainers (built in, or a user's script) get hyperparameters and local dataset
files, report metrics and progress, save checkpoints, and stop when asked. They
never touch the database or the artifact store: the executor behind a context
does. `LocalContext` keeps everything in a run folder, which is all a trainer
test needs and what the executor builds on.

In a distributed run (modelhub.training.distributed) every rank has a context over the
same run folder; rank 0 speaks for the group: on the other ranks `log`, `progress` and
`checkpoint` write nothing, and `should_stop` is agreed by every rank.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from modelhub.training.metrics_writer import FLUSH_SECONDS, MetricsWriter


@dataclass
class TrainResult:
    """What a finished trainer hands back: final metrics and the folder it wrote.

    The folder holds `model.safetensors` and `config.json` (enough to load the
    model again for serving) and anything else the trainer wants kept.
    """

    metrics: dict[str, float]
    output_dir: Path


@dataclass
class LocalContext:
    """A run folder and what the trainer may know: hyperparameters, dataset files, seed ...

    `keep_checkpoints` is how many `step-*.pt` files stay; `keep_best` is
    (metric, "min" | "max"): also keep the checkpoint whose logged metric is best
    (see `checkpoint`). Log metrics and save checkpoints through one context: the
    best is judged from the values this context logged. `profile_steps` makes the run
    a profiling run: it stops after that many steps and times its phases.
    """

    run_dir: Path
    hyperparameters: dict[str, Any] = field(default_factory=dict)
    datasets: dict[str, Path] = field(default_factory=dict)
    base_model: Path | None = None
    seed: int = 0
    validation_split: float = 0.2
    device: str = "cpu"
    keep_checkpoints: int = 3
    keep_best: tuple[str, str] | None = None
    stop_requested: bool = False
    metrics_flush_seconds: float = FLUSH_SECONDS
    profile_steps: int | None = None
    # A profiling run's phase figures (modelhub.training.phases), set when its loop ends.
    profile: dict[str, float] = field(default_factory=dict, compare=False)
    _last_logged: dict[str, tuple[int, float]] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )
    _best: dict[str, Any] | None = field(default=None, init=False, repr=False, compare=False)
    _metrics_writer: MetricsWriter | None = field(
        default=None, init=False, repr=False, compare=False
    )
    _progress: dict[str, Any] | None = field(default=None, init=False, repr=False, compare=False)
    _progress_written_at: float = field(default=-math.inf, init=False, repr=False, compare=False)

    @classmethod
    def from_job(cls, job_file: Path) -> LocalContext:
        """The context an executor described in a job file (see `write_job`).

        The job file lies in the run folder, and paths in that folder are taken
        relative to where the job file is: a script, which reaches its run folder
        through its working directory and `job.json`, gets paths relative to it.
        """
        job = json.loads(job_file.read_text())
        best = job.get("keep_best")
        written_in = Path(job["run_dir"])
        base = in_run_folder(job["base_model"], written_in, job_file.parent)
        return cls(
            run_dir=job_file.parent,
            hyperparameters=dict(job.get("hyperparameters", {})),
            datasets={
                name: in_run_folder(path, written_in, job_file.parent)
                for name, path in job.get("datasets", {}).items()
            },
            base_model=base if job.get("base_model") else None,
            seed=int(job.get("seed", 0)),
            validation_split=float(job.get("validation_split", 0.2)),
            device=str(job.get("device", "cpu")),
            keep_checkpoints=int(job.get("keep_checkpoints", 3)),
            keep_best=(str(best["metric"]), str(best.get("mode", "min"))) if best else None,
            profile_steps=int(job["profile_steps"]) if job.get("profile_steps") else None,
        )

    def job(self) -> dict[str, Any]:
        """This context as JSON data, for a worker process to rebuild with `from_job`."""
        return {
            "run_dir": str(self.run_dir),
            "hyperparameters": self.hyperparameters,
            "datasets": {name: str(path) for name, path in self.datasets.items()},
            "base_model": str(self.base_model) if self.base_model else None,
            "seed": self.seed,
            "validation_split": self.validation_split,
            "device": self.device,
            "keep_checkpoints": self.keep_checkpoints,
            "keep_best": (
                {"metric": self.keep_best[0], "mode": self.keep_best[1]} if self.keep_best else None
            ),
            "profile_steps": self.profile_steps,
        }

    @property
    def job_file(self) -> Path:
        return self.run_dir / "job.json"

    def write_job(self, **extra: Any) -> Path:
        """Write `job.json` in the run folder: the context plus executor fields (trainer ...)."""
        tmp = self.job_file.with_suffix(".tmp")
        tmp.write_text(json.dumps({**self.job(), **extra}, indent=2))
        tmp.replace(self.job_file)
        return self.job_file

    def __post_init__(self) -> None:
        if self.keep_best is not None and self.keep_best[1] not in ("min", "max"):
            from modelhub.errors import InvalidInput

            raise InvalidInput(
                f"keep_best mode must be min or max, not {self.keep_best[1]!r}",
                {"field": "keep_best.mode"},
            )
        self.output_dir.mkdir(parents=True, exist_ok=True)
        self.checkpoint_dir.mkdir(parents=True, exist_ok=True)

    @property
    def output_dir(self) -> Path:
        return self.run_dir / "output"

    @property
    def checkpoint_dir(self) -> Path:
        return self.run_dir / "checkpoints"

    @property
    def metrics_file(self) -> Path:
        return self.run_dir / "metrics.jsonl"

    @property
    def best_file(self) -> Path:
        """`{"metric", "mode", "value", "step"}` of the best checkpoint so far."""
        return self.run_dir / "best.json"

    @property
    def best_checkpoint_file(self) -> Path:
        return self.checkpoint_dir / "best.pt"

    @property
    def rank(self) -> int:
        """This process's rank in a distributed run (0 when it trains alone)."""
        from modelhub.training import distributed

        return distributed.rank()

    @property
    def world_size(self) -> int:
        """How many ranks train this run together (1 when it trains alone)."""
        from modelhub.training import distributed

        return distributed.world_size()

    @property
    def writer(self) -> bool:
        """Whether this process writes the run's metrics, progress, checkpoints and output:
        rank 0 of a distributed run, or the one process of any other."""
        return self.rank == 0

    def hp(self, name: str, default: Any) -> Any:
        """A hyperparameter, or its default when the spec leaves it out."""
        return self.hyperparameters.get(name, default)

    def dataset(self, name: str | None = None) -> Path:
        """The local file of a named dataset, or of the only one."""
        if name is None:
            if len(self.datasets) != 1:
                from modelhub.errors import InvalidInput

                raise InvalidInput(
                    f"this trainer reads one dataset, the pipeline names {len(self.datasets)}"
                )
            return next(iter(self.datasets.values()))
        return self.datasets[name]

    def log(self, name: str, value: float, step: int) -> None:
        """Append a metric line to metrics.jsonl; lines reach the file in batches (see
        `flush_metrics`), at the latest `metrics_flush_seconds` after the next one.
        Only the writer (rank 0) logs; elsewhere this does nothing."""
        if not self.writer:
            return
        if self._metrics_writer is None:
            self._metrics_writer = MetricsWriter(self.metrics_file, self.metrics_flush_seconds)
        line = {"name": name, "value": value, "step": step, "at": time.time()}
        self._metrics_writer.write(json.dumps(line))
        self._last_logged[name] = (step, float(value))

    def flush_metrics(self) -> None:
        """Write every metric logged so far into metrics.jsonl, and the newest progress into
        progress.json (a checkpoint does this too)."""
        if self._metrics_writer is not None:
            self._metrics_writer.flush()
        self._write_progress()

    def close(self) -> None:
        """Flush the metrics and progress and close the metrics file; the process's exit
        closes the metrics file too."""
        if self._metrics_writer is not None:
            self._metrics_writer.close()
        self._write_progress()

    def metrics(self) -> list[dict[str, Any]]:
        self.flush_metrics()
        if not self.metrics_file.exists():
            return []
        return [json.loads(line) for line in self.metrics_file.read_text().splitlines()]

    def progress(
        self,
        step: int,
        total_steps: int,
        epoch: int | None = None,
    ) -> None:
        """Report how far the run is; progress.json is rewritten at most every
        `metrics_flush_seconds` (a file write per step costs more than a small step).
        Only the writer (rank 0) reports; elsewhere this does nothing."""
        if not self.writer:
            return
        self._progress = {"step": step, "total_steps": total_steps, "epoch": epoch}
        if time.monotonic() - self._progress_written_at >= self.metrics_flush_seconds:
            self._write_progress()

    def _write_progress(self) -> None:
        if self._progress is None:
            return
        (self.run_dir / "progress.json").write_text(json.dumps(self._progress))
        self._progress = None
        self._progress_written_at = time.monotonic()

    def checkpoint(self, state: dict[str, Any], step: int) -> Path:
        """Save trainer state (tensors, numbers, nested dicts) at `step`; keep the newest K.

        With `keep_best` set, the state is also saved as `checkpoints/best.pt` when the
        metric's value logged last at or before `step` (through this context) beats the
        best so far; `best.json` records that value, so a resumed run keeps comparing
        against it. best.pt is not one of the K and is never pruned.

        Only the writer (rank 0) saves; elsewhere this returns the path it would write.
        """
        path = self.checkpoint_dir / f"step-{step:09d}.pt"
        if not self.writer:
            return path
        self.flush_metrics()  # the lines up to `step` are on disk before its checkpoint is
        _save_atomically({"step": step, "state": state}, path)
        for old in sorted(self.checkpoint_dir.glob("step-*.pt"))[: -self.keep_checkpoints]:
            old.unlink()
        if self.keep_best is not None:
            self._keep_if_best(state, step, *self.keep_best)
        return path

    def _keep_if_best(self, state: dict[str, Any], step: int, metric: str, mode: str) -> None:
        value = self._new_best(step, metric, mode)
        if value is None:
            return
        # best.pt first: a crash in between leaves best.json at an older, worse value.
        _save_atomically({"step": step, "state": state}, self.best_checkpoint_file)
        self._best = {"metric": metric, "mode": mode, "value": value, "step": step}
        tmp = self.best_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(self._best))
        tmp.replace(self.best_file)

    def _new_best(self, step: int, metric: str, mode: str) -> float | None:
        """The metric's value when a checkpoint at `step` beats the best so far, else None."""
        logged = self._last_logged.get(metric)
        if logged is None or logged[0] > step or not math.isfinite(logged[1]):
            return None
        best = self.best()
        if best is not None and (best.get("metric"), best.get("mode")) == (metric, mode):
            previous = float(best["value"])
            better = logged[1] < previous if mode == "min" else logged[1] > previous
            if not better:
                return None
        return logged[1]

    def best(self) -> dict[str, Any] | None:
        """What best.json says: the metric, mode, best value and its step; None before one."""
        if self._best is None and self.best_file.exists():
            self._best = json.loads(self.best_file.read_text())
        return self._best

    def best_checkpoint(self) -> tuple[int, dict[str, Any]] | None:
        """(step, state) of checkpoints/best.pt (see `keep_best`); loaded without pickle code."""
        import torch

        if not self.best_checkpoint_file.exists():
            return None
        saved = torch.load(self.best_checkpoint_file, map_location="cpu", weights_only=True)
        return int(saved["step"]), saved["state"]

    def latest_checkpoint(self) -> tuple[int, dict[str, Any]] | None:
        """(step, state) of the newest checkpoint, for resuming; loaded without pickle code."""
        import torch

        found = sorted(self.checkpoint_dir.glob("step-*.pt"))
        if not found:
            return None
        saved = torch.load(found[-1], map_location="cpu", weights_only=True)
        return int(saved["step"]), saved["state"]

    def should_stop(self) -> bool:
        """Whether the run was asked to stop. In a distributed run every rank gets the same
        answer (a collective: ask at the same points on every rank)."""
        from modelhub.training import distributed

        return distributed.any_rank(self.stop_requested or (self.run_dir / "STOP").exists())


def in_run_folder(path: str | None, written_in: Path, run_dir: Path) -> Path:
    """`path` from a job written for the run folder `written_in`, reached now as `run_dir`."""
    found = Path(path or "")
    if found.is_absolute() and found.is_relative_to(written_in):
        return run_dir / found.relative_to(written_in)
    return found


def _save_atomically(payload: dict[str, Any], path: Path) -> None:
    import torch

    tmp = path.with_suffix(".tmp")
    torch.save(payload, tmp)
    tmp.replace(path)
