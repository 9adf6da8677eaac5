"""When to add or remove a replica: in-flight requests per replica, with hysteresis.

The scaler wants `ceil(load / target)` replicas, where load is a smoothed count of
requests in flight across the deployment. It adds replicas only after the load has
stayed above what the current count can carry for `up_seconds`, and removes one only
after the load has stayed below what one replica fewer would carry at 70% of target
for `down_seconds`. The gap between the two thresholds and the two hold times is
what keeps a constant load from flapping the count.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

SCALE_DOWN_HEADROOM = 0.7
SMOOTHING = 0.5


@dataclass(frozen=True)
class ScalePolicy:
    min_replicas: int
    max_replicas: int
    target_in_flight: float
    up_seconds: float
    down_seconds: float


class Scaler:
    def __init__(self, policy: ScalePolicy) -> None:
        self.policy = policy
        self.load = 0.0
        self._above_since: float | None = None
        self._below_since: float | None = None

    def observe(self, now: float, replicas: int, in_flight: int) -> int:
        """The replica count to have after this sample (often `replicas` unchanged)."""
        policy = self.policy
        self.load = SMOOTHING * in_flight + (1 - SMOOTHING) * self.load
        wanted = math.ceil(self.load / policy.target_in_flight)
        wanted = max(policy.min_replicas, min(policy.max_replicas, wanted))
        if replicas < policy.min_replicas or replicas > policy.max_replicas:
            return max(policy.min_replicas, min(policy.max_replicas, replicas))
        if wanted > replicas:
            self._below_since = None
            self._above_since = self._above_since if self._above_since is not None else now
            if now - self._above_since >= policy.up_seconds:
                self._above_since = None
                return wanted
            return replicas
        self._above_since = None
        fewer = replicas - 1
        if fewer >= policy.min_replicas and self.load < (
            fewer * policy.target_in_flight * SCALE_DOWN_HEADROOM
        ):
            self._below_since = self._below_since if self._below_since is not None else now
            if now - self._below_since >= policy.down_seconds:
                self._below_since = None
                return fewer
            return replicas
        self._below_since = None
        return replicas
