"""The platform's /metrics view of serving: per deployment version, what its replicas
answered (summed by the supervisor), how fast and how they batched, and replicas per
deployment. The names and labels are the replicas' own (serving/dataplane/metrics.py),
summed over a deployment's replicas."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from modelhub.domain.deployments import LATENCY_BOUNDS_MS
from modelhub.serving.dataplane.metrics import LABELS, LATENCY_BOUNDS_SECONDS, buckets
from modelhub.serving.host import BATCH_BOUNDS


class ServingCollector(Collector):
    def __init__(self, app_state: Any) -> None:
        self.state = app_state

    def collect(self) -> Iterator[Metric]:
        services = getattr(self.state, "services", None)
        serving = services.deployments.serving_totals() if services else None
        if serving is None:
            return
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
        totals = serving.totals
        no_batches = [0] * (len(BATCH_BOUNDS) + 1)
        no_latency = [0] * (len(LATENCY_BOUNDS_MS) + 1)
        for key, count in list(totals.requests.items()):
            deployment, version = key
            labels = [deployment, serving.models.get(deployment, deployment), str(version)]
            requests.add_metric(labels, count)
            errors.add_metric(labels, totals.errors.get(key, 0))
            rows.add_metric(labels, totals.rows.get(key, 0))
            latency.add_metric(
                labels,
                buckets(LATENCY_BOUNDS_SECONDS, totals.latency_buckets.get(key, no_latency)),
                totals.latency_ms_sum.get(key, 0.0) / 1000.0,
            )
            batches.add_metric(
                labels,
                buckets(tuple(float(b) for b in BATCH_BOUNDS), totals.batches.get(key, no_batches)),
                float(totals.rows.get(key, 0)),
            )
        replicas = GaugeMetricFamily(
            "modelhub_deployment_replicas", "Live replica processes.", labels=["deployment"]
        )
        for name, count in serving.replicas.items():
            replicas.add_metric([name], count)
        yield from (requests, errors, rows, latency, batches, replicas)
