"""The platform's /metrics view of serving: per deployment version, what its replicas
answered (summed by the supervisor), how fast and how they batched, and replicas per
deployment, and the prediction log's counters (sampled, capped, dropped, logged) per
deployment version. The names and labels are the replicas' own
(serving/dataplane/metrics.py), summed over a deployment's replicas."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from modelhub.domain.deployments import LATENCY_BOUNDS_MS
from modelhub.services.deployments import ServingTotals
from modelhub.serving.dataplane.metrics import LABELS, InferenceFamilies, log_families
from modelhub.serving.host import BATCH_BOUNDS


class ServingCollector(Collector):
    def __init__(self, app_state: Any) -> None:
        self.state = app_state

    def collect(self) -> Iterator[Metric]:
        services = getattr(self.state, "services", None)
        serving = services.deployments.serving_totals() if services else None
        if serving is None:
            return
        inference = InferenceFamilies()
        totals = serving.totals
        no_batches = [0] * (len(BATCH_BOUNDS) + 1)
        no_latency = [0] * (len(LATENCY_BOUNDS_MS) + 1)
        for key, count in list(totals.requests.items()):
            inference.add(
                self.labels(serving, key),
                (count, totals.errors.get(key, 0), totals.rows.get(key, 0)),
                totals.latency_buckets.get(key, no_latency),
                totals.latency_ms_sum.get(key, 0.0),
                totals.batches.get(key, no_batches),
            )
        logs = list(totals.prediction_log.counts.items())
        prediction_log = log_families(
            [(self.labels(serving, key), counts) for key, counts in logs], LABELS
        )
        replicas = GaugeMetricFamily(
            "modelhub_deployment_replicas", "Live replica processes.", labels=["deployment"]
        )
        for name, count in serving.replicas.items():
            replicas.add_metric([name], count)
        yield from (*inference.families(), *prediction_log, replicas)

    @staticmethod
    def labels(serving: ServingTotals, key: tuple[str, int]) -> list[str]:
        deployment, version = key
        return [deployment, serving.models.get(deployment, deployment), str(version)]
