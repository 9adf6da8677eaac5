"""The prediction log and feedback: ingest what replicas sampled, read it, join labels.

Replicas write closed Parquet files into the spool folder the server gives them
(`serving/predlog.py`). A thread here (`start`/`stop`) moves each into the artifact
store (content-addressed) and indexes it in the metadata store: one row per file
(digest, deployment, model, version, rows, first and last time) and one row per
sampled request (its id, time, latency and prediction), in one transaction, then
deletes the spool file. A crash anywhere in between loses nothing and duplicates
nothing: the spool file stays until it is indexed, and a file whose digest is
indexed already is only deleted.

Feedback (`{"request_id", "label"}` lines) is joined by request id to the model's
sampled requests. Ids never logged are counted and listed, not an error. A line
that is malformed or whose label does not fit the prediction refuses the whole
file (every bad line named) and nothing is stored: a file is one statement, and a
half-applied one would leave the accuracy figures unexplained. A label sent again
replaces the old one; each stored file is one audit event.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import threading
import time
from collections import defaultdict
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from modelhub.domain.auth import Action, Caller
from modelhub.domain.monitoring import Window
from modelhub.domain.names import check_model_name
from modelhub.domain.predictions import (
    MAX_BAD_LINES_SHOWN,
    AccuracyPoint,
    AccuracySummary,
    FeedbackOutcome,
    LabelDraft,
    LoggedPrediction,
    PredictionLogFile,
    VersionAccuracy,
    kind_of,
    label_problem,
    metric_for,
    parse_feedback_line,
    row_scores,
)
from modelhub.errors import InvalidInput, ModelhubError
from modelhub.stores.metadata.base import AuditDraft

if TYPE_CHECKING:
    from modelhub.services.auth import AuthService
    from modelhub.services.registry import RegistryService
    from modelhub.settings import Settings
    from modelhub.stores.artifacts.base import ArtifactStore
    from modelhub.stores.metadata.base import MetadataStore

log = logging.getLogger("modelhub.predictions")

MAX_FEEDBACK_LINES = 100_000
MAX_UNKNOWN_IDS_SHOWN = 100
MAX_LIST_LIMIT = 1000
SERIES_BUCKETS = 24
REJECTED_SUFFIX = ".rejected"
INDEX_COLUMNS = ("request_id", "at", "latency_ms", "rows", "prediction")


class PredictionService:
    def __init__(
        self,
        settings: Settings,
        metadata: MetadataStore,
        artifacts: ArtifactStore,
        registry: RegistryService,
        auth: AuthService,
    ) -> None:
        self.spool = settings.prediction_spool_dir
        self.interval = settings.prediction_ingest_seconds
        self.retention = settings.prediction_log_retention
        self.cleanup_every = settings.monitoring_cleanup_seconds
        self.metadata = metadata
        self.artifacts = artifacts
        self.registry = registry
        self.auth = auth
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- ingest -----------------------------------------------------------------

    def start(self) -> None:
        """Ingest the spool folder every `prediction_ingest_seconds` until `stop`."""
        if self._thread is not None:
            return
        self.spool.mkdir(parents=True, exist_ok=True)
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="prediction-ingest", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
            self._thread = None
        with contextlib.suppress(ModelhubError, OSError):
            self.ingest_spool()  # what the replicas closed on their way out

    def _run(self) -> None:
        cleaned = -math.inf
        while not self._stop.wait(self.interval):
            try:
                self.ingest_spool()
                if time.monotonic() - cleaned >= self.cleanup_every:
                    self.cleanup()
                    cleaned = time.monotonic()
            except Exception:
                log.exception("prediction log ingest failed; trying again")

    def cleanup(self, now: datetime | None = None) -> int:
        """Drop the log files older than `prediction_log_retention` (their index and
        labels with them); the number of files dropped. The artifact GC then removes
        their blobs, which nothing references any more."""
        dropped = self.metadata.purge_predictions((now or datetime.now(UTC)) - self.retention)
        if dropped:
            log.info("prediction log: %d files older than the retention dropped", dropped)
        return dropped

    def ingest_spool(self) -> int:
        """Ingest every closed file in the spool folder; the number of files indexed."""
        if not self.spool.is_dir():
            return 0
        indexed = 0
        for path in sorted(self.spool.glob("*.parquet")):
            try:
                indexed += self.ingest_file(path)
            except (OSError, ValueError, KeyError) as exc:  # pyarrow's errors are ValueErrors
                # Not a log file this server can read: set aside, never retried forever,
                # and never in the way of the files behind it.
                log.error("prediction log file %s set aside: %s", path.name, exc)
                path.replace(path.with_name(path.name + REJECTED_SUFFIX))
                continue
            path.unlink(missing_ok=True)
        return indexed

    def ingest_file(self, path: Path) -> bool:
        """Store one closed log file and index it; False when it was indexed before."""
        import pyarrow.parquet as pq

        table = pq.read_table(path, columns=list(INDEX_COLUMNS))  # the tensors stay on disk
        meta = {k.decode(): v.decode() for k, v in (table.schema.metadata or {}).items()}
        records = _records(table.to_pydict(), meta)
        if not records:
            return False
        blob = self.artifacts.put_file(path)
        records = [r.model_copy(update={"file_digest": blob.digest}) for r in records]
        times = [r.at for r in records]
        entry = PredictionLogFile(
            digest=blob.digest,
            deployment=meta["modelhub.deployment"],
            model=meta["modelhub.model"],
            version=int(meta["modelhub.version"]),
            rows=table.num_rows,
            requests=len(records),
            size=blob.size,
            first_at=min(times),
            last_at=max(times),
            ingested_at=datetime.now(UTC),
        )
        return self.metadata.record_prediction_file(entry, records)

    # -- reading ----------------------------------------------------------------

    def inputs(self, model: str, version: int, window: Window) -> dict[str, np.ndarray]:
        """The logged inputs of `model`@`version` in `window`: one array per input, one
        entry per logged row (text as object arrays). Private inputs are left out."""
        return self._columns(model, version, window, "input.")

    def outputs(self, model: str, version: int, window: Window) -> dict[str, np.ndarray]:
        """The logged outputs of `model`@`version` in `window`, shaped as `inputs`."""
        return self._columns(model, version, window, "output.")

    def _columns(
        self, model: str, version: int, window: Window, prefix: str
    ) -> dict[str, np.ndarray]:
        import pyarrow.compute as pc
        import pyarrow.parquet as pq

        parts: dict[str, list[Any]] = defaultdict(list)
        private: set[str] = set()
        for entry in self.metadata.prediction_files(model, window.start, window.end, version):
            with self.artifacts.local_path(entry.digest) as local:
                table = pq.read_table(local)
            meta = table.schema.metadata or {}
            private.update(json.loads(meta.get(b"modelhub.private", b"[]")))
            inside = pc.and_(
                pc.greater_equal(table["at"], window.start), pc.less(table["at"], window.end)
            )
            table = table.filter(inside)
            for column in table.column_names:
                if column.startswith(prefix) and column[len(prefix) :] not in private:
                    parts[column[len(prefix) :]].extend(table[column].to_pylist())
        return {name: _array(values) for name, values in parts.items()}

    def predictions(
        self,
        caller: Caller,
        model: str,
        window: Window,
        limit: int = 100,
        version: int | None = None,
    ) -> list[LoggedPrediction]:
        """The newest sampled requests of `model` in `window`, for people."""
        self._readable(caller, model)
        if not 1 <= limit <= MAX_LIST_LIMIT:
            raise InvalidInput(
                f"limit must be between 1 and {MAX_LIST_LIMIT}, not {limit}", {"field": "limit"}
            )
        return self.metadata.list_predictions(model, window.start, window.end, version, limit)

    def _readable(self, caller: Caller, model: str) -> None:
        self.auth.authorize(caller, Action.MODELS_READ)
        self.registry.get_model(check_model_name(model))  # NotFound for an unknown model

    # -- feedback ---------------------------------------------------------------

    def feedback(self, caller: Caller, model: str, lines: Iterable[str]) -> FeedbackOutcome:
        """Join labels to logged requests by id. Refuses the whole file (InvalidInput
        listing every bad line by number) when any line is malformed or its label does
        not fit the logged prediction; ids never logged are counted, not refused."""
        check_model_name(model)
        owner = self.registry.get_model(model).owner
        self.auth.authorize_owned(caller, Action.MODELS_UPDATE, owner)
        parsed, bad = _parse_lines(lines)
        logged = self.metadata.logged_predictions(model, [rid for _, rid, _ in parsed])
        labels: dict[str, LabelDraft] = {}
        unknown: list[str] = []
        for number, request_id, label in parsed:
            found = logged.get(request_id)
            if found is None:
                unknown.append(request_id)
                continue
            problem = label_problem(found.kind, found.prediction, label)
            if problem is not None:
                bad.append((number, f"request {request_id!r}: {problem}"))
                continue
            labels[request_id] = LabelDraft(request_id=request_id, label=label)  # last wins
        total = len(parsed) + len(bad)
        if bad:
            bad.sort()
            shown = "; ".join(f"line {n}: {why}" for n, why in bad[:MAX_BAD_LINES_SHOWN])
            raise InvalidInput(
                f"feedback refused, nothing stored: {len(bad)} bad line(s): {shown}",
                {"field": "file", "bad_lines": [n for n, _ in bad], "lines": total},
            )
        stored = replaced = 0
        if labels:
            details = {"labels": len(labels), "unknown": len(unknown), "lines": total}
            audit = AuditDraft(caller.name, "predictions.feedback", model, details)
            stored, replaced = self.metadata.store_labels(model, list(labels.values()), audit)
        return FeedbackOutcome(
            model=model,
            lines=total,
            stored=stored,
            replaced=replaced,
            unknown=len(unknown),
            unknown_ids=unknown[:MAX_UNKNOWN_IDS_SHOWN],
        )

    # -- accuracy ---------------------------------------------------------------

    def accuracy(self, model: str, window: Window, version: int | None = None) -> AccuracySummary:
        """Accuracy (classes) or mean absolute error (numbers) of `model` from feedback
        in `window`, overall, per version and over time."""
        labelled = self.metadata.labelled_predictions(model, window.start, window.end, version)
        logged = self.metadata.logged_rows(model, window.start, window.end, version)
        metric = metric_for(labelled[0].kind) if labelled else "accuracy"
        scores: dict[int, list[tuple[datetime, float]]] = defaultdict(list)
        for record in labelled:
            for score in row_scores(record.kind, record.prediction, record.label):
                scores[record.version].append((record.at, score))
        everything = [item for items in scores.values() for item in items]
        per_version = [
            VersionAccuracy(
                version=v,
                value=_mean(scores.get(v, [])),
                labelled=len(scores.get(v, [])),
                predictions=logged.get(v, 0),
                series=_series(scores.get(v, []), window),
            )
            for v in sorted(set(scores) | set(logged))
        ]
        return AccuracySummary(
            model=model,
            metric=metric,
            value=_mean(everything),
            labelled=len(everything),
            predictions=sum(logged.values()),
            start=window.start,
            end=window.end,
            per_version=per_version,
            series=_series(everything, window),
        )

    def accuracy_for(
        self, caller: Caller, model: str, window: Window, version: int | None = None
    ) -> AccuracySummary:
        """`accuracy` for a caller who may read the model."""
        self._readable(caller, model)
        return self.accuracy(model, window, version)


def _parse_lines(lines: Iterable[str]) -> tuple[list[tuple[int, str, Any]], list[tuple[int, str]]]:
    parsed: list[tuple[int, str, Any]] = []
    bad: list[tuple[int, str]] = []
    for number, text in enumerate(lines, start=1):
        if number > MAX_FEEDBACK_LINES:
            raise InvalidInput(
                f"a feedback file holds at most {MAX_FEEDBACK_LINES} lines; split it",
                {"field": "file"},
            )
        if not text.strip():
            continue
        try:
            request_id, label = parse_feedback_line(text, number)
        except InvalidInput as exc:
            bad.append((number, exc.message.split(": ", 1)[-1]))
            continue
        parsed.append((number, request_id, label))
    if not parsed and not bad:
        raise InvalidInput("the feedback file holds no lines", {"field": "file"})
    return parsed, bad


def _records(columns: dict[str, list[Any]], meta: dict[str, str]) -> list[LoggedPrediction]:
    """One record per request of a log file (its rows joined: a list prediction)."""
    by_id: dict[str, dict[str, Any]] = {}
    for i, request_id in enumerate(columns.get("request_id", [])):
        entry = by_id.get(request_id)
        prediction = json.loads(columns["prediction"][i])
        if entry is None:
            by_id[request_id] = {
                "at": columns["at"][i],
                "latency_ms": columns["latency_ms"][i],
                "rows": columns["rows"][i],
                "prediction": [prediction],
            }
        else:
            entry["prediction"].append(prediction)
    return [
        LoggedPrediction(
            request_id=request_id,
            model=meta["modelhub.model"],
            version=int(meta["modelhub.version"]),
            deployment=meta["modelhub.deployment"],
            at=entry["at"].astimezone(UTC),
            latency_ms=entry["latency_ms"],
            rows=entry["rows"],
            prediction=entry["prediction"][0] if entry["rows"] == 1 else entry["prediction"],
            kind=kind_of(entry["prediction"]),
            file_digest="",  # set once the file is stored
        )
        for request_id, entry in by_id.items()
    ]


def _array(values: list[Any]) -> np.ndarray:
    if values and all(isinstance(v, str) for v in values):
        return np.array(values, dtype=object)
    try:
        array = np.array(values)
    except ValueError:
        return np.array(values, dtype=object)
    return array if array.dtype != np.dtype("O") or not values else np.array(values, dtype=object)


def _mean(items: list[tuple[datetime, float]]) -> float | None:
    return float(np.mean([score for _, score in items])) if items else None


def _series(items: list[tuple[datetime, float]], window: Window) -> list[AccuracyPoint]:
    """The metric per equal bucket of the window (buckets without labels left out)."""
    if not items:
        return []
    step = timedelta(seconds=window.seconds / SERIES_BUCKETS)
    buckets: dict[int, list[float]] = defaultdict(list)
    for at, score in items:
        index = min(int((at - window.start) / step), SERIES_BUCKETS - 1)
        buckets[index].append(score)
    return [
        AccuracyPoint(start=window.start + step * i, value=float(np.mean(s)), labelled=len(s))
        for i, s in sorted(buckets.items())
    ]
