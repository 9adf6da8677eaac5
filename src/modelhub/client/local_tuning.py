"""The tuning part of `LocalClient`: studies on the local home.

As with runs, a study only advances while a driver runs: `modelhub server` on the
same home, or this process inside `scheduling()` (which starts the scheduler and the
tuning driver together).
"""

from __future__ import annotations

from modelhub.client.local_home import LocalHome
from modelhub.domain.tuning import Study, TuneRequest


class LocalTuningCalls(LocalHome):
    """The study calls of `LocalClient`."""

    def tune(self, request: TuneRequest) -> Study:
        return self.services.tuning.tune(self.caller, request)

    def study(self, name: str) -> Study:
        return self.services.tuning.status(self.caller, name)

    def study_chart(self, name: str) -> str:
        return self.services.tuning.chart(self.caller, name)

    def resume_study(self, name: str) -> Study:
        return self.services.tuning.resume(self.caller, name)
