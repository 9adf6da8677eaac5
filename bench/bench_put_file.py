"""LocalArtifactStore.put_file on a 1 GiB random file against `openssl dgst -sha256`.

Run: python bench/bench_put_file.py [--size-mib 1024] [--repeat 3] [--move]
Prints one JSON line; ratio = median put_file time / median openssl time (goal <= 1.5).
--move times put_file(move=True, known_digest=...) on a fresh copy of the file, as a
staged upload is registered: the store still hashes what it moves.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from modelhub.stores.artifacts.local import LocalArtifactStore

MiB = 1024 * 1024


def make_random_file(path: Path, size: int) -> None:
    with open(path, "wb") as handle:
        remaining = size
        while remaining:
            block = os.urandom(min(remaining, 16 * MiB))
            handle.write(block)
            remaining -= len(block)
        handle.flush()
        os.fsync(handle.fileno())


def time_openssl(path: Path) -> tuple[float, str]:
    start = time.perf_counter()
    done = subprocess.run(
        ["openssl", "dgst", "-sha256", "-r", str(path)], check=True, capture_output=True, text=True
    )
    return time.perf_counter() - start, done.stdout.split()[0]


def time_put_file(path: Path, root: Path, move: bool, known: str) -> tuple[float, str]:
    store = LocalArtifactStore(root)
    if move:  # the store takes the file over: give it a copy of its own
        staged = path.with_name("staged.bin")
        shutil.copyfile(path, staged)
        with open(staged, "rb+") as handle:
            os.fsync(handle.fileno())
        path = staged
    start = time.perf_counter()
    info = store.put_file(path, move=move, known_digest=known if move else None)
    elapsed = time.perf_counter() - start
    shutil.rmtree(root)
    return elapsed, info.digest


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--dir", type=Path, default=None, help="where to make the file")
    parser.add_argument("--move", action="store_true", help="time a move of a staged file")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="modelhub-bench-", dir=args.dir) as scratch:
        source = Path(scratch) / "model.bin"
        make_random_file(source, args.size_mib * MiB)
        time_openssl(source)  # warm the page cache for both contenders alike
        openssl_times: list[float] = []
        put_times: list[float] = []
        for run in range(args.repeat):
            seconds, expected = time_openssl(source)
            openssl_times.append(seconds)
            store_root = Path(scratch) / f"store-{run}"
            seconds, digest = time_put_file(source, store_root, args.move, expected)
            put_times.append(seconds)
            if digest != expected:
                raise SystemExit(f"digest mismatch: put_file {digest}, openssl {expected}")
    median, openssl_median = statistics.median(put_times), statistics.median(openssl_times)
    print(
        json.dumps(
            {
                "bench": "artifact_move_1gib" if args.move else "artifact_put_1gib",
                "size_mib": args.size_mib,
                "median_s": round(median, 3),
                "openssl_median_s": round(openssl_median, 3),
                "ratio": round(median / openssl_median, 3),
                "goal_ratio": 1.5,
                "put_s": [round(t, 3) for t in put_times],
                "openssl_s": [round(t, 3) for t in openssl_times],
            }
        )
    )


if __name__ == "__main__":
    main()
