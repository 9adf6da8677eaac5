"""Optimising a pipeline, served by the services in this process (runs execute only
inside `scheduling()` or under a `modelhub server` on the same home)."""

from __future__ import annotations

from modelhub.client.local_home import LocalHome
from modelhub.domain.pipeline_optimization import (
    DEFAULT_BUDGET_STEPS,
    DEFAULT_TOLERANCE,
    PipelineOptimization,
)


class LocalPipelineOptimizationCalls(LocalHome):
    def optimize_pipeline(
        self,
        name: str,
        budget_steps: int = DEFAULT_BUDGET_STEPS,
        tolerance: float = DEFAULT_TOLERANCE,
    ) -> PipelineOptimization:
        return self.services.pipeline_optimizations.optimize(
            self.caller, name, budget_steps, tolerance
        )

    def get_optimization(self, name: str, optimization: int | None = None) -> PipelineOptimization:
        return self.services.pipeline_optimizations.get(self.caller, name, optimization)

    def list_optimizations(self, name: str) -> list[PipelineOptimization]:
        return self.services.pipeline_optimizations.list_optimizations(self.caller, name)

    def accept_optimization(
        self, name: str, optimization: int | None = None
    ) -> PipelineOptimization:
        return self.services.pipeline_optimizations.accept(self.caller, name, optimization)
