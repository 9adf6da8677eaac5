"""Small datasets for the federated tests: clients that are sites, one of them with a bad row."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from modelhub.training.trainers.tabular_data import split_rows

SITES = ("north", "south", "west")


def write_sites(
    path: Path,
    rows_per_site: int = 60,
    seed: int = 0,
    broken_site: str | None = None,
    validation_split: float = 0.2,
) -> Path:
    """Two separable clusters spread over SITES (column `site`).

    With `broken_site`, one of that site's rows has no value for feature `a`: a row
    the run trains on (not one the spec's seed holds out for validation), so only
    that site's client meets it.
    """
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(rows_per_site * len(SITES)):
        site = SITES[i % len(SITES)]
        label = (i // len(SITES)) % 2
        a, b = rng.normal(label * 3, 1), rng.normal(-label * 3, 1)
        rows.append([f"{a:.4f}", f"{b:.4f}", site, str(label)])
    if broken_site is not None:
        training, _ = split_rows(len(rows), validation_split, seed)
        victim = next(int(i) for i in sorted(training) if rows[int(i)][2] == broken_site)
        rows[victim][0] = ""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("a,b,site,label\n" + "".join(",".join(row) + "\n" for row in rows))
    return path
