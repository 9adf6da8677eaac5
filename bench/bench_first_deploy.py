"""The first deployment after the server started: deploy -> first successful
prediction of model A (a small torch model) on a `modelhub server` whose `/readyz`
has only just answered, median over a few fresh servers. Reference in the same run:
the next deployment on the same server, once its warm spare is ready again.
Goal: first deployment under 2 s.

The same measurement is a step of the serving benchmark (`serving/run.py`,
`first_deploy_after_start`); this command runs it alone, without wrk or peers.

    python bench/bench_first_deploy.py [--servers 3] [--quick]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
if str(BENCH_DIR) not in sys.path:
    sys.path.insert(0, str(BENCH_DIR))

from benchlib import emit  # noqa: E402
from serving import model_a, ours  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--servers", type=int, default=3, help="fresh servers (default 3)")
    parser.add_argument("--quick", action="store_true", help="one server")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-first-deploy-") as folder:
        work = Path(folder)
        model = model_a.write(work / "model_a")
        found = ours.first_deploy_times(model, work, 1 if args.quick else args.servers)
    emit({"bench": "first_deploy", **found})
    return 0


if __name__ == "__main__":
    sys.exit(main())
