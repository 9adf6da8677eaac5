"""The monitor report's Rich tables: every section, trends, and user text shown as text."""

from __future__ import annotations

from rich.console import Console

from modelhub.cli.monitor_view import report_views
from modelhub.domain.monitor_report import MonitorReport
from tests.unit.monitoring.figures import performance, sample_report


def printed(report: MonitorReport) -> str:
    console = Console(width=160, record=True, color_system=None)
    for view in report_views(report):
        console.print(view)
    return console.export_text()


def test_every_section_with_its_trend_arrows() -> None:
    text = printed(sample_report())
    for title in (
        "health 10/100",
        "performance",
        "degradation against the previous window",
        "drift of version 3: drifted",
        "deployments",
        "alerts",
        "recommendations",
        "not in this report",
    ):
        assert title in text, title
    assert "▲ +400%" in text  # p99 60 ms against 12 ms
    assert "▼ -11%" in text  # accuracy 0.8 against 0.9
    assert "modelhub deployments scale intents 3" in text
    assert "GPU" not in text


def test_gpu_and_error_kinds_appear_when_measured() -> None:
    figures = performance(
        gpu_util=71.0, gpu_memory_bytes=3 * 1024**3, errors_by_kind={"timeout": 3, "bad_input": 1}
    )
    text = printed(sample_report().model_copy(update={"performance": figures}))
    assert "71.0 %" in text and "3.0 GB" in text
    assert "bad_input 1, timeout 3" in text


def test_markup_in_user_text_is_printed_as_it_is() -> None:
    text = printed(sample_report(model="[red]intents[/red]", message="[bold]boom[/bold]"))
    assert "[bold]boom[/bold]" in text and "[red]intents[/red]" in text
