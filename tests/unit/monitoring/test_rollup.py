"""Per-minute roll-ups: the replica's recorder, the merge across replicas, the codec."""

from __future__ import annotations

import random
from datetime import UTC, datetime

import numpy as np
import pytest

from modelhub.errors import InvalidInput
from modelhub.monitoring import sketches
from modelhub.monitoring.rollup import (
    KEEP_FINISHED,
    Minute,
    MinuteRecorder,
    combine,
    merge_minutes,
    to_record,
)


class Clock:
    def __init__(self, at: float) -> None:
        self.at = at

    def __call__(self) -> float:
        return self.at


def test_a_minute_finishes_when_the_clock_passes_it_without_another_request() -> None:
    clock = Clock(600.0)  # minute 10
    recorder = MinuteRecorder(clock)
    recorder.in_flight(3)
    recorder.record(5.0, rows=2, error=None)
    recorder.record(7.0, rows=1, error="invalid_input")
    recorder.batch(3)
    assert recorder.finished_minutes() == []  # minute 10 is still open
    clock.at = 661.0
    [minute] = recorder.finished_minutes()
    assert (minute.minute, minute.requests, minute.rows) == (10, 2, 3)
    assert minute.errors == {"invalid_input": 1}
    assert (minute.batches, minute.batch_rows, minute.in_flight_peak) == (1, 3, 3)
    assert minute.latency.count == 2
    assert recorder.finished_minutes() == [minute]  # kept for a poll that missed it


def test_idle_minutes_are_not_kept_and_only_the_last_few_finished_are() -> None:
    clock = Clock(0.0)
    recorder = MinuteRecorder(clock)
    for minute in range(KEEP_FINISHED + 3):
        clock.at = minute * 60.0 + 1
        recorder.record(1.0, rows=1, error=None)
        clock.at = minute * 60.0 + 61  # an idle gap the recorder must not store
        recorder.finished_minutes()
    kept = recorder.finished_minutes()
    assert [m.minute for m in kept] == list(range(3, KEEP_FINISHED + 3))


def test_merge_across_replicas_adds_counts_takes_peaks_and_merges_sketches() -> None:
    rng = random.Random(7)
    a, b = Minute(5), Minute(5)
    values_a = [rng.lognormvariate(1.0, 0.5) for _ in range(500)]
    values_b = [rng.lognormvariate(2.0, 0.5) for _ in range(300)]
    for minute, values, peak in ((a, values_a, 4), (b, values_b, 9)):
        for value in values:
            minute.requests += 1
            minute.latency.add(value)
        minute.in_flight_peak = peak
    a.errors = {"internal": 2}
    b.errors = {"internal": 1, "timeout": 3}
    merged = merge_minutes([("d", 1, a), ("d", 1, b), ("d", 2, Minute(5, requests=1))])
    both = merged[("d", 1, 5)]
    assert both.requests == 800
    assert both.errors == {"internal": 3, "timeout": 3}
    assert both.in_flight_peak == 9
    assert merged[("d", 2, 5)].requests == 1
    exact = float(np.quantile(values_a + values_b, 0.99, method="lower"))
    assert sketches.quantile(both.latency, 0.99) == pytest.approx(exact, rel=0.011)


def test_a_minute_survives_its_json_round_trip() -> None:
    minute = Minute(42, requests=3, errors={"internal": 1}, rows=9, batches=2, batch_rows=9)
    for value in (1.5, 20.0, 300.0):
        minute.latency.add(value)
    back = Minute.from_json(minute.to_json())
    assert (back.minute, back.requests, back.errors, back.rows) == (42, 3, {"internal": 1}, 9)
    assert back.latency.count == 3
    for q in (0.0, 0.5, 1.0):
        assert sketches.quantile(back.latency, q) == sketches.quantile(minute.latency, q)


def test_sketch_bytes_round_trip_and_an_empty_sketch_is_empty_bytes() -> None:
    sketch = sketches.new_sketch()
    assert sketches.encode(sketch) == b""
    assert sketches.decode(b"").count == 0
    for value in np.random.default_rng(3).exponential(10.0, 2000):
        sketch.add(float(value))
    data = sketches.encode(sketch)
    assert len(data) < 1024  # 2,000 latencies in under 1 KB
    back = sketches.decode(data)
    assert back.count == 2000
    assert sketches.quantile(back, 0.95) == sketches.quantile(sketch, 0.95)


