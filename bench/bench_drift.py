"""Drift check of 100,000 rows x 100 features against a stored reference profile.

Goal (issue 11): under 5 s, at least 10x faster than Evidently's DataDriftPreset on
the same data in the same run, with per-feature verdicts agreeing on at least 95 %
of the features.

The data: a reference of 100,000 rows and a live window of 100,000 rows of 100
normal features; 80 unchanged, 12 with a mean shift (0.05 to 1.0 standard
deviations, some below the 0.1 Wasserstein threshold on purpose), 8 with a change
of scale. Our check is timed end to end from the stored profile's bytes: parse
the profile, compare every column (median of --repeat runs). Evidently runs once,
in its own venv (bench/setup_evidently.sh), timed around `Report.run` only.

    .venv/bin/python bench/bench_drift.py [--rows N] [--features N] [--no-evidently] [--quick]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from benchlib import BENCH_DIR, emit, log, median, rounded
from modelhub.monitoring.drift import compare
from modelhub.monitoring.drift_profile import build_profile, profile_from_json, profile_to_json

EVIDENTLY_PYTHON = BENCH_DIR / ".venv-evidently" / "bin" / "python"


def make_data(rows: int, features: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    scales = rng.uniform(0.5, 5.0, size=features)
    centres = rng.uniform(-10, 10, size=features)
    reference = rng.normal(centres, scales, size=(rows, features))
    live = rng.normal(centres, scales, size=(rows, features))
    shifts = np.linspace(0.05, 1.0, 12)
    for offset, shift in enumerate(shifts):
        column = features - 20 + offset
        live[:, column] += shift * scales[column]
    for column in range(features - 8, features):
        live[:, column] = centres[column] + (live[:, column] - centres[column]) * 1.5
    return reference, live


def columns(matrix: np.ndarray) -> dict[str, np.ndarray]:
    return {f"f{i}": np.ascontiguousarray(matrix[:, i]) for i in range(matrix.shape[1])}


def run_evidently(reference: np.ndarray, live: np.ndarray) -> dict[str, object]:
    with tempfile.TemporaryDirectory() as tmp:
        ref_path, live_path = Path(tmp) / "reference.npy", Path(tmp) / "live.npy"
        np.save(ref_path, reference)
        np.save(live_path, live)
        argv = [str(EVIDENTLY_PYTHON), str(BENCH_DIR / "peers" / "evidently_drift.py"),
                str(ref_path), str(live_path)]  # fmt: skip
        log("peer: evidently DataDriftPreset")
        done = subprocess.run(argv, stdout=subprocess.PIPE, check=True, timeout=1800)
    import json

    line = [ln for ln in done.stdout.decode().splitlines() if ln.startswith("{")][-1]
    result: dict[str, object] = json.loads(line)
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--features", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--no-evidently", action="store_true")
    parser.add_argument("--quick", action="store_true", help="10,000 rows x 20 features")
    args = parser.parse_args()
    if args.quick:
        args.rows, args.features = 10_000, 20

    reference, live = make_data(args.rows, args.features, seed=0)
    started = time.perf_counter()
    stored = profile_to_json(build_profile(columns(reference)))
    profile_seconds = time.perf_counter() - started
    live_columns = columns(live)

    times, cpu_times = [], []
    for _ in range(args.repeat):
        started, cpu_started = time.perf_counter(), time.process_time()
        result = compare(profile_from_json(stored), live_columns)
        times.append(time.perf_counter() - started)
        cpu_times.append(time.process_time() - cpu_started)
    ours = median(times)
    verdicts = {v.feature: v.drifted for v in result.verdicts}
    out: dict[str, object] = {
        "bench": "drift",
        "rows": args.rows,
        "features": args.features,
        "profile_bytes": len(stored),
        "profile_s": rounded(profile_seconds),
        "check_s": rounded(ours),
        "check_cpu_s": rounded(median(cpu_times)),
        "check_under_5s": ours < 5.0,
        "tests": sorted({v.test.value for v in result.verdicts}),
        "drifted": sum(verdicts.values()),
    }
    if not args.no_evidently:
        if not EVIDENTLY_PYTHON.exists():
            out["evidently"] = f"missing: run {BENCH_DIR / 'setup_evidently.sh'} first"
        else:
            peer = run_evidently(reference, live)
            theirs: dict[str, bool] = peer["drifted"]  # type: ignore[assignment]
            agree = sum(verdicts[name] == theirs[name] for name in verdicts) / len(verdicts)
            speedup = float(peer["seconds"]) / ours  # type: ignore[arg-type]
            out |= {
                "evidently": peer["evidently"],
                "evidently_tests": peer["tests"],
                "evidently_s": rounded(float(peer["seconds"])),  # type: ignore[arg-type]
                "evidently_drifted": sum(theirs.values()),
                "speedup": rounded(speedup, 1),
                "speedup_at_least_10x": speedup >= 10,
                "agreement": rounded(agree),
                "agreement_at_least_95pct": agree >= 0.95,
                "disagree": sorted(n for n in verdicts if verdicts[n] != theirs[n]),
            }
    emit(out)


if __name__ == "__main__":
    main()
