"""Prometheus text for one replica, read from the host's counters at scrape time.

Names follow Prometheus conventions and match the platform's /metrics: the
`modelhub_inference_` prefix, base units (`_seconds`, `_bytes`), `_total` on
counters (prometheus_client adds it to counter families), and the labels
`deployment`, `model`, `version`.
"""

from __future__ import annotations

from collections.abc import Iterator
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


class HostCollector(Collector):
    def __init__(self, host: ModelHost) -> None:
        self.host = host

    def collect(self) -> Iterator[Metric]:
        requests = CounterMetricFamily(
            "modelhub_inference_requests", "Inference requests answered.", labels=LABELS
        )
        errors = CounterMetricFamily(
            "modelhub_inference_errors", "Inference requests that failed.", labels=LABELS
        )
        rows = CounterMetricFamily(
            "modelhub_inference_rows", "Rows (inputs) inferred.", labels=LABELS
        )
        latency = HistogramMetricFamily(
            "modelhub_inference_request_duration_seconds",
            "Time to answer an inference request.",
            labels=LABELS,
        )
        batches = HistogramMetricFamily(
            "modelhub_inference_batch_rows", "Rows per dynamic batch.", labels=LABELS
        )
        memory = GaugeMetricFamily(
            "modelhub_inference_model_memory_bytes",
            "Memory a loaded model version holds.",
            labels=LABELS,
        )
        for entry in self.host.stats()["models"]:
            key = [entry["name"], entry["model"], str(entry["version"])]
            usage = entry["usage"]
            requests.add_metric(key, usage["requests"])
            errors.add_metric(key, usage["errors"])
            rows.add_metric(key, usage["rows"])
            latency.add_metric(
                key,
                buckets(LATENCY_BOUNDS_SECONDS, usage["latency_buckets"]),
                usage["latency_ms_sum"] / 1000.0,
            )
            batches.add_metric(
                key,
                buckets(tuple(float(b) for b in BATCH_BOUNDS), usage["batch_buckets"]),
                float(usage["rows"]),
            )
            memory.add_metric(key, entry["memory_bytes"])
        in_flight = GaugeMetricFamily(
            "modelhub_inference_in_flight_requests", "Requests being answered by this replica."
        )
        in_flight.add_metric([], self.host.in_flight)
        yield from (requests, errors, rows, latency, batches, memory, in_flight)


class PredictionLogCollector(Collector):
    """The prediction log's counters: what was sampled, capped, dropped and written."""

    def __init__(self, log: PredictionLog) -> None:
        self.log = log

    def collect(self) -> Iterator[Metric]:
        stats = self.log.stats()
        for key, text in (
            ("sampled", "Requests the prediction log sampled."),
            ("capped", "Sampled requests skipped by the per-minute cap."),
            ("dropped", "Sampled requests dropped because the log's queue was full."),
            ("logged", "Requests written to prediction log files."),
        ):
            family = CounterMetricFamily(f"modelhub_prediction_log_{key}", text)
            family.add_metric([], stats[key])
            yield family


def render_metrics(host: ModelHost, prediction_log: PredictionLog | None = None) -> bytes:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(HostCollector(host))
    if prediction_log is not None:
        registry.register(PredictionLogCollector(prediction_log))
    return generate_latest(registry)
