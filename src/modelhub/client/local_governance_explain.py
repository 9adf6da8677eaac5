"""The explainability call of `LocalClient`, over the services in this process."""

from __future__ import annotations

from pathlib import Path

from modelhub.client.local_home import LocalHome
from modelhub.domain.explanation import ExplainOptions, Explanation


class LocalExplainCalls(LocalHome):
    def explain(
        self, name: str, version: int, path: Path, options: ExplainOptions | None = None
    ) -> Explanation:
        return self.services.explain.explain(
            self.caller, name, version, Path(path), options or ExplainOptions()
        )
