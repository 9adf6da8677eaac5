"""Federated runs through the real scheduler: Flower's simulation on a private local Ray.

Three runs share one engine and train at once (each starts its own Ray, which is the
slow part): a private run (FedAvg with Flower's DP wrapper) on clean data, and two on
data where one site's client meets a row without a value. With min_fit_clients 2 the
rounds go on without that client and its failure is a run metric; with 3 the first
round fails and the run fails with that reason.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from modelhub.domain.runs import Run, RunStatus
from modelhub.errors import NotFound
from modelhub.services import Services
from modelhub.training.trainers import tabular
from tests.integration.federated_data import write_sites
from tests.integration.training_engine import ADMIN, engine, finished, tabular_spec

ROUNDS = 3
SHARED = "{batch_size: 8, learning_rate: 0.05, hidden: [16]}"


def federated_spec(name: str, dataset: str, federated: str) -> str:
    return tabular_spec(
        name,
        type="federated_learning",
        datasets=f"[{{name: {dataset}, partition_by: site}}]",
        hyperparameters=SHARED,
        federated=federated,
        resources="{cpus: 1, memory: 3GiB}",
    )


@dataclass
class FederatedRuns:
    services: Services
    private: Run
    tolerant: Run
    strict: Run


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FederatedRuns]:
    tmp = tmp_path_factory.mktemp("federated")
    with engine(tmp, train_cpus=3.0, train_memory="16GiB") as services:
        services.datasets.register(ADMIN, write_sites(tmp / "sites.csv"), "sites")
        broken = write_sites(tmp / "broken.csv", broken_site="west")
        services.datasets.register(ADMIN, broken, "sites-broken")
        specs = {
            "private": federated_spec(
                "fed-private",
                "sites",
                f"{{clients: 3, rounds: {ROUNDS}, fraction_evaluate: 0.0, "
                "differential_privacy: {noise_multiplier: 0.05, clipping_norm: 5.0}}",
            ),
            "tolerant": federated_spec(
                "fed-tolerant",
                "sites-broken",
                "{clients: 3, rounds: 2, strategy: fedprox, proximal_mu: 0.01, min_fit_clients: 2}",
            ),
            "strict": federated_spec(
                "fed-strict",
                "sites-broken",
                "{clients: 3, rounds: 2, fraction_evaluate: 0.0, min_fit_clients: 3}",
            ),
        }
        started = {}
        for key, text in specs.items():
            services.training.create_pipeline(ADMIN, text)
            started[key] = services.training.start(ADMIN, text.split("\n", 1)[0][6:])
        services.training.start_scheduler()
        done = {key: finished(services, run.id, timeout=280) for key, run in started.items()}
        yield FederatedRuns(services, **done)


def values(services: Services, run: Run, name: str) -> dict[int, float]:
    return {p.step: p.value for p in services.training.metrics(ADMIN, run.id, name)}


def test_a_private_run_registers_a_tabular_version_whose_lineage_names_its_setup(
    runs: FederatedRuns,
) -> None:
    services, run = runs.services, runs.private
    assert run.status is RunStatus.COMPLETED, run.error
    assert run.result_version == 1
    rounds = list(range(1, ROUNDS + 1))
    for name in ("train_loss", "val_loss", "val_accuracy", "clients_sampled", "clients_failed"):
        assert sorted(values(services, run, name)) == rounds, name
    assert set(values(services, run, "clients_sampled").values()) == {3.0}
    assert run.metrics["val_accuracy"] >= 0.9
    assert run.metrics["val_accuracy"] == values(services, run, "val_accuracy")[ROUNDS]
    assert run.progress == 100
    assert [c.step for c in services.training.checkpoints(ADMIN, run.id)] == rounds

    version = services.registry.get("fed-private-model@1")
    federated = version.lineage.federated
    assert (federated["strategy"], federated["rounds"], federated["clients"]) == ("fedavg", 3, 3)
    assert federated["partitioning"] == "partition_by=site"
    assert federated["differential_privacy"]["noise_multiplier"] == 0.05
    assert federated["differential_privacy"]["clipping_norm"] == 5.0
    assert version.metrics["val_accuracy"] == run.metrics["val_accuracy"]

    graph = services.lineage.graph("fed-private-model@1")
    run_node = next(node for node in graph.nodes if node.id == f"run:{run.id}")
    assert run_node.details["strategy"] == "fedavg"
    assert run_node.details["partitioning"] == "partition_by=site"
    assert "noise_multiplier 0.05" in run_node.details["differential_privacy"]

    card = services.cards.card("fed-private-model@1").text
    assert "- federated: engine flower, strategy fedavg, rounds 3, clients 3" in card
    assert "differential_privacy noise_multiplier 0.05, clipping_norm 5.0" in card

    folder = runs.services.settings.home / "fed-private-download"
    services.registry.download("fed-private-model@1", folder)
    served = tabular.load(folder)
    trained = tabular.load(services.training.run_dir(run.id) / "output")
    rows = [{"a": 3.1, "b": -2.9}, {"a": -0.2, "b": 0.4}, {"a": 2.5, "b": -3.5}]
    assert served.predict(rows) == trained.predict(rows) == [1, 0, 1]
    flat = [p for row in served.predict_proba(rows) for p in row]
    assert flat == pytest.approx([p for row in trained.predict_proba(rows) for p in row])


def test_a_client_that_fails_each_round_is_a_metric_when_the_others_suffice(
    runs: FederatedRuns,
) -> None:
    services, run = runs.services, runs.tolerant
    assert run.status is RunStatus.COMPLETED, run.error
    assert values(services, run, "clients_sampled") == {1: 3.0, 2: 3.0}
    assert values(services, run, "clients_failed") == {1: 1.0, 2: 1.0}
    assert sorted(values(services, run, "val_accuracy")) == [1, 2]
    assert sorted(values(services, run, "clients_eval_loss")) == [1, 2]  # federated evaluation
    log = services.training.logs(ADMIN, run.id).decode()
    assert "round 1: a client failed" in log
    assert "client 2: feature column 'a' holds NaN" in log  # west, the third site sorted
    lineage = services.registry.get("fed-tolerant-model@1").lineage.federated
    assert (lineage["strategy"], lineage["proximal_mu"]) == ("fedprox", 0.01)


def test_a_round_below_min_fit_clients_fails_the_run_with_that_reason(
    runs: FederatedRuns,
) -> None:
    services, run = runs.services, runs.strict
    assert run.status is RunStatus.FAILED
    assert run.error_code == "unavailable"
    assert run.error is not None
    assert "round 1: 2 of 3 sampled clients trained, fewer than min_fit_clients (3)" in run.error
    assert "feature column 'a' holds NaN" in run.error
    assert run.attempts == 1  # a reason, not a crash: not retried
    assert values(services, run, "clients_failed") == {1: 1.0}
    with pytest.raises(NotFound):
        services.registry.get("fed-strict-model@latest")
