"""One rank of a real 2-process gloo group, for test_distributed_loop: `python -m
tests.unit.training.distributed_probe OUT_DIR` with torchrun's variables set. It joins
the group, exercises the training loop's distributed parts on a run folder both ranks
share, and writes what it saw to OUT_DIR/rank-K.json."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import torch

from modelhub.training import distributed
from modelhub.training.context import LocalContext
from modelhub.training.loop import TrainingLoop, shard_size

SIZES = (10, 9)  # an even split, and one the last shard pads


def probe(out: Path) -> dict[str, Any]:
    group = distributed.join({"backend": "gloo"})
    ctx = LocalContext(out / "run")
    rank = ctx.rank
    torch.manual_seed(rank)  # different weights on each rank: DDP starts them equal
    model = torch.nn.Linear(3, 1)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)

    def make_loop() -> TrainingLoop:
        return TrainingLoop(
            ctx,
            total_steps=4,
            log_every=2,
            checkpoint_every=2,
            save=lambda: {"model": model.state_dict()},
            restore=lambda state: model.load_state_dict(state["model"]),
        )

    loop = make_loop()
    seen: dict[str, Any] = {
        "rank": rank,
        "world_size": ctx.world_size,
        "writer": ctx.writer,
        "group": [group.rank, group.world_size, group.backend],
        "shard_size": {str(n): shard_size(n) for n in SIZES},
        "orders": {
            f"{n}/{epoch}": loop.order(epoch, n, seed=7).tolist() for n in SIZES for epoch in (0, 1)
        },
    }
    net = loop.parallel(model)
    seen["wrapped"] = type(net).__name__
    x = torch.full((4, 3), float(rank + 1))  # each rank its own data
    for _ in range(2):
        loss = net(x).pow(2).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        loop.add(torch.tensor(float(2 * rank + 1)), samples=4)  # rank 0: 1, rank 1: 3
    seen["window_loss"] = loop.log_window(learning_rate=0.1, epoch=0)
    loop.checkpoint()
    seen["weight"] = model.weight.detach().flatten().tolist()
    ctx.stop_requested = rank == 1  # only one rank is asked: both must stop
    seen["stopped"] = loop.should_stop()
    loop.finish()
    with torch.no_grad():
        model.weight.zero_()
    resumed = make_loop()
    resumed.resume()
    seen["resumed_step"] = resumed.step
    seen["resumed_weight"] = model.weight.detach().flatten().tolist()
    # Each rank tries to write at a step of its own: only rank 0's lands.
    ctx.log("probe", float(rank), 50 + rank)
    ctx.checkpoint({"rank": torch.tensor(rank)}, 50 + rank)
    ctx.flush_metrics()
    distributed.leave(group)
    return seen


if __name__ == "__main__":
    out = Path(sys.argv[1])
    seen = probe(out)
    (out / f"rank-{seen['rank']}.json").write_text(json.dumps(seen))
    distributed.exit_now(0)
