"""The optimisation call of `LocalClient`, over the services in this process."""

from __future__ import annotations

from pathlib import Path

from modelhub.client.local_home import LocalHome
from modelhub.domain.optimisation import OptimisationReport
from modelhub.services.optimisation import OptimiseRequest


class LocalOptimisationCalls(LocalHome):
    def optimize(
        self,
        request: OptimiseRequest,
        calibration: Path | None = None,
        eval_data: Path | None = None,
    ) -> OptimisationReport:
        return self.services.optimisation.optimise(
            self.caller,
            request,
            Path(calibration) if calibration is not None else None,
            Path(eval_data) if eval_data is not None else None,
        )
