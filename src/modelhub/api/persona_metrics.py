"""The personas' figures on /metrics: interactions ingested, duplicates, values scrubbed,
and learning cycles by outcome, counted from the database (so every server agrees)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector


class PersonaCollector(Collector):
    def __init__(self, app_state: Any) -> None:
        self.state = app_state

    def collect(self) -> Iterator[Metric]:
        services = getattr(self.state, "services", None)
        if services is None:
            return
        figures = services.personas.figures()
        yield CounterMetricFamily(
            "modelhub_persona_interactions",
            "Interactions stored for personas (duplicates not included).",
            value=figures.interactions,
        )
        yield CounterMetricFamily(
            "modelhub_persona_interaction_duplicates",
            "Interactions sent again under an id already stored, and skipped.",
            value=figures.duplicates,
        )
        yield CounterMetricFamily(
            "modelhub_persona_scrubbed",
            "Pieces of personal data blanked in interactions before they were stored.",
            value=figures.scrubbed,
        )
        cycles = GaugeMetricFamily(
            "modelhub_persona_cycles",
            "Learning cycles of every persona, by status (outcome, or training/canary).",
            labels=["status"],
        )
        for status, count in sorted(figures.cycles.items()):
            cycles.add_metric([status], float(count))
        yield cycles
