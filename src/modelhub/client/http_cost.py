"""The cost half of `modelhub.Client`: /api/v1/cost and /api/v1/monitoring/platform."""

from __future__ import annotations

from urllib.parse import quote

from modelhub.client.http_connection import HttpConnection
from modelhub.domain.cost import (
    Budget,
    BudgetRequest,
    BudgetStatus,
    CostReport,
    CostSummary,
    PlatformFigures,
)


class CostCalls(HttpConnection):
    """The cost, budget and platform-figure calls of `Client`."""

    def cost_report(self, since: str = "30d", by: str = "model") -> CostReport:
        data = self._request("GET", "/api/v1/cost", params={"since": since, "by": by})
        return CostReport.model_validate(data)

    def run_cost(self, run_id: int) -> CostSummary:
        return CostSummary.model_validate(self._request("GET", f"/api/v1/cost/runs/{run_id}"))

    def deployment_cost(self, name: str, since: str = "30d") -> CostSummary:
        path = f"/api/v1/cost/deployments/{quote(name, safe='')}"
        return CostSummary.model_validate(self._request("GET", path, params={"since": since}))

    def list_budgets(self) -> list[BudgetStatus]:
        data = self._request("GET", "/api/v1/cost/budgets")
        return [BudgetStatus.model_validate(item) for item in data]

    def set_budget(self, request: BudgetRequest) -> Budget:
        body = request.model_dump(exclude_none=True)
        return Budget.model_validate(self._request("POST", "/api/v1/cost/budgets", json=body))

    def remove_budget(self, budget_id: int) -> Budget:
        return Budget.model_validate(self._request("DELETE", f"/api/v1/cost/budgets/{budget_id}"))

    def platform_figures(self, since: str = "24h") -> PlatformFigures:
        data = self._request("GET", "/api/v1/monitoring/platform", params={"since": since})
        return PlatformFigures.model_validate(data)
