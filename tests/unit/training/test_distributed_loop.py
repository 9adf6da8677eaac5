"""The training loop's data-parallel parts on a real 2-process gloo group on this host:
shards, DDP, the writer, the window loss over ranks, an agreed stop, resume on every rank."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from modelhub.training.distributed import loopback_store
from modelhub.training.launcher import group_exit_code
from modelhub.training.usage import read_usage, write_usage
from modelhub.training.worker import FAILED

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def ranks(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[dict[str, Any]]]:
    """What each rank of one probe group saw (tests/unit/training/distributed_probe.py)."""
    out = tmp_path_factory.mktemp("group")
    store, port = loopback_store()  # hosted here, as the launcher hosts a run's
    processes = []
    for rank in range(2):
        env = os.environ | {
            "MASTER_ADDR": "127.0.0.1",
            "MASTER_PORT": str(port),
            "RANK": str(rank),
            "LOCAL_RANK": str(rank),
            "WORLD_SIZE": "2",
            "LOCAL_WORLD_SIZE": "2",
            "GLOO_SOCKET_IFNAME": "lo",
            "OMP_NUM_THREADS": "1",
        }
        command = [sys.executable, "-m", "tests.unit.training.distributed_probe", str(out)]
        processes.append(subprocess.Popen(command, cwd=ROOT, env=env))
    try:
        codes = [process.wait(timeout=120) for process in processes]
    finally:
        for process in processes:
            process.kill()
            process.wait()
        del store
    assert codes == [0, 0]
    return out, [json.loads((out / f"rank-{rank}.json").read_text()) for rank in range(2)]


def test_each_rank_knows_its_place_and_only_rank_0_writes(
    ranks: tuple[Path, list[dict[str, Any]]],
) -> None:
    out, seen = ranks
    assert [(s["rank"], s["world_size"], s["writer"]) for s in seen] == [
        (0, 2, True),
        (1, 2, False),
    ]
    assert [s["group"] for s in seen] == [[0, 2, "gloo"], [1, 2, "gloo"]]
    metrics = [
        json.loads(line) for line in (out / "run" / "metrics.jsonl").read_text().splitlines()
    ]
    losses = [(m["step"], m["value"]) for m in metrics if m["name"] == "loss"]
    assert losses == [(2, 2.0)]  # once, the mean of rank 0's 1.0 and rank 1's 3.0
    assert [s["window_loss"] for s in seen] == [2.0, 2.0]
    assert [(m["step"], m["value"]) for m in metrics if m["name"] == "probe"] == [(50, 0.0)]
    saved = sorted(p.name for p in (out / "run" / "checkpoints").iterdir())
    assert saved == ["step-000000002.pt", "step-000000050.pt"]  # none at rank 1's step 51


def test_shards_are_disjoint_cover_the_data_and_change_with_the_epoch(
    ranks: tuple[Path, list[dict[str, Any]]],
) -> None:
    _, (zero, one) = ranks
    assert zero["shard_size"] == one["shard_size"] == {"10": 5, "9": 5}
    for key in zero["orders"]:
        n = int(key.split("/")[0])
        first, second = zero["orders"][key], one["orders"][key]
        assert len(first) == len(second) == -(-n // 2)  # equal shards: the same steps
        assert set(first) | set(second) == set(range(n))
        assert len(set(first) & set(second)) == len(first) + len(second) - n  # only padding
    assert zero["orders"]["10/0"] != zero["orders"]["10/1"]


def test_ddp_keeps_the_ranks_equal_and_every_rank_stops_and_resumes_together(
    ranks: tuple[Path, list[dict[str, Any]]],
) -> None:
    _, (zero, one) = ranks
    assert zero["wrapped"] == one["wrapped"] == "DistributedDataParallel"
    assert zero["weight"] == pytest.approx(one["weight"])  # started and stepped as one
    assert zero["stopped"] and one["stopped"]  # only rank 1 was asked
    assert zero["resumed_step"] == one["resumed_step"] == 2
    assert zero["resumed_weight"] == pytest.approx(zero["weight"])
    assert one["resumed_weight"] == pytest.approx(zero["weight"])


def test_a_run_uses_the_sum_of_its_ranks_figures_once_every_rank_wrote_one(
    tmp_path: Path,
) -> None:
    write_usage(tmp_path, 2.0, 5.0, rank=0, world_size=2)
    assert read_usage(tmp_path) is None  # rank 1 has not reported: the samples stand
    write_usage(tmp_path, 3.0, 5.0, rank=1, world_size=2)
    assert read_usage(tmp_path) == pytest.approx(5.0)


@pytest.mark.parametrize(
    ("codes", "group"),
    [
        ([FAILED, -15], FAILED),  # a trainer failure; the agent stopped the other rank
        ([FAILED, FAILED], FAILED),
        ([-9, FAILED], 1),  # killed: the other rank failed because its peer was gone
        ([1, -15], 1),
        ([-15], 1),
    ],
)
def test_the_group_fails_only_when_a_rank_failed_for_a_reason_of_its_own(
    codes: list[int], group: int
) -> None:
    assert group_exit_code(codes) == group
