"""Optimising a pipeline over /api/v1/pipelines/{name}/optimizations."""

from __future__ import annotations

from urllib.parse import quote

from modelhub.client.http_connection import HttpConnection
from modelhub.domain.pipeline_optimization import (
    DEFAULT_BUDGET_STEPS,
    DEFAULT_TOLERANCE,
    PipelineOptimization,
)


class PipelineOptimizationCalls(HttpConnection):
    def optimize_pipeline(
        self,
        name: str,
        budget_steps: int = DEFAULT_BUDGET_STEPS,
        tolerance: float = DEFAULT_TOLERANCE,
    ) -> PipelineOptimization:
        body = {"budget_steps": budget_steps, "tolerance": tolerance}
        return PipelineOptimization.model_validate(self._request("POST", _path(name), json=body))

    def get_optimization(self, name: str, optimization: int | None = None) -> PipelineOptimization:
        return PipelineOptimization.model_validate(
            self._request("GET", f"{_path(name)}/{_ref(optimization)}")
        )

    def list_optimizations(self, name: str) -> list[PipelineOptimization]:
        return [PipelineOptimization.model_validate(o) for o in self._request("GET", _path(name))]

    def accept_optimization(
        self, name: str, optimization: int | None = None
    ) -> PipelineOptimization:
        return PipelineOptimization.model_validate(
            self._request("POST", f"{_path(name)}/{_ref(optimization)}/accept")
        )


def _path(name: str) -> str:
    return f"/api/v1/pipelines/{quote(name, safe='')}/optimizations"


def _ref(optimization: int | None) -> str:
    return "latest" if optimization is None else str(int(optimization))
