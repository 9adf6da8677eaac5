"""The drift trigger of a persona's learning cycle, with the real DriftService over real
stores: the serving version's reference, its logged requests ingested into the
prediction log, and the monitoring service's own drift check deciding.

False alarms: the data are seeded, so this test is deterministic. In service, the
trigger fires on an undrifted stream when the drift check does: a feature's
Benjamini-Hochberg-corrected p-value below `drift_p_value` (0.01), so at most about 1 %
of checks of a stream that has not moved (the correction keeps the false discovery
rate across the features at that level).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from modelhub.domain.auth import Caller, Role
from modelhub.domain.personas import Feedback, InteractionIn
from modelhub.services import Services
from modelhub.services.personas import PersonaRequest
from tests.unit.services.test_drift_service import data, logged, register, write_csv

ADMIN = Caller(name="alice", role=Role.ADMIN)
POLICY = "triggers: {new_labels: null, drift: true}\ndrift_since: 1h\n"


def test_the_drift_trigger_fires_when_the_monitoring_check_finds_the_serving_version_drifted(
    services: Services, tmp_path: Path
) -> None:
    folder = tmp_path
    register(services, folder)
    rng = np.random.default_rng(17)
    services.drift.set_reference(ADMIN, "churn", 1, write_csv(folder / "eval.csv", data(rng, 800)))
    services.personas.create(ADMIN, PersonaRequest("dora", "churn", policy=POLICY))
    label = InteractionIn(id="1", message="x", version=1, feedback=Feedback(label="1"))
    services.personas.ingest(ADMIN, "dora", [label])

    def triggers() -> tuple[bool | None, str | None]:
        state = services.personas.plan(ADMIN, "dora").triggers
        return state.drift, state.fired

    assert triggers() == (False, None)  # no live data yet: nothing has moved
    logged(services, 1, data(rng, 300), hours_ago=0)  # the same distribution
    assert triggers() == (False, None)
    logged(services, 1, data(rng, 300, shift=1.5), hours_ago=0)  # feature b moves
    assert triggers() == (True, "drift")
    services.personas.set_policy(ADMIN, "dora", POLICY.replace("drift: true", "drift: false"))
    assert triggers() == (None, None)  # the trigger off: not even checked
