"""RunFeed: new events and log text since the last look, and when a run's feed ends."""

from __future__ import annotations

from pathlib import Path

import pytest

from modelhub.domain.auth import Caller, Role
from modelhub.domain.runs import Run
from modelhub.errors import InvalidInput, NotFound
from modelhub.services import Services
from modelhub.services.run_feed import RunFeed, whole_utf8
from tests.stores import Stores

ADMIN = Caller(name="alice", role=Role.ADMIN)
SPEC = """
name: blobs-mlp
type: pre_training
trainer: tabular_classifier
datasets: [blobs]
max_epochs: 2
result_model: {name: blobs-clf}
"""


@pytest.fixture
def queued_run(services: Services, tmp_path: Path) -> Run:
    csv = tmp_path / "blobs.csv"
    csv.write_text("a,b,label\n" + "".join(f"{i},{-i},{i % 2}\n" for i in range(20)))
    services.datasets.register(ADMIN, csv, "blobs")
    services.training.create_pipeline(ADMIN, SPEC)
    return services.training.start(ADMIN, "blobs-mlp")


def test_each_poll_hands_out_only_what_is_new(
    services: Services, stores: Stores, queued_run: Run
) -> None:
    feed = RunFeed(services.training, ADMIN, queued_run.id)
    first = feed.poll()
    assert [(e.kind, e.data) for e in first.events] == [("status", {"status": "queued"})]
    assert (first.log_text, first.ended) == ("", False)
    assert feed.poll().events == []

    stores.metadata.record_progress(
        queued_run.id, {"progress": 50.0}, events=[("progress", {"progress": 50.0})]
    )
    log = services.training.run_dir(queued_run.id) / "logs.txt"
    log.parent.mkdir(parents=True, exist_ok=True)
    snowman = "☃".encode()
    log.write_bytes(b"hello " + snowman[:1])  # a character cut in two by the writer
    second = feed.poll()
    assert [e.kind for e in second.events] == ["progress"]
    assert (second.log_text, second.log_offset) == ("hello ", 6)

    with open(log, "ab") as out:
        out.write(snowman[1:] + b"\n")
    services.training.cancel(ADMIN, queued_run.id)
    last = feed.poll()
    assert last.log_text == "☃\n" and last.log_offset == 10
    assert [e.data["status"] for e in last.events] == ["cancelled"] and last.ended


def test_a_feed_resumes_after_an_event_id(services: Services, queued_run: Run) -> None:
    services.training.cancel(ADMIN, queued_run.id)
    every = RunFeed(services.training, ADMIN, queued_run.id).poll().events
    resumed = RunFeed(services.training, ADMIN, queued_run.id, after=every[0].id).poll()
    assert resumed.events == every[1:] and resumed.ended


def test_unknown_runs_and_negative_offsets(services: Services) -> None:
    with pytest.raises(NotFound, match="run 42 does not exist"):
        RunFeed(services.training, ADMIN, 42).poll()
    with pytest.raises(InvalidInput):
        RunFeed(services.training, ADMIN, 1, after=-1)


@pytest.mark.parametrize(
    ("chunk", "kept"),
    [
        (b"", b""),
        (b"abc", b"abc"),
        ("é".encode(), "é".encode()),
        ("é".encode()[:1], b""),
        (b"x" + "☃".encode()[:2], b"x"),
        (b"x" + "😀".encode()[:3], b"x"),
        ("😀".encode(), "😀".encode()),
    ],
)
def test_whole_utf8_keeps_only_complete_characters(chunk: bytes, kept: bytes) -> None:
    assert whole_utf8(chunk) == kept
