"""Which queued run starts next, and when a crashed run may try again.

Queued runs compete by effective priority (their level plus aging, so a low run
never starves) and arrive first-in first-out within a level. A crashed run waits
as `pending` for an exponential backoff, then joins the queue again.
"""

from __future__ import annotations

from datetime import datetime

from modelhub.domain.runs import QueuedRun, RunStatus, effective_priority
from modelhub.errors import IllegalTransition
from modelhub.stores.metadata.base import MetadataStore
from modelhub.training.scheduler.moves import now


def in_start_order(queued: list[QueuedRun], aging_seconds: float) -> list[QueuedRun]:
    """Queued runs, first to start first."""
    current = now()

    def order(run: QueuedRun) -> tuple[float, datetime, int]:
        waited = (current - (run.queued_at or run.created_at)).total_seconds()
        level = effective_priority(run.priority, waited, aging_seconds)
        return (-level, run.queued_at or run.created_at, run.id)

    return sorted(queued, key=order)


def release_backoffs(metadata: MetadataStore) -> int:
    """Queue again the pending runs whose backoff is over; how many."""
    current = now()
    released = 0
    for run in metadata.list_runs([RunStatus.PENDING]):
        if run.next_attempt_at is None or run.next_attempt_at <= current:
            try:
                metadata.move_run(
                    run.id,
                    [RunStatus.PENDING],
                    event={"status": RunStatus.QUEUED.value, "reason": "retrying"},
                    status=RunStatus.QUEUED,
                    queued_at=current,
                )
            except IllegalTransition:
                continue
            released += 1
    return released


def backoff_delay(base_seconds: float, attempts: int) -> float:
    """Seconds a run waits after its `attempts`-th attempt crashed: doubling each time."""
    return float(base_seconds * 2 ** (attempts - 1))
