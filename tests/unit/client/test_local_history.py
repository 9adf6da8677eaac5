"""LocalClient's performance call on a real home: the same record and errors as HTTP."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from modelhub.client import RegisterRequest
from modelhub.client.local import LocalClient
from modelhub.errors import InvalidInput, NotFound
from modelhub.monitoring.payloads import summary_from_json, summary_to_json
from modelhub.samples import write_mlp_safetensors
from modelhub.settings import Settings


@pytest.fixture
def client(tmp_path: Path) -> Iterator[LocalClient]:
    local = LocalClient(Settings(home=tmp_path / "home"), actor="ada")
    local.register(
        RegisterRequest(name="intents", type="custom"),
        write_mlp_safetensors(tmp_path / "w.safetensors"),
    )
    yield local
    local.close()


def test_a_model_that_served_nothing_has_a_summary_of_zeros(client: LocalClient) -> None:
    summary = client.performance("intents", since="7d")
    assert (summary.requests, summary.p99_ms, summary.resolution) == (0, None, "hour")
    assert summary.window.seconds == 7 * 24 * 3600
    assert summary_from_json(summary_to_json(summary)).to_json() == summary.to_json()
    with pytest.raises(NotFound, match="nope"):
        client.performance("nope")
    with pytest.raises(InvalidInput, match="since"):
        client.performance("intents", since="a week")
