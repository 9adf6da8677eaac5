"""A federated pipeline is checked against its dataset when it is created: a partition
column that is not there, more clients than partitions (or rows), and label or feature
columns the tabular classifier cannot read are each named under their field, with the
spec's other problems, and nothing is stored."""

from __future__ import annotations

from pathlib import Path

import pytest

from modelhub.domain.auth import Caller, Role
from modelhub.errors import InvalidInput
from modelhub.services import Services

ADMIN = Caller(name="root", role=Role.ADMIN)


def spec(dataset: str, federated: str, extra: str = "") -> str:
    return (
        "name: fed\ntype: federated_learning\ntrainer: tabular_classifier\n"
        f"datasets: [{dataset}]\nfederated: {federated}\nresult_model: {{name: m}}\n{extra}"
    )


@pytest.fixture(autouse=True)
def _sites(services: Services, tmp_path: Path) -> None:
    csv = tmp_path / "sites.csv"
    rows = "".join(f"{i},{i * 2},{'abc'[i % 3]},{i % 2}\n" for i in range(12))
    csv.write_text("a,b,site,label\n" + rows)
    services.datasets.register(ADMIN, csv, "sites")


def refused(services: Services, text: str) -> dict[str, str]:
    with pytest.raises(InvalidInput) as caught:
        services.training.create_pipeline(ADMIN, text)
    assert services.training.list_pipelines(ADMIN) == []  # nothing stored
    return {e["field"]: e["message"] for e in caught.value.details["errors"]}


def test_a_partition_column_the_dataset_lacks_is_named_with_its_columns(
    services: Services,
) -> None:
    problems = refused(
        services, spec("{name: sites, partition_by: region}", "{clients: 2, rounds: 1}")
    )
    assert "has no column 'region'" in problems["datasets[0].partition_by"]
    assert "a, b, site, label" in problems["datasets[0].partition_by"]


def test_a_partition_column_with_empty_values_is_refused(
    services: Services, tmp_path: Path
) -> None:
    csv = tmp_path / "regions.csv"
    csv.write_text("a,region,label\n1,7,0\n2,,1\n3,8,0\n4,9,1\n")
    services.datasets.register(ADMIN, csv, "regions")
    problems = refused(
        services, spec("{name: regions, partition_by: region}", "{clients: 2, rounds: 1}")
    )
    assert "'region' is empty in 1 rows" in problems["datasets[0].partition_by"]


def test_more_clients_than_partition_values_or_rows_is_refused(services: Services) -> None:
    by_site = refused(
        services, spec("{name: sites, partition_by: site}", "{clients: 4, rounds: 1}")
    )
    assert "4 clients but 'site' of sites@1 has 3 distinct values" in by_site["federated.clients"]
    iid = refused(services, spec("{name: sites, partition: iid}", "{clients: 13, rounds: 1}"))
    assert "13 clients but sites@1 holds 12 rows" in iid["federated.clients"]
    skewed = refused(
        services, spec("{name: sites, partition: dirichlet(0.5)}", "{clients: 20, rounds: 1}")
    )
    assert "holds 12 rows" in skewed["federated.clients"]


def test_label_and_feature_columns_are_checked_with_every_other_problem(
    services: Services,
) -> None:
    problems = refused(
        services,
        spec(
            "{name: sites, partition_by: region}",
            "{clients: 2, rounds: 1}",
            extra="hyperparameters: {label: outcome, features: [a, site, height]}\n",
        ),
    )
    assert "no column 'outcome'" in problems["hyperparameters.label"]
    assert "'site' of sites@1 is string, not numeric" in problems["hyperparameters.features[1]"]
    assert "no column 'height'" in problems["hyperparameters.features[2]"]
    assert "has no column 'region'" in problems["datasets[0].partition_by"]


def test_a_spec_that_fits_its_data_is_stored(services: Services) -> None:
    created = services.training.create_pipeline(
        ADMIN,
        spec(
            "{name: sites, partition_by: site}",
            "{clients: 3, rounds: 2}",
            extra="hyperparameters: {features: [a, b]}\n",
        ),
    )
    assert created.pipeline.name == "fed"
    assert services.training.get_pipeline(ADMIN, "fed").spec["federated"]["clients"] == 3
