"""Prometheus text for one replica, read from the host's counters at scrape time."""

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


def _buckets(bounds: tuple[float, ...], counts: list[int]) -> list[tuple[str, float]]:
    cumulative = list(accumulate(counts))
    labels = [*(f"{bound:g}" for bound in bounds), "+Inf"]
    return list(zip(labels, (float(c) for c in cumulative), strict=True))


class HostCollector(Collector):
    def __init__(self, host: ModelHost) -> None:
        self.host = host

    def collect(self) -> Iterator[Metric]:
        labels = ["model", "version"]
        requests = CounterMetricFamily(
            "modelhub_serving_requests", "Inference requests answered.", labels=labels
        )
        errors = CounterMetricFamily(
            "modelhub_serving_errors", "Inference requests that failed.", labels=labels
        )
        latency = HistogramMetricFamily(
            "modelhub_serving_latency_ms", "Time to answer a request (ms).", labels=labels
        )
        batches = HistogramMetricFamily(
            "modelhub_serving_batch_rows", "Rows per dynamic batch.", labels=labels
        )
        memory = GaugeMetricFamily(
            "modelhub_serving_model_memory_bytes", "Memory a loaded model holds.", labels=labels
        )
        for entry in self.host.stats()["models"]:
            key = [entry["name"], str(entry["version"])]
            usage = entry["usage"]
            requests.add_metric(key, usage["requests"])
            errors.add_metric(key, usage["errors"])
            latency.add_metric(
                key, _buckets(LATENCY_BOUNDS_MS, usage["latency_buckets"]), usage["latency_ms_sum"]
            )
            batch_counts = usage["batch_buckets"]
            batches.add_metric(
                key,
                _buckets(tuple(float(b) for b in BATCH_BOUNDS), batch_counts),
                float(usage["rows"]),
            )
            memory.add_metric(key, entry["memory_bytes"])
        in_flight = GaugeMetricFamily("modelhub_serving_in_flight", "Requests being answered.")
        in_flight.add_metric([], self.host.in_flight)
        yield from (requests, errors, latency, batches, memory, in_flight)


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
