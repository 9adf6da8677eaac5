"""The spec's federated section becomes Flower's own strategy objects, DP-wrapped when asked;
and modelhub turns Flower's telemetry off before Flower is first imported (so this module
imports Flower only through modelhub, or after it)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from modelhub.domain.pipelines import Federated
from modelhub.training.federated.strategy import build_strategy


@pytest.mark.parametrize(
    ("strategy", "kind", "option", "value"),
    [
        ("fedavg", "FedAvg", None, None),
        ("fedprox", "FedProx", "proximal_mu", 0.3),
        ("fedadam", "FedAdam", "eta", 0.02),
        ("fedmedian", "FedMedian", None, None),
        ("fedtrimmedavg", "FedTrimmedAvg", "beta", 0.1),
    ],
)
def test_each_strategy_is_flowers_with_the_specs_options(
    strategy: str, kind: str, option: str | None, value: float | None
) -> None:
    from flwr.serverapp import strategy as flower

    spec = Federated(
        clients=10,
        rounds=2,
        strategy=strategy,  # type: ignore[arg-type]
        fraction_fit=0.5,
        fraction_evaluate=0.2,
        min_available_clients=8,
        min_fit_clients=4,
        proximal_mu=0.3,
        server_learning_rate=0.02,
        trim_beta=0.1,
    )
    built = build_strategy(spec)
    assert type(built) is getattr(flower, kind)
    assert isinstance(built, flower.FedAvg)
    assert (built.fraction_train, built.fraction_evaluate) == (0.5, 0.2)
    assert (built.min_available_nodes, built.min_train_nodes) == (8, 4)
    if option is not None:
        assert getattr(built, option) == value


def test_differential_privacy_wraps_the_strategy_in_server_side_fixed_clipping() -> None:
    from flwr.serverapp.strategy import DifferentialPrivacyServerSideFixedClipping, FedAvg

    spec = Federated.model_validate(
        {
            "clients": 10,
            "rounds": 1,
            "fraction_fit": 0.3,
            "min_fit_clients": 4,
            "differential_privacy": {"noise_multiplier": 0.5, "clipping_norm": 1.5},
        }
    )
    built = build_strategy(spec)
    assert isinstance(built, DifferentialPrivacyServerSideFixedClipping)
    assert isinstance(built.strategy, FedAvg)
    assert (built.noise_multiplier, built.clipping_norm) == (0.5, 1.5)
    assert built.num_sampled_clients == 4  # max(int(10 x 0.3), min_fit_clients): Flower's rule


def test_flower_telemetry_is_off_once_modelhub_loads_its_client_app() -> None:
    env = {k: v for k, v in os.environ.items() if k != "FLWR_TELEMETRY_ENABLED"}
    code = (
        "import modelhub.training.federated.client_app\n"
        "import flwr.supercore.telemetry as telemetry\n"
        "print(telemetry.FLWR_TELEMETRY_ENABLED)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "0"
