"""Per-request choice of a replica for the control plane's inference routes.

The deployment's own endpoint lets the kernel spread connections over replicas; the
platform routes (`/v2/...` on the API server) pick a replica per request instead,
by the deployment's strategy, and fall back to the next one when a replica is gone.
"""

from __future__ import annotations

import itertools
import threading
from collections import defaultdict

from modelhub.domain.deployments import LoadBalancing


class Balancer:
    def __init__(self) -> None:
        self._turns: dict[str, itertools.count[int]] = defaultdict(itertools.count)
        self._outstanding: dict[str, int] = defaultdict(int)
        self._lock = threading.Lock()

    def order(self, deployment: str, replicas: list[str], strategy: LoadBalancing) -> list[str]:
        """Replicas in the order to try them: the chosen one first, the rest as fallbacks."""
        if len(replicas) <= 1:
            return list(replicas)
        if strategy is LoadBalancing.LEAST_OUTSTANDING:
            with self._lock:
                return sorted(replicas, key=lambda url: self._outstanding[url])
        start = next(self._turns[deployment]) % len(replicas)
        return replicas[start:] + replicas[:start]

    def begin(self, replica: str) -> None:
        with self._lock:
            self._outstanding[replica] += 1

    def end(self, replica: str) -> None:
        with self._lock:
            self._outstanding[replica] -= 1

    def outstanding(self, replica: str) -> int:
        return self._outstanding[replica]
