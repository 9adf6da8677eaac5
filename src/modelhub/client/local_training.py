"""The training half of `LocalClient`: pipelines and runs on the local home.

Local mode has no server, so nothing executes a queued run unless a scheduler
runs somewhere: `modelhub server` on the same home, or this process inside
`scheduling()` (what `modelhub train` does). Without one, `start_run` and
`resume_run` only queue, which `queues_only` tells the CLI to say.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

from modelhub.client.local_home import LocalHome
from modelhub.domain.engines import EngineRecord
from modelhub.domain.enums import parse_enum
from modelhub.domain.estimates import Estimate
from modelhub.domain.pipelines import Priority
from modelhub.domain.runs import Alert, Checkpoint, MetricPoint, Pipeline, Run, RunEvent, RunStatus
from modelhub.services.run_feed import RunFeed

POLL_SECONDS = 0.25


class LocalTrainingCalls(LocalHome):
    """The pipeline and run calls of `LocalClient`."""

    queues_only = True

    @contextmanager
    def scheduling(self) -> Iterator[None]:
        """Execute queued runs in this process (a scheduler thread) while the block runs.

        On leaving, running attempts are asked to checkpoint and requeued, as when
        a server stops.
        """
        self.services.training.start_scheduler()
        self.services.tuning.start()
        try:
            yield
        finally:
            self.services.tuning.stop()
            self.services.training.stop_scheduler()

    def create_pipeline(
        self, spec: str, files: dict[str, bytes] | None = None
    ) -> tuple[Pipeline, Estimate]:
        created = self.services.training.create_pipeline(self.caller, spec, files)
        return created.pipeline, created.estimate

    def list_pipelines(self) -> list[Pipeline]:
        return self.services.training.list_pipelines(self.caller)

    def list_engines(self) -> list[EngineRecord]:
        return self.services.training.engines(self.caller)

    def get_pipeline(self, name: str) -> Pipeline:
        return self.services.training.get_pipeline(self.caller, name)

    def start_run(self, pipeline: str, priority: str | None = None) -> Run:
        chosen = parse_enum(Priority, priority, "priority") if priority else None
        return self.services.training.start(self.caller, pipeline, chosen)

    def get_run(self, run_id: int) -> Run:
        return self.services.training.get_run(self.caller, run_id)

    def list_runs(
        self, status: str | None = None, pipeline: str | None = None, limit: int = 100
    ) -> list[Run]:
        chosen = parse_enum(RunStatus, status, "status") if status else None
        return self.services.training.list_runs(self.caller, chosen, pipeline, limit)

    def cancel_run(self, run_id: int) -> Run:
        return self.services.training.cancel(self.caller, run_id)

    def resume_run(self, run_id: int) -> Run:
        return self.services.training.resume(self.caller, run_id)

    def run_metrics(self, run_id: int, name: str | None = None) -> list[MetricPoint]:
        return self.services.training.metrics(self.caller, run_id, name)

    def run_checkpoints(self, run_id: int) -> list[Checkpoint]:
        return self.services.training.checkpoints(self.caller, run_id)

    def run_alerts(self, run_id: int) -> list[Alert]:
        return self.services.training.alerts(self.caller, run_id)

    def run_logs(self, run_id: int, offset: int = 0) -> tuple[bytes, int]:
        chunk = self.services.training.logs(self.caller, run_id, offset)
        return chunk, offset + len(chunk)

    def run_events(self, run_id: int, after: int = 0, log_offset: int = 0) -> Iterator[RunEvent]:
        """Polls the store until the run has ended; the same feed the server streams."""
        feed = RunFeed(self.services.training, self.caller, run_id, after, log_offset)
        while True:
            seen = feed.after
            batch = feed.poll()
            if batch.log_text:  # first, as the server sends it; its id is the last event's
                data = {"text": batch.log_text, "offset": batch.log_offset}
                yield RunEvent(id=seen, run_id=run_id, kind="log", at=datetime.now(UTC), data=data)
            yield from batch.events
            if batch.ended:
                return
            time.sleep(POLL_SECONDS)
