"""Tail latency under load (issue 16, part 5): `bench_fast_path.py --tail`.

At 1, 32 and 512 connections on the fast path (and the deployment endpoint beside it):
p99 at most 2x the mean latency Little's law gives (connections / throughput), and no
request starved (max under 10x p50). See bench_fast_path.py.

    python bench/bench_tail.py [--seconds S] [--quick]
"""

from __future__ import annotations

import sys

from bench_fast_path import main

if __name__ == "__main__":
    sys.argv.insert(1, "--tail")
    main()
