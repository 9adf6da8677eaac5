"""Prometheus text for one replica, read from the host's counters at scrape time.

Names follow Prometheus conventions and match the platform's /metrics: the
`modelhub_inference_` prefix, base units (`_seconds`, `_bytes`), `_total` on
counters (prometheus_client adds it to counter families), and the labels
`deployment`, `model`, `version`.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from itertools import accumulate

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from modelhub.domain.deployments import LATENCY_BOUNDS_MS
from modelhub.serving.host import BATCH_BOUNDS, ModelHost
from modelhub.serving.predlog import PredictionLog

LABELS = ["deployment", "model", "version"]
LATENCY_BOUNDS_SECONDS = tuple(bound / 1000.0 for bound in LATENCY_BOUNDS_MS)


def buckets(bounds: tuple[float, ...], counts: list[int]) -> list[tuple[str, float]]:
    """Per-bucket counts as Prometheus's cumulative (le, count) pairs, +Inf last."""
    cumulative = list(accumulate(counts))
    labels = [*(f"{bound:g}" for bound in bounds), "+Inf"]
    return list(zip(labels, (float(c) for c in cumulative), strict=True))


class InferenceFamilies:
    """The inference counters and histograms by deployment version: one replica's and
    the platform's /metrics (summed over replicas) export these same names and labels."""

    def __init__(self) -> None:
        self.requests = CounterMetricFamily(
            "modelhub_inference_requests", "Inference requests answered.", labels=LABELS
        )
        self.errors = CounterMetricFamily(
            "modelhub_inference_errors", "Inference requests that failed.", labels=LABELS
        )
        self.rows = CounterMetricFamily(
            "modelhub_inference_rows", "Rows (inputs) inferred.", labels=LABELS
        )
        self.latency = HistogramMetricFamily(
            "modelhub_inference_request_duration_seconds",
            "Time to answer an inference request.",
            labels=LABELS,
        )
        self.batches = HistogramMetricFamily(
            "modelhub_inference_batch_rows", "Rows per dynamic batch.", labels=LABELS
        )

    def add(
        self,
        labels: list[str],
        counts: tuple[int, int, int],
        latency_buckets: list[int],
        latency_ms_sum: float,
        batch_buckets: list[int],
    ) -> None:
        """One deployment version: (requests, errors, rows), its latency buckets (per
        LATENCY_BOUNDS_MS) and their sum in ms, its batch-size buckets."""
        requests, errors, rows = counts
        self.requests.add_metric(labels, requests)
        self.errors.add_metric(labels, errors)
        self.rows.add_metric(labels, rows)
        self.latency.add_metric(
            labels, buckets(LATENCY_BOUNDS_SECONDS, latency_buckets), latency_ms_sum / 1000.0
        )
        self.batches.add_metric(
            labels, buckets(tuple(float(b) for b in BATCH_BOUNDS), batch_buckets), float(rows)
        )

    def families(self) -> list[Metric]:
        return [self.requests, self.errors, self.rows, self.latency, self.batches]


LOG_HELP = {
    "sampled": "Requests the prediction log sampled.",
    "capped": "Sampled requests skipped by the per-minute cap.",
    "dropped": "Sampled requests dropped because the log's queue was full.",
    "logged": "Requests written to prediction log files.",
}


def log_families(
    counts: Iterable[tuple[list[str], Mapping[str, int]]], labels: list[str] | None = None
) -> list[Metric]:
    """`modelhub_prediction_log_<counter>_total`, one sample per (label values,
    counters) pair: a replica's totals without labels, the platform's per version."""
    families = {
        key: CounterMetricFamily(f"modelhub_prediction_log_{key}", text, labels=labels or [])
        for key, text in LOG_HELP.items()
    }
    for values, found in counts:
        for key, family in families.items():
            family.add_metric(values, found[key])
    return list(families.values())


class HostCollector(Collector):
    def __init__(self, host: ModelHost) -> None:
        self.host = host

    def collect(self) -> Iterator[Metric]:
        inference = InferenceFamilies()
        memory = GaugeMetricFamily(
            "modelhub_inference_model_memory_bytes",
            "Memory a loaded model version holds.",
            labels=LABELS,
        )
        for entry in self.host.stats()["models"]:
            key = [entry["name"], entry["model"], str(entry["version"])]
            usage = entry["usage"]
            inference.add(
                key,
                (usage["requests"], usage["errors"], usage["rows"]),
                usage["latency_buckets"],
                usage["latency_ms_sum"],
                usage["batch_buckets"],
            )
            memory.add_metric(key, entry["memory_bytes"])
        in_flight = GaugeMetricFamily(
            "modelhub_inference_in_flight_requests", "Requests being answered by this replica."
        )
        in_flight.add_metric([], self.host.in_flight)
        yield from (*inference.families(), memory, in_flight)


class PredictionLogCollector(Collector):
    """The prediction log's counters: what was sampled, capped, dropped and written
    (this replica's totals; the platform's /metrics has them per deployment version)."""

    def __init__(self, log: PredictionLog) -> None:
        self.log = log

    def collect(self) -> Iterator[Metric]:
        yield from log_families([([], self.log.stats())])


def render_metrics(host: ModelHost, prediction_log: PredictionLog | None = None) -> bytes:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(HostCollector(host))
    if prediction_log is not None:
        registry.register(PredictionLogCollector(prediction_log))
    return generate_latest(registry)
