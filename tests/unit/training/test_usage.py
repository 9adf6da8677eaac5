"""The figure the worker writes at exit (the sampled figure is tested with the scheduler's
resource watch)."""

from __future__ import annotations

from pathlib import Path

import pytest

from modelhub.training.usage import read_usage, write_usage


def test_the_workers_own_figure_round_trips(tmp_path: Path) -> None:
    assert read_usage(tmp_path) is None
    write_usage(tmp_path, 12.5, 30.0)
    assert read_usage(tmp_path) == pytest.approx(12.5)
    (tmp_path / "usage.json").write_text("{not json")
    assert read_usage(tmp_path) is None
