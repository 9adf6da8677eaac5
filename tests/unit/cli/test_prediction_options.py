"""The prediction log options of `deploy` and `predictions log`."""

from __future__ import annotations

import pytest

from modelhub.cli.deployment_input import log_policy
from modelhub.domain.predictions import PredictionLogPolicy
from modelhub.errors import InvalidInput


def test_no_option_leaves_the_servers_default() -> None:
    assert log_policy(None, None) is None


def test_either_option_fills_the_other_with_its_default() -> None:
    assert log_policy(0.25, None) == PredictionLogPolicy(rate=0.25, max_per_minute=600)
    assert log_policy(None, 50) == PredictionLogPolicy(rate=0.1, max_per_minute=50)
    assert log_policy(0, None) == PredictionLogPolicy(rate=0.0)


@pytest.mark.parametrize(
    "rate, cap, option",
    [(1.5, None, "--log-rate"), (-0.1, None, "--log-rate"), (0.1, -1, "--log-max-per-minute")],
)
def test_out_of_range_names_the_option(rate: float, cap: int | None, option: str) -> None:
    with pytest.raises(InvalidInput, match=option):
        log_policy(rate, cap)
