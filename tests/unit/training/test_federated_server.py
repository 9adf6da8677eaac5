"""The federated server's checkpoint: a resumed server continues after the checkpointed
round with the global model, and FedAdam keeps its moments, so that resuming is not a
fresh start of the server optimiser. No simulation runs here."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from modelhub.domain.hyperparameters import TabularHyperparameters
from modelhub.domain.pipelines import Federated
from modelhub.training.context import LocalContext
from modelhub.training.federated.data import client_file, prepare
from modelhub.training.federated.partitioning import Partitioning
from modelhub.training.federated.server import FederatedServer


def test_a_resumed_server_continues_from_the_round_with_the_model_and_fedadams_moments(
    tmp_path: Path,
) -> None:
    csv = tmp_path / "points.csv"
    csv.write_text("a,b,label\n" + "".join(f"{i},{-i},{i % 2}\n" for i in range(40)))
    ctx = LocalContext(run_dir=tmp_path / "run", hyperparameters={"hidden": [4]})
    hp = TabularHyperparameters.parse(ctx.hyperparameters)
    data = prepare(csv, hp, Partitioning(), 2, 1, 0, 0.2, tmp_path / "parts")
    assert [client_file(tmp_path / "parts", c).exists() for c in (0, 1)] == [True, True]
    assert sum(data.client_rows) == 32 and len(data.y_val) == 8
    spec = Federated(clients=2, rounds=5, strategy="fedadam")  # type: ignore[arg-type]

    first = FederatedServer(ctx, spec, data, seed=0)
    shapes = {k: v.shape for k, v in first.model.state_dict().items()}
    first.strategy.m_t = {k: np.full(s, 0.25, np.float32) for k, s in shapes.items()}  # type: ignore[attr-defined]
    first.strategy.v_t = {k: np.full(s, 0.5, np.float32) for k, s in shapes.items()}  # type: ignore[attr-defined]
    ctx.checkpoint(first.state(3), 3)

    second = FederatedServer(ctx, spec, data, seed=1)  # other first weights, until resumed
    before = second.model.state_dict()
    assert not all(torch.equal(v, before[k]) for k, v in first.model.state_dict().items())
    second.resume()
    assert second.rounds_done == 3
    for key, value in first.model.state_dict().items():
        assert torch.equal(second.model.state_dict()[key], value)
    for key in shapes:
        assert np.all(second.strategy.m_t[key] == 0.25)  # type: ignore[attr-defined]
        assert np.all(second.strategy.v_t[key] == 0.5)  # type: ignore[attr-defined]
