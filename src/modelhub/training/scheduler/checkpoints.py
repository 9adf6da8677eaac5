"""Checkpoints between a run's folder and the artifact store.

While a run trains, each checkpoint file the worker writes is copied into the
artifact store and recorded, and those the trainer pruned are forgotten. When an
attempt starts in a folder that lost them (another host), they come back.
"""

from __future__ import annotations

import json
from pathlib import Path

from modelhub.domain.runs import Checkpoint, Run
from modelhub.errors import NotFound
from modelhub.stores.artifacts.base import ArtifactStore
from modelhub.stores.metadata.base import MetadataStore
from modelhub.training.scheduler.moves import now


class CheckpointUpload:
    def __init__(self, metadata: MetadataStore, artifacts: ArtifactStore) -> None:
        self.metadata = metadata
        self.artifacts = artifacts

    def restore(self, run: Run, run_dir: Path) -> None:
        """Bring the run's stored checkpoints back when its folder lost them (another host)."""
        folder = run_dir / "checkpoints"
        if any(folder.glob("step-*.pt")):
            return
        stored = self.metadata.list_checkpoints(run.id)
        if not stored:
            return
        folder.mkdir(parents=True, exist_ok=True)
        for checkpoint in stored:
            name = "best.pt" if checkpoint.best else f"step-{checkpoint.step:09d}.pt"
            self.artifacts.materialize(checkpoint.digest, folder / name)

    @staticmethod
    def present(run_dir: Path) -> dict[str, float]:
        """The checkpoint files already in the folder and their mtimes: not new to an attempt."""
        return {p.name: p.stat().st_mtime for p in (run_dir / "checkpoints").glob("*.pt")}

    def collect(self, run_id: int, run_dir: Path, seen: dict[str, float]) -> None:
        """Upload the checkpoints written or rewritten since `seen` (updated in place)."""
        folder = run_dir / "checkpoints"
        if not folder.is_dir():
            return
        changed = False
        for path in sorted(folder.glob("*.pt")):
            best = path.name == "best.pt"
            try:
                mtime = path.stat().st_mtime
                if best:  # best.pt is written before best.json: wait for both
                    mtime = max(mtime, (run_dir / "best.json").stat().st_mtime)
            except FileNotFoundError:
                continue  # pruned by the trainer while we listed
            if seen.get(path.name) == mtime:
                continue
            try:
                step = _checkpoint_step(path, best)
                blob = self.artifacts.put_file(path)
            except (OSError, ValueError, NotFound):
                continue  # pruned or half-written: the next look sees the final file
            self.metadata.add_checkpoint(
                Checkpoint(
                    run_id=run_id,
                    step=step,
                    digest=blob.digest,
                    size=blob.size,
                    best=best,
                    metric=_best_metric(run_dir) if best else None,
                    created_at=now(),
                )
            )
            seen[path.name] = mtime  # only once recorded: a failed write is tried again
            changed = True
        if changed:
            self._forget_pruned(run_id, folder)

    def _forget_pruned(self, run_id: int, folder: Path) -> None:
        keep = {(step, False) for step in _local_steps(folder)}
        best_rows = [c for c in self.metadata.list_checkpoints(run_id) if c.best]
        if best_rows:
            keep.add((best_rows[-1].step, True))
        self.metadata.drop_checkpoints(run_id, keep)


def _local_steps(folder: Path) -> list[int]:
    return [int(p.stem.removeprefix("step-")) for p in folder.glob("step-*.pt")]


def _checkpoint_step(path: Path, best: bool) -> int:
    if not best:
        return int(path.stem.removeprefix("step-"))
    best_file = path.parent.parent / "best.json"
    return int(json.loads(best_file.read_text())["step"])


def _best_metric(run_dir: Path) -> float | None:
    try:
        return float(json.loads((run_dir / "best.json").read_text())["value"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
