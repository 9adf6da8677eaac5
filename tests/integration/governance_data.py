"""Data and steps the governance integration tests share: generated people with a
sensitive column, their training pipeline, training through a client, an ethics record."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from modelhub.client.contract import ModelhubClient
from modelhub.domain.runs import FINAL, RunStatus

ETHICS = """
intended_use: Sort support tickets into two queues.
out_of_scope_uses: [any decision about a person's credit or employment]
affected_groups: [customers]
risks:
  - {risk: misrouted tickets wait longer, mitigation: a daily sweep of the other queue}
human_oversight: The support lead reviews a weekly sample.
contact: governance@example.com
decision: approved
"""


def write_people(path: Path, rows: int, seed: int, kind: str) -> Path:
    """x1, x2 (the score), g (the group as a number, a feature), group and band (the
    sensitive columns, text) and the label: "unfair" refuses group b below a far higher
    score; "fair" accepts anyone above the same score; "classes" gives three classes by
    score alone."""
    rng = np.random.default_rng(seed)
    x1, x2 = rng.normal(size=rows), rng.normal(size=rows)
    g = rng.integers(0, 2, rows)
    band = rng.choice(["young", "old"], rows)
    score = x1 + x2
    if kind == "unfair":
        label = np.where(g == 1, score > 1.5, score > 0).astype(int)
    elif kind == "fair":
        label = (score > 0).astype(int)
    else:
        label = np.digitize(score, [-0.8, 0.8])
    lines = ["x1,x2,g,group,band,label"] + [
        f"{x1[i]:.4f},{x2[i]:.4f},{g[i]},{'ab'[g[i]]},{band[i]},{label[i]}" for i in range(rows)
    ]
    path.write_text("\n".join(lines) + "\n")
    return path


def spec(name: str, dataset: str) -> str:
    return (
        f"name: {name}\ntype: pre_training\ntrainer: tabular_classifier\n"
        f"datasets: [{dataset}]\nmax_epochs: 8\n"
        "hyperparameters: {features: [x1, x2, g], hidden: 16, batch_size: 32, "
        "learning_rate: 0.02}\nresources: {cpus: 1, memory: 2GiB}\n"
        f"result_model: {{name: {name}, type: classification}}\n"
    )


def train(client: ModelhubClient, spec: str) -> int:
    client.create_pipeline(spec)
    run = client.start_run(spec.split("\n", 1)[0].removeprefix("name: ").strip())
    deadline = time.monotonic() + 180
    while (current := client.get_run(run.id)).status not in FINAL:
        assert time.monotonic() < deadline, f"run {run.id} still {current.status}"
        time.sleep(0.1)
    assert current.status is RunStatus.COMPLETED, current.error
    return run.id
