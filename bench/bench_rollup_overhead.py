"""What per-minute roll-ups add to a request on the replica's hot path.

The extra work per request is MinuteRecorder's: `in_flight` on entry, `record` (a
clock read, a few adds, one DDSketch insert) on exit. Measured in the same run as the
reference: ModelHost.counted(), the whole per-request accounting it is part of (the
usage counters, the latency histogram, the callers). Also: what the supervisor's poll
costs a replica per finished minute (encode its sketch) and a minute's size on the wire.
Goal (issue 11, lane history): a request's extra work is a few microseconds (< 5 us).

    python bench/bench_rollup_overhead.py [--quick]
"""

from __future__ import annotations

import argparse
import random
import time
from collections.abc import Callable
from pathlib import Path

from benchlib import emit, median, rounded
from modelhub.monitoring import sketches
from modelhub.monitoring.rollup import Minute, MinuteRecorder
from modelhub.serving.host import ModelHost, ServedModel, ServedVersion

GOAL_US = 5.0
PER_SAMPLE = 1000


def per_call_us(call: Callable[[], object], samples: int) -> float:
    """Median microseconds per call, each sample timing PER_SAMPLE calls."""
    timings = []
    for _ in range(samples):
        start = time.perf_counter()
        for _ in range(PER_SAMPLE):
            call()
        timings.append((time.perf_counter() - start) / PER_SAMPLE * 1e6)
    return median(timings)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer samples (smoke test)")
    args = parser.parse_args()
    samples = 20 if args.quick else 300
    rng = random.Random(11)
    latencies = [rng.lognormvariate(0.0, 1.0) for _ in range(4096)]
    index = 0

    recorder = MinuteRecorder()

    def extra() -> None:
        nonlocal index
        index = (index + 1) & 4095
        recorder.in_flight(1)
        recorder.record(latencies[index], 1, None)

    host = ModelHost()
    host.apply([ServedModel("m", (ServedVersion(1, Path("/nonexistent"), 100),), preload=False)])
    slot = host.pick("m")

    def counted() -> None:
        with host.counted(slot, "bench") as tally:
            tally.rows = 1

    extra_us = per_call_us(extra, samples)
    counted_us = per_call_us(counted, samples)
    minute = Minute(1)
    for value in latencies:
        minute.latency.add(value)
    encode_us = per_call_us(lambda: sketches.encode(minute.latency), max(5, samples // 20))
    host.close()
    emit(
        {
            "bench": "rollup_overhead",
            "extra_us_per_request": rounded(extra_us, 3),
            "counted_us_per_request": rounded(counted_us, 3),
            "extra_share_of_counted": rounded(extra_us / counted_us, 3),
            "encode_minute_us": rounded(encode_us, 1),
            "minute_json_bytes": len(str(minute.to_json())),
            "goal_us": GOAL_US,
            "met": extra_us < GOAL_US,
        }
    )


if __name__ == "__main__":
    main()
