"""The CLI waits for an optimisation's verdict with an injected clock: no test sleeps."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from modelhub.cli.pipeline_optimize import poll_until_done
from modelhub.domain.pipeline_optimization import OptimizationStatus, PipelineOptimization
from modelhub.errors import Unavailable


def optimization(status: OptimizationStatus) -> PipelineOptimization:
    return PipelineOptimization(
        id=3,
        pipeline="p",
        pipeline_version=1,
        status=status,
        message=status.value,
        budget_steps=50,
        tolerance=0.02,
        baseline_run=3,
        created_by="ada",
        created_at=datetime.now(UTC),
    )


def test_waits_until_the_verdict() -> None:
    answers = iter(
        [OptimizationStatus.PROFILING, OptimizationStatus.MEASURING, OptimizationStatus.PROPOSED]
    )
    naps: list[float] = []
    found = poll_until_done(
        lambda: optimization(next(answers)), 60, sleep=naps.append, clock=lambda: 0.0
    )
    assert found.status is OptimizationStatus.PROPOSED and len(naps) == 2


def test_gives_up_after_the_timeout_naming_how_to_look_again() -> None:
    now = iter([0.0, 5.0, 11.0])
    with pytest.raises(Unavailable, match=r"still measuring after 10 s.*--id 3"):
        poll_until_done(
            lambda: optimization(OptimizationStatus.MEASURING),
            10,
            sleep=lambda _: None,
            clock=lambda: next(now),
        )
