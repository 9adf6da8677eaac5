"""The training half of `modelhub.Client`: pipelines and runs over /api/v1."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from urllib.parse import quote

import httpx

from modelhub.client.errors import raise_for_error
from modelhub.client.http_connection import HttpConnection
from modelhub.client.sse import parse_sse
from modelhub.domain.engines import EngineRecord
from modelhub.domain.estimates import Estimate
from modelhub.domain.runs import Alert, Checkpoint, MetricPoint, Pipeline, Run, RunEvent
from modelhub.errors import InvalidInput, Unavailable, error_from_dict

# The server sends a keep-alive comment every 15 s; this long without one, it is gone.
STREAM_READ_TIMEOUT = 60.0


class TrainingCalls(HttpConnection):
    """The pipeline and run calls of `Client`."""

    # Runs queued through a server are executed by that server's scheduler.
    queues_only = False

    def scheduling(self) -> contextlib.AbstractContextManager[None]:
        """Nothing to do: the server executes runs whether or not we watch."""
        return contextlib.nullcontext()

    def create_pipeline(
        self, spec: str, files: dict[str, bytes] | None = None
    ) -> tuple[Pipeline, Estimate]:
        try:
            sent = {path: data.decode("utf-8") for path, data in (files or {}).items()}
        except UnicodeDecodeError as exc:
            raise InvalidInput(f"a pipeline's files must be UTF-8 text: {exc}") from None
        data = self._request("POST", "/api/v1/pipelines", json={"spec": spec, "files": sent})
        return Pipeline.model_validate(data["pipeline"]), Estimate(**data["estimate"])

    def list_pipelines(self) -> list[Pipeline]:
        return [Pipeline.model_validate(p) for p in self._request("GET", "/api/v1/pipelines")]

    def list_engines(self) -> list[EngineRecord]:
        return [EngineRecord.model_validate(e) for e in self._request("GET", "/api/v1/engines")]

    def get_pipeline(self, name: str) -> Pipeline:
        return Pipeline.model_validate(self._request("GET", _pipeline_path(name)))

    def start_run(self, pipeline: str, priority: str | None = None) -> Run:
        url = f"{_pipeline_path(pipeline)}/runs"
        return Run.model_validate(self._request("POST", url, json={"priority": priority}))

    def get_run(self, run_id: int) -> Run:
        return Run.model_validate(self._request("GET", _run_path(run_id)))

    def list_runs(
        self, status: str | None = None, pipeline: str | None = None, limit: int = 100
    ) -> list[Run]:
        params: dict[str, str | int] = {"limit": limit}
        if status:
            params["status"] = status
        if pipeline:
            params["pipeline"] = pipeline
        return [Run.model_validate(r) for r in self._request("GET", "/api/v1/runs", params=params)]

    def cancel_run(self, run_id: int) -> Run:
        return Run.model_validate(self._request("POST", f"{_run_path(run_id)}/cancel"))

    def resume_run(self, run_id: int) -> Run:
        return Run.model_validate(self._request("POST", f"{_run_path(run_id)}/resume"))

    def run_metrics(self, run_id: int, name: str | None = None) -> list[MetricPoint]:
        params = {"name": name} if name else {}
        data = self._request("GET", f"{_run_path(run_id)}/metrics", params=params)
        return [MetricPoint.model_validate(p) for p in data]

    def run_checkpoints(self, run_id: int) -> list[Checkpoint]:
        data = self._request("GET", f"{_run_path(run_id)}/checkpoints")
        return [Checkpoint.model_validate(c) for c in data]

    def run_alerts(self, run_id: int) -> list[Alert]:
        return [
            Alert.model_validate(a) for a in self._request("GET", f"{_run_path(run_id)}/alerts")
        ]

    def run_logs(self, run_id: int, offset: int = 0) -> tuple[bytes, int]:
        try:
            response = self._http.get(f"{_run_path(run_id)}/logs", params={"offset": offset})
        except httpx.TransportError as exc:
            raise Unavailable(f"cannot reach modelhub at {self.url}: {exc}") from exc
        raise_for_error(response)
        return response.content, int(response.headers["x-next-offset"])

    def run_events(self, run_id: int, after: int = 0, log_offset: int = 0) -> Iterator[RunEvent]:
        """The run's events after event `after`, live, until the run has ended.

        New log text arrives as kind "log" with data {"text", "offset"}; its id is
        the last real event's, so resuming after it loses nothing.
        """
        params = {"after": after, "log_offset": log_offset}
        timeout = httpx.Timeout(self._http.timeout.connect, read=STREAM_READ_TIMEOUT)
        last = after
        try:
            with self._http.stream(
                "GET", f"{_run_path(run_id)}/events", params=params, timeout=timeout
            ) as response:
                if response.status_code >= 400:
                    response.read()
                    raise_for_error(response)
                for message in parse_sse(response.iter_lines()):
                    data = json.loads(message.data)
                    if message.event == "error":
                        raise error_from_dict(data)
                    if message.event == "log":
                        yield RunEvent(
                            id=last, run_id=run_id, kind="log", at=datetime.now(UTC), data=data
                        )
                        continue
                    event = RunEvent.model_validate(data)
                    last = event.id
                    yield event
        except httpx.TransportError as exc:
            raise Unavailable(
                f"the event stream of run {run_id} broke off ({exc}); "
                f"events after {last} were not received"
            ) from exc


def _pipeline_path(name: str) -> str:
    return f"/api/v1/pipelines/{quote(name, safe='')}"


def _run_path(run_id: int) -> str:
    return f"/api/v1/runs/{int(run_id)}"
