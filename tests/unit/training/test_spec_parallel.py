"""The spec's distributed, engine and federated fields: each bad value refused with the rest."""

from __future__ import annotations

import pytest

from modelhub.domain.pipelines import (
    Engine,
    FederatedStrategy,
    PipelineSpec,
    dirichlet_alpha,
)
from modelhub.errors import InvalidInput
from modelhub.training.spec import load_spec

TABULAR = """
name: intents
type: pre_training
trainer: tabular_classifier
datasets: [persona_intents]
result_model: {name: intent-classifier}
"""

FEDERATED = """
name: intents-fl
type: federated_learning
trainer: tabular_classifier
datasets: [{name: persona_chats, partition_by: persona_id}]
federated: {clients: 10, rounds: 5, fraction_fit: 0.5, strategy: fedprox,
            min_available_clients: 8, differential_privacy: {noise_multiplier: 0.5,
            clipping_norm: 1.0}}
result_model: {name: intent-classifier}
"""


def problems(text: str) -> dict[str, str]:
    with pytest.raises(InvalidInput) as caught:
        load_spec(text)
    return {error["field"]: error["message"] for error in caught.value.details["errors"]}


def test_a_data_parallel_spec_reads_back() -> None:
    spec = load_spec(TABULAR + "distributed: {workers: 2}\nengine: ray\n")
    assert spec.distributed is not None
    assert (spec.distributed.workers, spec.distributed.backend) == (2, "gloo")
    assert spec.engine == Engine.RAY
    assert load_spec(TABULAR).engine is None  # the scheduler chooses


def test_a_federated_spec_reads_back() -> None:
    spec = load_spec(FEDERATED)
    assert spec.federated is not None
    assert spec.federated.strategy is FederatedStrategy.FEDPROX
    assert spec.federated.differential_privacy is not None
    assert spec.datasets[0].partition_by == "persona_id"
    dirichlet = FEDERATED.replace("partition_by: persona_id", "partition: dirichlet(0.3)")
    assert load_spec(dirichlet).datasets[0].partition == "dirichlet(0.3)"


def test_every_bad_parallel_value_is_named_at_once() -> None:
    text = TABULAR + (
        "distributed: {workers: 0, backend: mpi}\nengine: 'spark cluster'\n"
        "federated: {clients: 2, rounds: 1}\n"
    )
    found = problems(text)
    assert "greater than or equal to 1" in found["distributed.workers"]
    assert "'gloo' or 'nccl'" in found["distributed.backend"]
    # Not an engine name at all; a well-formed name is checked by the server against the
    # engines it offers, plugins included (tests/integration/test_plugins.py).
    assert "should match pattern" in found["engine"]
    assert found["federated"] == "only type federated_learning takes a federated section"


def test_nccl_needs_a_gpu() -> None:
    found = problems(TABULAR + "distributed: {workers: 2, backend: nccl}\n")
    assert found["distributed.backend"] == "nccl runs on GPUs: set resources.gpus, or use gloo"
    gpu = TABULAR + "distributed: {workers: 2, backend: nccl}\nresources: {gpus: 1}\n"
    assert load_spec(gpu).distributed is not None


@pytest.mark.parametrize(
    ("good", "bad", "field", "message"),
    [
        ("strategy: fedprox", "strategy: fedsgd", "federated.strategy", "Input should be 'fedavg'"),
        ("clients: 10", "clients: 100000", "federated.clients", "less than or equal to 1000"),
        (
            "min_available_clients: 8",
            "min_available_clients: 11",
            "federated.min_available_clients",
            "more than the 10",
        ),
        ("fraction_fit: 0.5", "fraction_fit: 1.5", "federated.fraction_fit", "or equal to 1"),
        (
            "noise_multiplier: 0.5",
            "noise_multiplier: 101",
            "federated.differential_privacy.noise_multiplier",
            "less than or equal to 100",
        ),
        (
            "clipping_norm: 1.0",
            "clipping_norm: 0",
            "federated.differential_privacy.clipping_norm",
            "greater than 0",
        ),
    ],
)
def test_bad_federated_values(good: str, bad: str, field: str, message: str) -> None:
    found = problems(FEDERATED.replace(good, bad))
    assert message in found[field]


def test_federated_rules_across_fields() -> None:
    no_section = FEDERATED.split("federated:")[0] + "result_model: {name: intent-classifier}\n"
    assert problems(no_section)["federated"] == "federated_learning needs a federated section"
    both = FEDERATED + "distributed: {workers: 2}\n"
    assert problems(both)["distributed"] == "a federated run cannot also be data-parallel"
    on_ray = problems(FEDERATED + "engine: ray\n")["engine"]
    assert on_ray.startswith("a federated run trains on the local engine")
    text_trainer = FEDERATED.replace("tabular_classifier", "char_lm")
    assert "char_lm cannot run federated_learning" in problems(text_trainer)["trainer"]
    two = FEDERATED.replace("persona_id}]", "persona_id}, other]")
    assert problems(two)["datasets"] == "a federated run reads one dataset, partitioned"


def test_partitions_belong_to_federated_runs_and_are_well_formed() -> None:
    found = problems(TABULAR.replace("[persona_intents]", "[{name: x, partition: iid}]"))
    assert found["datasets[0]"] == "only a federated_learning run partitions its data"
    both = FEDERATED.replace("partition_by: persona_id", "partition_by: p, partition: iid")
    assert "not both" in problems(both)["datasets[0]"]
    for bad in ("dirichlet(0)", "dirichlet(-1)", "dirichlet(x)", "dirichlet(1e9)", "zipf"):
        found = problems(FEDERATED.replace("partition_by: persona_id", f"partition: '{bad}'"))
        assert "use iid or dirichlet(alpha)" in found["datasets[0].partition"]


def test_dirichlet_alpha_reads_the_number() -> None:
    assert dirichlet_alpha("dirichlet(0.3)") == 0.3
    assert dirichlet_alpha("dirichlet( 2 )") == 2.0
    assert dirichlet_alpha("dirichlet(" + "9" * 40 + ")") is None


def test_the_models_enforce_the_rules_when_built_directly() -> None:
    with pytest.raises(ValueError, match="nccl runs on GPUs"):
        PipelineSpec.model_validate(
            {
                "name": "x",
                "type": "pre_training",
                "trainer": "tabular_classifier",
                "datasets": ["d"],
                "result_model": {"name": "m"},
                "distributed": {"workers": 2, "backend": "nccl"},
            }
        )


@pytest.mark.parametrize(
    ("address", "message"),
    [
        ("127.0.0.1", "must be host:port"),
        ("http://127.0.0.1:9091", "must be host:port"),
        ("127.0.0.1:0", "port must be 1-65535, not 0"),
        ("127.0.0.1:65536", "port must be 1-65535, not 65536"),
        ("a" * 300 + ":9091", "at most 260 characters"),
    ],
)
def test_a_bad_superlink_address_is_named(address: str, message: str) -> None:
    found = problems(FEDERATED.replace("clients: 10,", f"clients: 10, superlink: '{address}',"))
    assert message in found["federated.superlink"]


def test_a_superlink_address_reads_back() -> None:
    for address in ("127.0.0.1:9091", "superlink.example.org:443", "[::1]:9091"):
        text = FEDERATED.replace("clients: 10,", f"clients: 10, superlink: '{address}',")
        spec = load_spec(text)
        assert spec.federated is not None and spec.federated.superlink == address
    assert load_spec(FEDERATED).federated.superlink is None  # type: ignore[union-attr]
