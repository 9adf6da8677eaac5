"""What the dashboard's training pages ask of the training service: a spec checked
without storing it, a page of runs and its count, each pipeline's runs in one read,
where a run's live feed starts, and the end of its log."""

from __future__ import annotations

from pathlib import Path

import pytest

from modelhub.domain.auth import Caller, Role
from modelhub.domain.runs import RunStatus
from modelhub.errors import InvalidInput
from modelhub.services import Services
from modelhub.services.training import PipelineRuns

ADMIN = Caller(name="alice", role=Role.ADMIN)
SPEC = """
name: pages-mlp
type: pre_training
trainer: tabular_classifier
datasets: [pages-data]
max_epochs: 2
result_model: {name: pages-clf}
"""


@pytest.fixture
def dataset(services: Services, tmp_path: Path) -> str:
    csv = tmp_path / "pages.csv"
    csv.write_text("a,b,label\n" + "".join(f"{i},{-i},{i % 2}\n" for i in range(20)))
    services.datasets.register(ADMIN, csv, "pages-data")
    return "pages-data"


def test_checking_a_spec_lists_every_problem_or_estimates_and_stores_nothing(
    services: Services, dataset: str
) -> None:
    bad = SPEC.replace("max_epochs: 2", "max_epochs: 0").replace("[pages-data]", "[nobody]")
    with pytest.raises(InvalidInput) as raised:
        services.training.check_pipeline(ADMIN, bad)
    assert [p["field"] for p in raised.value.details["errors"]] == ["max_epochs"]
    with pytest.raises(InvalidInput) as missing:
        services.training.check_pipeline(ADMIN, SPEC.replace("[pages-data]", "[nobody]"))
    assert [p["field"] for p in missing.value.details["errors"]] == ["datasets[0]"]

    estimate = services.training.check_pipeline(ADMIN, SPEC)
    assert estimate.memory_bytes > 0 and estimate.currency
    assert services.training.list_pipelines(ADMIN) == []
    created = services.training.create_pipeline(ADMIN, SPEC)
    assert created.estimate == estimate
    assert services.training.pipeline_estimate(ADMIN, "pages-mlp") == estimate


def test_runs_come_a_page_at_a_time_with_their_count_and_per_pipeline_summary(
    services: Services, dataset: str
) -> None:
    training = services.training
    training.create_pipeline(ADMIN, SPEC)
    first, second, third = (training.start(ADMIN, "pages-mlp").id for _ in range(3))
    training.cancel(ADMIN, second)

    page_one = training.runs_page(ADMIN, per_page=2)
    assert ([r.id for r in page_one.runs], page_one.total) == ([third, second], 3)
    page_two = training.runs_page(ADMIN, page=2, per_page=2)
    assert ([r.id for r in page_two.runs], page_two.total) == ([first], 3)
    cancelled = training.runs_page(ADMIN, RunStatus.CANCELLED)
    assert ([r.id for r in cancelled.runs], cancelled.total) == ([second], 1)
    assert training.runs_page(ADMIN, pipeline="other").total == 0
    with pytest.raises(InvalidInput, match="page must be 1 or more"):
        training.runs_page(ADMIN, page=0)

    assert training.pipeline_runs(ADMIN) == {"pages-mlp": PipelineRuns(3, RunStatus.QUEUED)}
    training.cancel(ADMIN, third)
    assert training.pipeline_runs(ADMIN)["pages-mlp"].last_status is RunStatus.CANCELLED


def test_a_live_view_starts_after_the_newest_event_and_reads_the_logs_end(
    services: Services, dataset: str
) -> None:
    training = services.training
    training.create_pipeline(ADMIN, SPEC)
    run = training.start(ADMIN, "pages-mlp")
    assert training.feed_position(ADMIN, run.id) == training.events(ADMIN, run.id)[-1].id
    training.cancel(ADMIN, run.id)
    position = training.feed_position(ADMIN, run.id)
    assert training.events(ADMIN, run.id, after=position) == []
    assert [e.data["status"] for e in training.events(ADMIN, run.id)] == ["queued", "cancelled"]

    assert training.log_tail(ADMIN, run.id) == (b"", 0)
    log = training.run_dir(run.id) / "logs.txt"
    log.parent.mkdir(parents=True, exist_ok=True)
    log.write_bytes(b"first line\nsecond line\nthird\n")
    assert training.log_tail(ADMIN, run.id, 1000) == (b"first line\nsecond line\nthird\n", 29)
    assert training.log_tail(ADMIN, run.id, 15) == (b"third\n", 29)  # from a whole line
