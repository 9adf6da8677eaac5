"""The run lease settings: a heartbeat must come before the lease it renews runs out."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from modelhub.settings import Settings


def test_a_heartbeat_not_under_the_lease_is_refused_naming_both(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match=r"train_heartbeat_seconds \(2\) must be under"):
        Settings(home=tmp_path, train_lease_seconds=2, train_heartbeat_seconds=2)
    settings = Settings(home=tmp_path, train_lease_seconds=3, train_heartbeat_seconds=0.5)
    assert (settings.train_lease_seconds, settings.train_heartbeat_seconds) == (3.0, 0.5)