def test_damaged_input_is_invalid_input() -> None:
    with pytest.raises(InvalidInput, match="sketch"):
        sketches.decode(b"\xff\xff\xff")
    with pytest.raises(InvalidInput, match="base64"):
        sketches.decode_text("not base64!")
    with pytest.raises(InvalidInput, match="malformed"):
        Minute.from_json({"minute": 1})


def test_combine_sums_pieces_of_one_key_into_a_record() -> None:
    first, second = Minute(60, requests=2), Minute(60, requests=3, errors={"timeout": 1})
    first.latency.add(1.0)
    second.latency.add(2.0)
    records = [to_record("d", "m", 1, first), to_record("d", "m", 1, second)]
    assert records[0].start == datetime(1970, 1, 1, 1, 0, tzinfo=UTC)
    hour = combine(records, start=datetime(1970, 1, 1, 1, tzinfo=UTC))
    assert (hour.requests, hour.errors, hour.errors_by_kind) == (5, 1, {"timeout": 1})
    assert sketches.decode(hour.latency).count == 2


def test_shorter_periods_are_pieces_of_their_minute() -> None:
    clock = Clock(120.0)
    recorder = MinuteRecorder(clock, seconds=1)
    for second in range(3):
        clock.at = 120.0 + second
        recorder.record(1.0, rows=1, error=None)
    clock.at = 200.0
    pieces = recorder.finished_minutes()
    assert [p.minute for p in pieces] == [120, 121, 122]
    starts = {to_record("d", "m", 1, p).start for p in pieces}
    assert starts == {datetime(1970, 1, 1, 0, 2, tzinfo=UTC)}
    with pytest.raises(ValueError, match="divide a minute"):
        MinuteRecorder(clock, seconds=7)


def test_summed_bins_answer_exactly_what_the_merged_ddsketch_answers() -> None:
    rng = np.random.default_rng(21)
    reference = sketches.new_sketch()
    parts, cells = [], []
    for index in range(60):
        sketch = sketches.new_sketch()
        size = 100_000 if index == 5 else 300  # one sketch needs 32-bit counts
        for value in rng.lognormal(1.0, 1.2, size):
            sketch.add(float(value))
        if index % 7 == 0:
            sketch.add(0.0)
            sketch.add(-float(rng.exponential(3.0)))
        reference.merge(sketch)
        parts.append(sketches.encode(sketch))
        cells.append(index % 3)
    parts.append(b"")  # a bucket without requests
    cells.append(1)
    summed = sketches.BinSum(parts, cells, 3)
    total = summed.bins()
    assert total.count == reference.count
    for q in (0.0, 0.001, 0.01, 0.25, 0.5, 0.9, 0.95, 0.99, 0.999, 1.0):
        assert sketches.bins_quantile(total, q) == reference.get_quantile_value(q)
    merged = sketches.decode(sketches.merge_encoded(parts))
    for q in (0.0, 0.5, 0.99, 1.0):
        assert merged.get_quantile_value(q) == reference.get_quantile_value(q)
    first_cell = sketches.merge_all(sketches.decode(p) for p in parts[0:60:3])
    assert sketches.bins_quantile(summed.bins([0]), 0.9) == first_cell.get_quantile_value(0.9)
    assert sketches.encode(sketches.decode(parts[1])) == parts[1]


def test_damaged_packed_sketches_are_refused_in_a_sum() -> None:
    good = sketches.encode(Minute(1).latency) or b""
    sketch = sketches.new_sketch()
    sketch.add(3.0)
    data = sketches.encode(sketch)
    with pytest.raises(InvalidInput, match="length"):
        sketches.BinSum([good, data[:-1]], [0, 0], 1)
    with pytest.raises(InvalidInput, match="format"):
        sketches.BinSum([b"\x09" + data[1:]], [0], 1)


def test_a_truncated_header_is_invalid_input() -> None:
    with pytest.raises(InvalidInput, match="too short"):
        sketches.BinSum([b"\x01\x02"], [0], 1)
