"""What a trainer sees of the platform while it runs.

Trainers (built in, or a user's script) get hyperparameters and local dataset
files, report metrics and progress, save checkpoints, and stop when asked. They
never touch the database or the artifact store: the executor behind a context
does. `LocalContext` keeps everything in a run folder, which is all a trainer
test needs and what the executor builds on.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


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
    run_dir: Path
    hyperparameters: dict[str, Any] = field(default_factory=dict)
    datasets: dict[str, Path] = field(default_factory=dict)
    base_model: Path | None = None
    seed: int = 0
    validation_split: float = 0.2
    device: str = "cpu"
    keep_checkpoints: int = 3
    stop_requested: bool = False

    @classmethod
    def from_job(cls, job_file: Path) -> LocalContext:
        """The context an executor described in a job file (see `write_job`)."""
        job = json.loads(job_file.read_text())
        return cls(
            run_dir=Path(job["run_dir"]),
            hyperparameters=dict(job.get("hyperparameters", {})),
            datasets={name: Path(path) for name, path in job.get("datasets", {}).items()},
            base_model=Path(job["base_model"]) if job.get("base_model") else None,
            seed=int(job.get("seed", 0)),
            validation_split=float(job.get("validation_split", 0.2)),
            device=str(job.get("device", "cpu")),
            keep_checkpoints=int(job.get("keep_checkpoints", 3)),
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
        with open(self.metrics_file, "a") as out:
            out.write(json.dumps({"name": name, "value": value, "step": step, "at": time.time()}))
            out.write("\n")

    def metrics(self) -> list[dict[str, Any]]:
        if not self.metrics_file.exists():
            return []
        return [json.loads(line) for line in self.metrics_file.read_text().splitlines()]

    def progress(
        self,
        step: int,
        total_steps: int,
        epoch: int | None = None,
    ) -> None:
        (self.run_dir / "progress.json").write_text(
            json.dumps({"step": step, "total_steps": total_steps, "epoch": epoch})
        )

    def checkpoint(self, state: dict[str, Any], step: int) -> Path:
        """Save trainer state (tensors, numbers, nested dicts) at `step`; keep the newest K."""
        import torch

        path = self.checkpoint_dir / f"step-{step:09d}.pt"
        tmp = path.with_suffix(".tmp")
        torch.save({"step": step, "state": state}, tmp)
        tmp.replace(path)
        for old in sorted(self.checkpoint_dir.glob("step-*.pt"))[: -self.keep_checkpoints]:
            old.unlink()
        return path

    def latest_checkpoint(self) -> tuple[int, dict[str, Any]] | None:
        """(step, state) of the newest checkpoint, for resuming; loaded without pickle code."""
        import torch

        found = sorted(self.checkpoint_dir.glob("step-*.pt"))
        if not found:
            return None
        saved = torch.load(found[-1], map_location="cpu", weights_only=True)
        return int(saved["step"]), saved["state"]

    def should_stop(self) -> bool:
        return self.stop_requested or (self.run_dir / "STOP").exists()
