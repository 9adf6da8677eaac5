"""The prediction log's part of the metadata store: log files, sampled requests, labels."""

from __future__ import annotations

import abc
from datetime import datetime
from typing import TYPE_CHECKING

from modelhub.domain.predictions import LabelDraft, LoggedPrediction, PredictionLogFile

if TYPE_CHECKING:
    from modelhub.stores.metadata.base import AuditDraft


class PredictionStore(abc.ABC):
    @abc.abstractmethod
    def record_prediction_file(
        self, file: PredictionLogFile, predictions: list[LoggedPrediction]
    ) -> bool:
        """Index one ingested log file and its sampled requests, in one transaction.

        False (and nothing written) when a file of that digest is indexed already:
        ingesting a file twice is harmless. A request id the model already has a
        record of keeps its first record."""

    @abc.abstractmethod
    def prediction_digests(self) -> set[str]:
        """Digests of every indexed prediction log file (blobs the artifact GC must keep)."""

    @abc.abstractmethod
    def prediction_files(
        self, model: str, start: datetime, end: datetime, version: int | None = None
    ) -> list[PredictionLogFile]:
        """Files of `model` (one version or all) holding requests in [start, end), oldest first."""

    @abc.abstractmethod
    def list_predictions(
        self,
        model: str,
        start: datetime,
        end: datetime,
        version: int | None = None,
        limit: int = 100,
    ) -> list[LoggedPrediction]:
        """Sampled requests of `model` in [start, end), newest first, at most `limit`."""

    @abc.abstractmethod
    def logged_predictions(self, model: str, request_ids: list[str]) -> dict[str, LoggedPrediction]:
        """The records of those request ids that `model` logged (unknown ids are absent)."""

    @abc.abstractmethod
    def store_labels(
        self, model: str, labels: list[LabelDraft], audit: AuditDraft
    ) -> tuple[int, int]:
        """Set the label of each logged request (a new label replaces an old one), in one
        audited transaction: (labels stored, of which replaced). NotFound, and nothing
        stored, when an id was never logged for `model`."""

    @abc.abstractmethod
    def labelled_predictions(
        self, model: str, start: datetime, end: datetime, version: int | None = None
    ) -> list[LoggedPrediction]:
        """Sampled requests of `model` in [start, end) that have a label, oldest first."""

    @abc.abstractmethod
    def logged_rows(
        self, model: str, start: datetime, end: datetime, version: int | None = None
    ) -> dict[int, int]:
        """Rows of sampled requests in [start, end), per version."""

    @abc.abstractmethod
    def purge_predictions(self, before: datetime) -> int:
        """Drop the log files whose newest request is older than `before`, with their
        sampled requests and labels, in one transaction; the number of files dropped.
        Their blobs are then unreferenced, and the artifact GC removes them."""
