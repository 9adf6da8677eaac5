"""The platform's /metrics view of serving: per deployment version, what its replicas
answered (summed by the supervisor) and how they batched, and replicas per deployment."""

from __future__ import annotations

from collections.abc import Iterator
from itertools import accumulate
from typing import Any

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from modelhub.serving.host import BATCH_BOUNDS


class ServingCollector(Collector):
    def __init__(self, app_state: Any) -> None:
        self.state = app_state

    def collect(self) -> Iterator[Metric]:
        services = getattr(self.state, "services", None)
        serving = services.deployments.serving_totals() if services else None
        if serving is None:
            return
        labels = ["deployment", "version"]
        requests = CounterMetricFamily(
            "modelhub_deployment_requests", "Inference requests answered.", labels=labels
        )
        errors = CounterMetricFamily(
            "modelhub_deployment_errors", "Inference requests that failed.", labels=labels
        )
        batches = HistogramMetricFamily(
            "modelhub_deployment_batch_rows", "Rows per dynamic batch.", labels=labels
        )
        totals = serving.totals
        bounds = [*(str(b) for b in BATCH_BOUNDS), "+Inf"]
        for key, count in list(totals.requests.items()):
            name = [key[0], str(key[1])]
            requests.add_metric(name, count)
            errors.add_metric(name, totals.errors.get(key, 0))
            counts = totals.batches.get(key, [0] * len(bounds))
            cumulative = [float(c) for c in accumulate(counts)]
            batches.add_metric(
                name, list(zip(bounds, cumulative, strict=True)), float(totals.rows.get(key, 0))
            )
        replicas = GaugeMetricFamily(
            "modelhub_deployment_replicas", "Live replica processes.", labels=["deployment"]
        )
        for name, count in serving.replicas.items():
            replicas.add_metric([name], count)
        yield from (requests, errors, batches, replicas)
