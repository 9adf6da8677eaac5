"""The pipelines table names the owner and the author of the version it shows."""

from __future__ import annotations

from datetime import UTC, datetime

from rich.console import Console

from modelhub.cli.run_view import pipelines_table
from modelhub.domain.pipelines import Priority
from modelhub.domain.runs import Pipeline


def test_the_table_shows_owner_and_version_author() -> None:
    at = datetime(2026, 12, 6, 20, 30, tzinfo=UTC)
    pipeline = Pipeline(
        name="intents",
        version=2,
        type="fine_tuning",
        trainer="text_classifier",
        priority=Priority.NORMAL,
        spec={"result_model": {"name": "intents-clf"}},
        created_by="alice",
        updated_by="dora",
        created_at=at,
        updated_at=at,
    )
    console = Console(width=200, record=True)
    console.print(pipelines_table([pipeline]))
    text = console.export_text()
    assert "owner" in text and "alice" in text
    assert "2026-12-06 20:30 by dora" in text
