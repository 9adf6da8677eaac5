"""The lineage, model card and auditor's report calls of `LocalClient`."""

from __future__ import annotations

from modelhub.client.local_home import LocalHome
from modelhub.domain.lineage import LineageGraph, VersionDocument


class LocalGovernanceLineageCalls(LocalHome):
    def lineage(self, name: str, version: int) -> LineageGraph:
        return self.services.lineage.graph_for(self.caller, f"{name}@{version}")

    def model_card(self, name: str, version: int) -> VersionDocument:
        return self.services.cards.card_for(self.caller, f"{name}@{version}")

    def governance_report(self, name: str, version: int) -> VersionDocument:
        return self.services.reports.report_for(self.caller, f"{name}@{version}")
