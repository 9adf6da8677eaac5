"""`modelhub pipelines optimize` over a real server: profile, propose, measure, accept.

The pipeline is slow in two known ways: batch_size 1 (the optimizer step and the loop
cost as much as the work) and a checkpoint after every step. One module-scoped server
with a warm training worker runs every optimisation.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from modelhub import Client
from modelhub.client.local import LocalClient
from modelhub.domain.pipeline_optimization import PipelineOptimization
from modelhub.errors import Conflict, IllegalTransition, InvalidInput, NotFound
from modelhub.settings import Settings
from tests.integration.conftest import Cli, ServerProcess, clean_env, make_server, running
from tests.integration.training_engine import write_blobs

BUDGET = 320  # one epoch of the 320 training rows at batch_size 1


def slow_spec(name: str = "slow", seed: int = 0) -> str:
    return (
        f"name: {name}\ntype: pre_training\ntrainer: tabular_classifier\ndatasets: [blobs]\n"
        f"seed: {seed}\nmax_epochs: 3\nhyperparameters: {{batch_size: 1}}\n"
        f"checkpoint: {{every_steps: 1, keep_last: 1}}\nresult_model: {{name: {name}-model}}\n"
    )


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    root = tmp_path_factory.mktemp("optimize")
    srv = make_server(root, MODELHUB_TRAIN_WARM_WORKERS="1", MODELHUB_TRAIN_CPUS="2")
    with running(srv):
        with Client(srv.url, token=srv.token) as client:
            client.register_dataset(write_blobs(root / "blobs.csv", rows=400), "blobs")
            client.create_pipeline(slow_spec("slow"))
            client.create_pipeline(slow_spec("stale"))
        yield srv


@pytest.fixture(scope="module")
def client(server: ServerProcess) -> Iterator[Client]:
    with Client(server.url, token=server.token) as opened:
        yield opened


def verdict(
    client: Client, found: PipelineOptimization, timeout: float = 120
) -> PipelineOptimization:
    deadline = time.monotonic() + timeout
    while found.status.value in ("profiling", "measuring"):
        assert time.monotonic() < deadline, f"optimisation {found.id} is still {found.status}"
        time.sleep(0.1)
        found = client.get_optimization(found.pipeline, found.id)
    return found


def test_the_slow_pipeline_gets_a_bigger_batch_and_fewer_checkpoints(
    client: Client, server: ServerProcess, tmp_path: Path
) -> None:
    started = client.optimize_pipeline("slow", budget_steps=BUDGET)
    stale = client.optimize_pipeline("stale", budget_steps=BUDGET)
    client.create_pipeline(slow_spec("stale", seed=1))  # version 2, while version 1 profiles
    client.cancel_run(stale.baseline_run)  # no need to finish it
    assert started.status.value == "profiling" and started.pipeline_version == 1
    # nothing to accept yet, and one optimisation of a pipeline at a time
    with pytest.raises(IllegalTransition, match="proposes nothing to accept"):
        client.accept_optimization("slow", started.id)
    with pytest.raises(Conflict, match="still profiling"):
        client.optimize_pipeline("slow", budget_steps=BUDGET)

    found = verdict(client, started)
    assert found.status.value == "proposed", found.message
    changes = {c.field: (c.old, c.new) for c in found.changes}
    old_batch, new_batch = changes["hyperparameters.batch_size"]
    assert old_batch == 1 and new_batch > 1
    assert changes["hyperparameters.learning_rate"][1] > changes["hyperparameters.learning_rate"][0]
    assert changes["checkpoint.every_steps"][0] == 1
    assert changes["checkpoint.every_steps"][1] > 1
    assert all(c.reason for c in found.changes)
    before, after = found.before, found.after
    assert before is not None and after is not None
    assert before.steps == BUDGET and before.samples == BUDGET
    assert after.samples == BUDGET and after.steps == -(-BUDGET // new_batch)  # same samples
    assert before.share("checkpoint") > after.share("checkpoint")
    assert found.throughput_gain is not None and found.throughput_gain > 1.05
    assert after.samples_per_s > before.samples_per_s
    assert found.validation is not None and found.validation.holds
    # the profiling runs registered no model version
    with pytest.raises(NotFound):
        client.versions("slow-model")

    # Accepted from the CLI: the changed spec is the pipeline's version 2.
    cli = Cli("server", clean_env(MODELHUB_URL=server.url, MODELHUB_TOKEN=server.token), tmp_path)
    accepted = cli.json("pipelines", "optimize", "slow", "--accept")
    assert accepted["status"] == "accepted" and accepted["accepted_version"] == 2
    pipeline = client.get_pipeline("slow")
    assert pipeline.version == 2
    assert pipeline.spec["hyperparameters"]["batch_size"] == new_batch
    assert pipeline.spec["checkpoint"]["every_steps"] == changes["checkpoint.every_steps"][1]
    assert pipeline.spec["checkpoint"]["keep_last"] == 1  # the rest of the spec is kept
    with pytest.raises(Conflict, match="accepted already"):
        client.accept_optimization("slow")
    assert client.get_pipeline("slow").version == 2
    assert [o.id for o in client.list_optimizations("slow")] == [found.id]

    # The other pipeline changed since its optimisation started: accepting is refused.
    assert stale.pipeline_version == 1
    with pytest.raises(Conflict, match="changed since"):
        client.accept_optimization("stale", stale.id)
    assert client.get_pipeline("stale").version == 2
    assert client.get_pipeline("stale").spec["hyperparameters"]["batch_size"] == 1


def test_bad_inputs_change_nothing(client: Client) -> None:
    runs = len(client.list_runs(pipeline="slow"))
    with pytest.raises(NotFound, match="'nope' does not exist"):
        client.optimize_pipeline("nope")
    for budget in (0, 4, 10_001):
        with pytest.raises(InvalidInput, match="budget_steps must be 5-10000"):
            client.optimize_pipeline("slow", budget_steps=budget)
    with pytest.raises(InvalidInput, match="tolerance must be 0-1"):
        client.optimize_pipeline("slow", tolerance=1.5)
    with pytest.raises(NotFound, match="no optimisation 999"):
        client.get_optimization("slow", 999)
    with pytest.raises(NotFound, match="no optimisation 999"):
        client.accept_optimization("slow", 999)
    assert len(client.list_runs(pipeline="slow")) == runs


def test_the_local_client_refuses_alike(tmp_path: Path) -> None:
    with LocalClient(Settings(home=tmp_path / "home"), actor="ada") as local:
        with pytest.raises(NotFound, match="'nope' does not exist"):
            local.optimize_pipeline("nope")
        with pytest.raises(InvalidInput, match="budget_steps must be 5-10000"):
            local.optimize_pipeline("nope", budget_steps=1)
        with pytest.raises(NotFound, match="pipeline 'nope' does not exist"):
            local.accept_optimization("nope")
