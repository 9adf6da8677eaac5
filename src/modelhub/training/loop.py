"""The training loop every built-in trainer shares; the trainer keeps its model, data and step.

`TrainingLoop` owns what the trainers used to write each their own way: resuming
from the run's newest checkpoint, logging windows (the loss summed on the device and
read once a window, so a step costs no host sync), the non-finite-loss check,
stop requests (looked at once a window), when to checkpoint, and, with keep_best,
putting the best checkpoint's state back at the end.

Made for DistributedDataParallel later: the batch order comes from one hook
(`order`), which a distributed loop overrides to hand each rank its share, and only
the writer (rank 0) logs and checkpoints. Nothing distributed is built yet.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from modelhub.errors import InvalidInput, TrainingDiverged
from modelhub.training.context import LocalContext
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
        writer: bool = True,
    ) -> None:
        self.ctx = ctx
        self.total_steps = total_steps
        self.log_every = log_every
        self.checkpoint_every = checkpoint_every
        self.save = save
        self.restore = restore
        self.device = device
        self.writer = writer
        self.step = 0
        self.resumed_step = 0
        self.stopped = False
        self.checkpointed_step: int | None = None
        self._window_loss: torch.Tensor | None = None
        self._window_steps = 0
        self._window_samples = 0
        self._window_start = time.perf_counter()

    def resume(self) -> State | None:
        """Restore the newest checkpoint, if any, and return it (for the trainer's positions).

        Raises InvalidInput when the checkpoint does not fit the model.
        """
        saved = self.ctx.latest_checkpoint()
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
        (a resumed run skips what it trained). A distributed loop returns its rank's share."""
        import torch

        return torch.randperm(n, generator=torch.Generator().manual_seed(seed))

    def should_stop(self) -> bool:
        """True, once, when a stop was asked for; looked at only between logging windows."""
        if self._window_steps == 0 and self.ctx.should_stop():
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

    @property
    def window_full(self) -> bool:
        return self._window_steps >= self.log_every

    @property
    def window_steps(self) -> int:
        return self._window_steps

    def close_window(self) -> float:
        """The mean loss of the steps since the last window; TrainingDiverged when not finite."""
        if self._window_steps == 0 or self._window_loss is None:
            return math.nan
        mean = float(self._window_loss) / self._window_steps
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
        samples, started = self._window_samples, self._window_start
        mean = self.close_window()
        now = time.perf_counter()
        self.log("loss", mean)
        self.log("learning_rate", learning_rate)
        self.log("samples_per_s", samples / max(now - started, 1e-9))
        if self.writer:
            self.ctx.progress(self.step, self.total_steps, epoch)
        self._window_samples, self._window_start = 0, time.perf_counter()
        return mean

    def log(self, name: str, value: float) -> None:
        """A metric at the current step (only the writer logs)."""
        if self.writer:
            self.ctx.log(name, value, self.step)

    @property
    def checkpoint_due(self) -> bool:
        return bool(self.checkpoint_every) and self.step % (self.checkpoint_every or 1) == 0

    def checkpoint(self, **extra: Any) -> None:
        """Save the trainer's state at the current step (only the writer writes).

        Raises TrainingDiverged rather than save a state whose loss is not finite.
        """
        self._check_finite()
        if self.writer:
            self.ctx.checkpoint({**self.save(), **extra}, self.step)
        self.checkpointed_step = self.step

    def _check_finite(self) -> None:
        if self._window_loss is not None and not math.isfinite(float(self._window_loss)):
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
        if self.writer:
            self.ctx.flush_metrics()
        best = best_state(self.ctx, self.step)
        if best is None:
            return None
        best_step, state = best
        if state is not None:
            self.restore(state)
        return best_step
