"""The training loop every built-in trainer shares; the trainer keeps its model, data and step.

`TrainingLoop` owns what the trainers used to write each their own way: resuming
from the run's newest checkpoint, logging windows (the loss summed on the device and
read once a window, so a step costs no host sync), the non-finite-loss check,
stop requests (looked at once a window), when to checkpoint, and, with keep_best,
putting the best checkpoint's state back at the end.

Data-parallel training (DistributedDataParallel, modelhub.training.distributed) plugs
in here, so a trainer needs only a few lines for it: when several ranks train,
`order` hands this rank its shard of each epoch (DistributedSampler's, equal shards, so
every rank takes the same steps; `shard_size` tells a trainer its steps per epoch),
`parallel` wraps the model in DDP, only the writer (rank 0) logs, reports progress and
checkpoints, a window's loss is the mean over the ranks (one all_reduce per window),
a stop request is agreed by every rank at a window's end, and resuming loads the
newest checkpoint on every rank. With one process all of this is what it was.

A profiling run (`ctx.profile_steps` set, see modelhub.training.phases) stops after
that many steps and times each phase: the trainer wraps its step's parts in
`phase(name)`, the loop times its checkpoints and logging, and `finish()` hands the
figures to the context. Otherwise `phase` is a shared no-op.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any

from modelhub.errors import InvalidInput, TrainingDiverged
from modelhub.training import distributed
from modelhub.training.context import LocalContext
from modelhub.training.distributed import shard_size as shard_size  # trainers' steps/epoch
from modelhub.training.phases import NO_PHASE, PhaseClock, cuda_sync
from modelhub.training.trainers._best import best_state

if TYPE_CHECKING:
    import torch

State = dict[str, Any]


class TrainingLoop:
    """One run's loop state: `step`, whether it `stopped`, and its open logging window.

    `save()` returns the trainer's state to checkpoint (model, optimizer ...) and
    `restore(state)` puts such a state back; both see the whole checkpoint, so a
    trainer may add its own positions (epoch, batch) through `checkpoint(**extra)`.
    """

    def __init__(
        self,
        ctx: LocalContext,
        *,
        total_steps: int,
        log_every: int,
        checkpoint_every: int | None,
        save: Callable[[], State],
        restore: Callable[[State], None],
        device: str = "cpu",
        writer: bool | None = None,
    ) -> None:
        self.ctx = ctx
        self.total_steps = total_steps
        self.log_every = log_every
        self.checkpoint_every = checkpoint_every
        self.save = save
        self.restore = restore
        self.device = device
        self.rank = distributed.rank()
        self.world_size = distributed.world_size()
        self.writer = self.rank == 0 if writer is None else writer
        self.step = 0
        self.resumed_step = 0
        self.stopped = False
        self.checkpointed_step: int | None = None
        self._window_loss: torch.Tensor | None = None
        self._window_steps = 0
        self._window_samples = 0
        self._window_start = time.perf_counter()
        self.budget = ctx.profile_steps
        self.clock = PhaseClock(cuda_sync(device)) if self.budget is not None else None

    def phase(self, name: str) -> AbstractContextManager[None]:
        """Time `name` (see modelhub.training.phases.PHASES) in a profiling run; else a no-op."""
        return NO_PHASE if self.clock is None else self.clock.phase(name)

    @property
    def budget_spent(self) -> bool:
        """Whether a profiling run has trained its budget of steps (since it started or resumed)."""
        return self.budget is not None and self.step - self.resumed_step >= self.budget

    def resume(self) -> State | None:
        """Restore the newest checkpoint, if any, and return it (for the trainer's positions).

        Every rank loads the same one: none goes on (and the writer checkpoints anew)
        before all have read it. Raises InvalidInput when the checkpoint does not fit
        the model.
        """
        saved = self.ctx.latest_checkpoint()
        distributed.barrier()
        if saved is None:
            return None
        step, state = saved
        try:
            self.restore(state)
        except (RuntimeError, ValueError, KeyError) as exc:
            raise InvalidInput(
                f"the run's checkpoint at step {step} does not fit this model: {exc}",
                {"step": step},
            ) from exc
        self.step = self.resumed_step = self.checkpointed_step = step
        return state

    def order(self, epoch: int, n: int, seed: int) -> torch.Tensor:
        """The batch order of `epoch` over `n` examples: the same for a given seed and epoch
        (a resumed run skips what it trained). With several ranks, this rank's shard:
        `shard_size(n)` indices, disjoint from the other ranks' but for the padding."""
        import torch

        if self.world_size > 1:
            return distributed.shard_order(n, seed, epoch)
        return torch.randperm(n, generator=torch.Generator().manual_seed(seed))

    def parallel(self, model: torch.nn.Module) -> torch.nn.Module:
        """`model` in DistributedDataParallel when several ranks train, else `model`.

        Train through what this returns; save and restore the model it was given (its
        state_dict has no `module.` prefix, so checkpoints fit either way).
        """
        return distributed.data_parallel(model)

    def should_stop(self) -> bool:
        """True, once, when a stop was asked for; looked at only between logging windows
        (with several ranks: agreed by all, so that every rank stops at the same step)."""
        if self.budget_spent:  # every rank takes the same steps: no need to agree
            self.stopped = True
            if self.clock is not None:
                self.clock.freeze()
        elif self._window_steps == 0 and self.ctx.should_stop():
            self.stopped = True
        return self.stopped

    def begin_window(self) -> None:
        """Start the samples/s clock afresh (after work that is not training, like validation)."""
        self._window_samples, self._window_start = 0, time.perf_counter()

    def add(self, loss: torch.Tensor, samples: int) -> None:
        """Count one optimizer step and its loss (kept on the device until the window ends)."""
        self.step += 1
        detached = loss.detach()
        self._window_loss = detached if self._window_loss is None else self._window_loss + detached
        self._window_steps += 1
        self._window_samples += samples
        if self.clock is not None:
            self.clock.count(samples * self.world_size)

    @property
    def window_full(self) -> bool:
        return self._window_steps >= self.log_every

    @property
    def window_steps(self) -> int:
        return self._window_steps

    def close_window(self) -> float:
        """The mean loss of the steps since the last window (over every rank's steps);
        TrainingDiverged when not finite."""
        if self._window_steps == 0 or self._window_loss is None:
            return math.nan
        mean = float(distributed.mean_across(self._window_loss)) / self._window_steps
        if not math.isfinite(mean):
            raise TrainingDiverged(
                f"loss became {mean} by step {self.step}; try a lower learning_rate",
                {"step": self.step, "first_step_of_window": self.step - self._window_steps + 1},
            )
        self._window_loss = None
        self._window_steps = 0
        return mean

    def log_window(self, learning_rate: float, epoch: int | None) -> float:
        """Close the window and log its loss, the learning rate, samples/s and progress."""
        with self.phase("logging"):
            return self._log_window(learning_rate, epoch)

    def _log_window(self, learning_rate: float, epoch: int | None) -> float:
        samples, started = self._window_samples, self._window_start
        mean = self.close_window()
        now = time.perf_counter()
        self._log("loss", mean)
        self._log("learning_rate", learning_rate)
        # every rank trains on as many samples as this one
        self._log("samples_per_s", samples * self.world_size / max(now - started, 1e-9))
        if self.writer:
            self.ctx.progress(self.step, self.total_steps, epoch)
        self._window_samples, self._window_start = 0, time.perf_counter()
        return mean

    def log(self, name: str, value: float) -> None:
        """A metric at the current step (only the writer logs)."""
        with self.phase("logging"):
            self._log(name, value)

    def _log(self, name: str, value: float) -> None:
        if self.writer:
            self.ctx.log(name, value, self.step)

    @property
    def checkpoint_due(self) -> bool:
        return bool(self.checkpoint_every) and self.step % (self.checkpoint_every or 1) == 0

    def checkpoint(self, **extra: Any) -> None:
        """Save the trainer's state at the current step (only the writer writes).

        Raises TrainingDiverged rather than save a state whose loss is not finite.
        """
        with self.phase("checkpoint"):
            self._check_finite()
            if self.writer:
                self.ctx.checkpoint({**self.save(), **extra}, self.step)
        self.checkpointed_step = self.step

    def _check_finite(self) -> None:
        if self._window_loss is None:
            return
        if not math.isfinite(float(distributed.mean_across(self._window_loss))):
            self.close_window()  # raises, naming the step

    @property
    def trained(self) -> bool:
        return self.step > self.resumed_step

    def checkpoint_final(self) -> None:
        """Checkpoint the last state when a stop ended training, or with keep_best (so the
        final state competes for best), unless it was just checkpointed."""
        if not self.trained or self.checkpointed_step == self.step:
            return
        if self.stopped or self.ctx.keep_best is not None:
            self.checkpoint()

    def finish(self) -> int | None:
        """End the loop: write out what was logged, and with keep_best put the best
        checkpoint's state back; the best step, else None.

        The final state must be checkpointed before (so that it competes). The state is
        left as it is when the final state is the best.
        """
        if self.clock is not None:
            self.ctx.profile = self.clock.figures()
        if self.writer:
            self.ctx.flush_metrics()
        best = best_state(self.ctx, self.step)
        if best is None:
            return None
        best_step, state = best
        if state is not None:
            self.restore(state)
        return best_step
