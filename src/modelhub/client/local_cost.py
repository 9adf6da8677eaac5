"""The cost half of `LocalClient`: the cost service over the local home."""

from __future__ import annotations

from modelhub.client.local_home import LocalHome
from modelhub.domain.cost import (
    Budget,
    BudgetRequest,
    BudgetStatus,
    CostReport,
    CostSummary,
    PlatformFigures,
)


class LocalCostCalls(LocalHome):
    """The cost, budget and platform-figure calls of `LocalClient`."""

    def cost_report(self, since: str = "30d", by: str = "model") -> CostReport:
        return self.services.cost.report(self.caller, since, by)

    def run_cost(self, run_id: int) -> CostSummary:
        return self.services.cost.run_cost_for(self.caller, run_id)

    def deployment_cost(self, name: str, since: str = "30d") -> CostSummary:
        return self.services.cost.deployment_cost_for(self.caller, name, since)

    def list_budgets(self) -> list[BudgetStatus]:
        return self.services.cost.list_budgets(self.caller)

    def set_budget(self, request: BudgetRequest) -> Budget:
        return self.services.cost.set_budget(self.caller, request)

    def remove_budget(self, budget_id: int) -> Budget:
        return self.services.cost.remove_budget(self.caller, budget_id)

    def platform_figures(self, since: str = "24h") -> PlatformFigures:
        return self.services.cost.platform_figures_for(self.caller, since)
