"""The plan's success figures on the platform's /metrics: gauges over the last 24 hours,
per training engine (`engine`, with "all" for the platform) and per deployment."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

FIGURES_WINDOW_SECONDS = 24 * 3600.0


class PlatformFiguresCollector(Collector):
    def __init__(self, app_state: Any) -> None:
        self.state = app_state

    def collect(self) -> Iterator[Metric]:
        services = getattr(self.state, "services", None)
        if services is None:
            return
        figures = services.cost.cached_platform_figures(FIGURES_WINDOW_SECONDS)
        engine = ["engine"]
        gauges = {
            "success_ratio": GaugeMetricFamily(
                "modelhub_training_success_ratio",
                "Completed over completed and failed runs finished in the last 24 hours.",
                labels=engine,
            ),
            "queue_wait_median_seconds": GaugeMetricFamily(
                "modelhub_training_queue_wait_median_seconds",
                "Median wait from queued to started of runs started in the last 24 hours.",
                labels=engine,
            ),
            "queue_wait_p95_seconds": GaugeMetricFamily(
                "modelhub_training_queue_wait_p95_seconds",
                "95th percentile of the queue wait of runs started in the last 24 hours.",
                labels=engine,
            ),
            "job_seconds_avg": GaugeMetricFamily(
                "modelhub_training_job_average_seconds",
                "Average running time of runs finished in the last 24 hours.",
                labels=engine,
            ),
            "utilisation_ratio": GaugeMetricFamily(
                "modelhub_training_utilisation_ratio",
                "CPU-seconds used by runs over CPU-seconds available while runs were queued "
                "or running, in the last 24 hours.",
                labels=engine,
            ),
        }
        for found in [*figures.training, figures.platform]:
            for field, gauge in gauges.items():
                value = getattr(found, field)
                if value is not None:
                    gauge.add_metric([found.engine], float(value))
        uptime = GaugeMetricFamily(
            "modelhub_deployment_uptime_ratio",
            "Time with at least one ready replica over time with any replica, last 24 hours.",
            labels=["deployment"],
        )
        for deployment in figures.deployments:
            if deployment.uptime_ratio is not None:
                uptime.add_metric([deployment.deployment], deployment.uptime_ratio)
        yield from (*gauges.values(), uptime)
