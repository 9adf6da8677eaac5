"""Where a training run's time goes, phase by phase, for a profiling run.

A profiling run (`modelhub pipelines optimize`) trains a short budget of steps with a
`PhaseClock` running: the trainer wraps each part of its step in `loop.phase(name)`
(data, forward, backward, optimizer, validation) and the loop times its own parts
(checkpoint, logging). Time inside no phase (the Python loop, the trainer's own
bookkeeping) is reported as `other`: the wall time of the budget less the phases.

When the run is not profiling, `loop.phase` hands back one shared no-op context
manager: nothing is timed and nothing is allocated per step. On a GPU the clock
synchronises the device at each phase's edges (only when profiling), or the time
of queued kernels would land in whichever phase waits for them.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from types import TracebackType

PHASES = ("data", "forward", "backward", "optimizer", "validation", "checkpoint", "logging")
# What the metrics of a profiling run are called: PREFIX + "forward_s", ...
PREFIX = "profile_"

NO_PHASE: AbstractContextManager[None] = nullcontext()


class _Phase(AbstractContextManager[None]):
    __slots__ = ("clock", "name", "started")

    def __init__(self, clock: PhaseClock, name: str) -> None:
        self.clock, self.name, self.started = clock, name, 0.0

    def __enter__(self) -> None:
        self.clock.sync()
        self.started = time.perf_counter()
        self.clock.begin(self.started)

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.clock.sync()
        self.clock.add(self.name, time.perf_counter() - self.started)


class PhaseClock:
    """Seconds per phase, steps and samples, from the first phase until `freeze()`."""

    def __init__(self, sync: Callable[[], None] | None = None) -> None:
        self.seconds = dict.fromkeys(PHASES, 0.0)
        self.steps = 0
        self.samples = 0
        self.checkpoints = 0
        self.frozen = False
        self._sync = sync
        self._started: float | None = None
        self._ended: float | None = None
        self._phases = {name: _Phase(self, name) for name in PHASES}

    def phase(self, name: str) -> AbstractContextManager[None]:
        """A context manager timing `name` (one of PHASES); a no-op once frozen."""
        return NO_PHASE if self.frozen else self._phases[name]

    def sync(self) -> None:
        if self._sync is not None:
            self._sync()

    def begin(self, at: float) -> None:
        if self._started is None:
            self._started = at

    def add(self, name: str, seconds: float) -> None:
        if not self.frozen:
            self.seconds[name] += seconds
            if name == "checkpoint":
                self.checkpoints += 1

    def count(self, samples: int) -> None:
        if not self.frozen:
            self.steps += 1
            self.samples += samples

    def freeze(self) -> None:
        """Stop the clock: what comes after (the stop's checkpoint, the output) is not timed."""
        if not self.frozen:
            self.frozen = True
            self._ended = time.perf_counter()

    def figures(self) -> dict[str, float]:
        """The profile as flat metrics (`profile_forward_s`, `profile_samples_per_s` ...)."""
        self.freeze()
        wall = (self._ended or 0.0) - (self._started or self._ended or 0.0)
        figures = {f"{PREFIX}{name}_s": value for name, value in self.seconds.items()}
        figures[f"{PREFIX}other_s"] = max(0.0, wall - sum(self.seconds.values()))
        figures[f"{PREFIX}seconds"] = wall
        figures[f"{PREFIX}steps"] = float(self.steps)
        figures[f"{PREFIX}samples"] = float(self.samples)
        figures[f"{PREFIX}checkpoints"] = float(self.checkpoints)
        figures[f"{PREFIX}samples_per_s"] = self.samples / wall if wall > 0 else 0.0
        return figures


def cuda_sync(device: str) -> Callable[[], None] | None:
    """What waits for the device's queued work: None on a CPU."""
    if not device.startswith("cuda"):
        return None
    import torch

    return torch.cuda.synchronize
