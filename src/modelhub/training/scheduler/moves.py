"""The moves one scheduler makes on the runs it holds, each a compare-and-set in the store.

Every move names the scheduler's owner id (`held_by`), so a scheduler whose lease
another one took over can no longer end, requeue or retry that run.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from typing import Any

from modelhub.domain.alert_rules import Firing
from modelhub.domain.runs import RunStatus
from modelhub.errors import IllegalTransition
from modelhub.stores.metadata.base import MetadataStore

HELD = [RunStatus.RUNNING, RunStatus.FINISHING]
ENDABLE = [RunStatus.RUNNING, RunStatus.FINISHING, RunStatus.QUEUED, RunStatus.PENDING]
Event = tuple[str, dict[str, Any]]


def now() -> datetime:
    return datetime.now(UTC)


class RunMoves:
    def __init__(self, metadata: MetadataStore, owner: str, lease_seconds: float) -> None:
        self.metadata = metadata
        self.owner = owner
        self.lease_seconds = lease_seconds
        self._alerted: set[int] = set()  # runs this scheduler raised an alert on
        self._lock = threading.Lock()  # the loop and the finisher both end runs

    def lease_until(self) -> datetime:
        return now() + timedelta(seconds=self.lease_seconds)

    def still_held(self, run_id: int) -> bool:
        """Renew this scheduler's leases; whether it still holds `run_id`."""
        return run_id in self.metadata.renew_leases(self.owner, self.lease_until())

    def requeue(self, run_id: int, reason: str, expected: RunStatus = RunStatus.RUNNING) -> bool:
        try:
            self.metadata.move_run(
                run_id,
                [expected],
                event={"status": RunStatus.QUEUED.value, "reason": reason},
                held_by=self.owner,
                status=RunStatus.QUEUED,
                queued_at=now(),
                owner=None,
                lease_expires_at=None,
                worker_pid=None,
            )
        except IllegalTransition:
            return False
        return True

    def end_if_cancel_asked(self, run_id: int) -> bool:
        """A requeued run whose cancel was asked before its server stopped is cancelled,
        not started again (a new attempt starts with no cancel asked); whether it was."""
        if not self.metadata.get_run(run_id).cancel_requested:
            return False
        try:
            self.metadata.move_run(
                run_id,
                [RunStatus.QUEUED],
                event={
                    "status": RunStatus.CANCELLED.value,
                    "reason": "cancelled by request; its server stopped before the run did",
                },
                status=RunStatus.CANCELLED,
                finished_at=now(),
            )
        except IllegalTransition:
            return False  # another scheduler claimed it first: its watch sees the cancel
        return True

    def retry_later(self, run_id: int, detail: str, wait: float) -> None:
        """The attempt crashed: the run waits out its backoff as `pending`."""
        try:
            self.metadata.move_run(
                run_id,
                [RunStatus.RUNNING],
                event={"status": RunStatus.PENDING.value, "reason": detail, "retry_in": wait},
                held_by=self.owner,
                status=RunStatus.PENDING,
                next_attempt_at=now() + timedelta(seconds=wait),
                error=f"{detail}; retrying in {wait:g} s",
                error_code="unavailable",
                owner=None,
                lease_expires_at=None,
                worker_pid=None,
            )
        except IllegalTransition:
            return

    def finishing(self, run_id: int) -> bool:
        """The worker exited with a result: the slot is free, the result still to register."""
        try:
            self.metadata.move_run(
                run_id,
                [RunStatus.RUNNING],
                event={"status": RunStatus.FINISHING.value},
                held_by=self.owner,
                status=RunStatus.FINISHING,
                worker_pid=None,
            )
        except IllegalTransition:
            return False
        return True

    def fail(self, run_id: int, code: str, message: str) -> None:
        self.end(run_id, RunStatus.FAILED, error=message, error_code=code)

    def end(self, run_id: int, status: RunStatus, reason: str | None = None, **values: Any) -> None:
        event: dict[str, Any] = {"status": status.value}
        if reason or values.get("error"):
            event["reason"] = reason or values.get("error")
        if values.get("result_version") is not None:
            event["result_version"] = values["result_version"]
        try:
            self.metadata.move_run(
                run_id,
                ENDABLE,
                event=event,
                status=status,
                finished_at=now(),
                held_by=self.owner,
                owner=None,
                lease_expires_at=None,
                worker_pid=None,
                **values,
            )
        except IllegalTransition:
            return
        with self._lock:
            alerted = run_id in self._alerted
            self._alerted.discard(run_id)
        if alerted:  # most runs raise none: skip the write
            self.metadata.resolve_alerts(f"run:{run_id}", "stalled")

    def alert(self, run_id: int, firing: Firing) -> Event:
        """Fire the alert; the caller writes the returned event with the rest of its batch."""
        alert = self.metadata.fire_alert(
            f"run:{run_id}", firing.rule, firing.severity.value, firing.message
        )
        with self._lock:
            self._alerted.add(run_id)
        event = {
            "rule": firing.rule,
            "severity": firing.severity.value,
            "message": firing.message,
            "alert": alert.id,
        }
        return ("alert", event)
