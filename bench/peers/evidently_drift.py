"""Evidently reference for bench_drift; runs in bench/.venv-evidently, never the project venv.

Reads the reference and live matrices the bench wrote (.npy), runs Evidently's
DataDriftPreset with its default tests and thresholds, and prints one JSON line:
the seconds the report took (data frames built beforehand, untimed) and each
column's drift verdict.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings

import numpy as np
import pandas as pd


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("reference")
    parser.add_argument("live")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    import evidently
    from evidently.legacy.metric_preset import DataDriftPreset
    from evidently.legacy.report import Report

    reference = np.load(args.reference)
    live = np.load(args.live)
    names = [f"f{i}" for i in range(reference.shape[1])]
    ref_frame = pd.DataFrame(reference, columns=names)
    live_frame = pd.DataFrame(live, columns=names)
    report = Report(metrics=[DataDriftPreset()])
    started = time.perf_counter()
    report.run(reference_data=ref_frame, current_data=live_frame)
    result = report.as_dict()
    seconds = time.perf_counter() - started
    table = next(
        m["result"]["drift_by_columns"]
        for m in result["metrics"]
        if "drift_by_columns" in m["result"]
    )
    verdicts = {name: bool(table[name]["drift_detected"]) for name in names}
    tests = sorted({table[name]["stattest_name"] for name in names})
    print(
        json.dumps(
            {
                "evidently": evidently.__version__,
                "seconds": seconds,
                "tests": tests,
                "drifted": verdicts,
            }
        ),
        flush=True,
    )


if __name__ == "__main__":
    sys.exit(main())
