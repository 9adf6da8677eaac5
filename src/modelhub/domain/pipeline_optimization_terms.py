"""An optimisation's statuses and bounds, apart from its records: the CLI reads them for its
options and its wait without importing pydantic (see tests/unit/cli/test_cli_start.py)."""

from __future__ import annotations

from enum import StrEnum

MIN_BUDGET_STEPS = 5
MAX_BUDGET_STEPS = 10_000
DEFAULT_BUDGET_STEPS = 200
DEFAULT_TOLERANCE = 0.02
MAX_TOLERANCE = 1.0


class OptimizationStatus(StrEnum):
    PROFILING = "profiling"
    MEASURING = "measuring"
    NOTHING_TO_PROPOSE = "nothing_to_propose"
    NO_IMPROVEMENT = "no_improvement"
    PROPOSED = "proposed"
    ACCEPTED = "accepted"
    SUPERSEDED = "superseded"
    FAILED = "failed"


WORKING = frozenset({OptimizationStatus.PROFILING, OptimizationStatus.MEASURING})
