"""What the training service knows of federated runs: checks, the job's section, lineage.

Kept apart from services/training.py so that the federated rules read in one place:

- `federated_problems`: what `pipelines create` can only check against the data (the
  partition column exists, enough partitions for the clients, the label and feature
  columns the tabular classifier reads), reported with the other spec problems.
- `federated_job`: the job fields the worker's federated runner reads.
- `federated_lineage`: what a registered version's lineage says of how it was trained.
"""

from __future__ import annotations

import re
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from modelhub.domain.hyperparameters import TabularHyperparameters
from modelhub.domain.pipelines import PipelineSpec
from modelhub.domain.records import Dataset
from modelhub.errors import InvalidInput, ModelhubError
from modelhub.stores.artifacts.base import ArtifactStore

Problems = list[tuple[str, str]]
ColumnValues = Callable[[Dataset, str], list[Any]]

# Column types a dataset's profile gives a numeric column: the CSV/JSONL profile's
# names, and Arrow's for Parquet.
_NUMERIC = re.compile(r"^(int|float|null|u?int(8|16|32|64)|float(16|32|64)|halffloat|double)$")


def federated_job(spec: PipelineSpec) -> dict[str, Any]:
    """The job's `federated` and `partitioning` sections (worker: federated.runner)."""
    if spec.federated is None:
        return {}
    ref = spec.datasets[0]
    return {
        "federated": spec.federated.model_dump(mode="json"),
        "partitioning": {"partition_by": ref.partition_by, "partition": ref.partition},
    }


def federated_lineage(spec: PipelineSpec) -> dict[str, Any]:
    """How a federated version was trained: strategy, rounds, clients, partitioning, DP.

    Empty for other runs. Only the options the strategy uses are named.
    """
    federated = spec.federated
    if federated is None:
        return {}
    from modelhub.training.federated.partitioning import Partitioning

    lineage: dict[str, Any] = {
        "engine": "flower",
        "strategy": federated.strategy.value,
        "rounds": federated.rounds,
        "clients": federated.clients,
        "partitioning": Partitioning.of(spec.datasets[0]).describe(),
        "fraction_fit": federated.fraction_fit,
        "local_epochs": federated.local_epochs,
    }
    if federated.strategy.value == "fedprox":
        lineage["proximal_mu"] = federated.proximal_mu
    elif federated.strategy.value == "fedtrimmedavg":
        lineage["trim_beta"] = federated.trim_beta
    elif federated.strategy.value == "fedadam":
        lineage["server_learning_rate"] = federated.server_learning_rate
    if federated.superlink is not None:  # the clients trained on the SuperNodes' own rows
        lineage["superlink"] = federated.superlink
        lineage["partitioning"] = "each SuperNode's data-path"
    dp = federated.differential_privacy
    if dp is not None:
        lineage["differential_privacy"] = {
            "mechanism": "server-side fixed clipping, Gaussian noise",
            "noise_multiplier": dp.noise_multiplier,
            "clipping_norm": dp.clipping_norm,
        }
    return lineage


def federated_problems(
    spec: PipelineSpec, datasets: list[Dataset], column_values: ColumnValues
) -> Problems:
    """Problems of a federated spec that only its dataset shows; [] for other specs.

    `datasets` are what the spec's references resolved to (the first is partitioned);
    `column_values(dataset, column)` reads one column of a dataset's file.
    """
    if spec.federated is None or not datasets:
        return []
    dataset, ref = datasets[0], spec.datasets[0]
    problems = _column_problems(spec, dataset)
    clients = spec.federated.clients
    if ref.partition_by is not None:
        if ref.partition_by not in dataset.columns:
            problems.append(
                (
                    "datasets[0].partition_by",
                    f"{dataset.name}@{dataset.version} has no column {ref.partition_by!r}; "
                    f"its columns: {', '.join(dataset.columns)}",
                )
            )
            return problems
        try:
            values = column_values(dataset, ref.partition_by)
        except ModelhubError as exc:
            return [*problems, ("datasets[0].partition_by", exc.message)]
        missing = sum(1 for value in values if value is None)
        if missing:
            problems.append(
                (
                    "datasets[0].partition_by",
                    f"{ref.partition_by!r} is empty in {missing} rows; every row needs a value",
                )
            )
        distinct = len({value for value in values if value is not None})
        if distinct < clients:
            problems.append(
                (
                    "federated.clients",
                    f"{clients} clients but {ref.partition_by!r} of {dataset.name}@"
                    f"{dataset.version} has {distinct} distinct values: "
                    "each client needs at least one",
                )
            )
    elif dataset.rows < clients:
        problems.append(
            (
                "federated.clients",
                f"{clients} clients but {dataset.name}@{dataset.version} holds {dataset.rows} "
                "rows: each client needs at least one",
            )
        )
    return problems


def _column_problems(spec: PipelineSpec, dataset: Dataset) -> Problems:
    """The label and feature columns the tabular classifier will read, as it reads them."""
    try:
        hp = TabularHyperparameters.parse(dict(spec.hyperparameters))
    except InvalidInput:
        return []  # the spec's own check has named the bad hyperparameters
    columns = dataset.columns
    where = f"{dataset.name}@{dataset.version}"
    problems: Problems = []
    if hp.label not in columns:
        problems.append(
            ("hyperparameters.label", f"{where} has no column {hp.label!r} to use as the label")
        )
    for index, name in enumerate(hp.features or []):
        if name not in columns:
            problems.append(
                (f"hyperparameters.features[{index}]", f"{where} has no column {name!r}")
            )
        elif not _NUMERIC.match(columns[name]):
            problems.append(
                (
                    f"hyperparameters.features[{index}]",
                    f"column {name!r} of {where} is {columns[name]}, not numeric",
                )
            )
    return problems


def column_reader(artifacts: ArtifactStore) -> ColumnValues:
    """Reads a column of a dataset from the artifact store (through a private copy)."""

    def values(dataset: Dataset, column: str) -> list[Any]:
        from modelhub.training.trainers.tabular_data import read_table

        with tempfile.TemporaryDirectory(prefix="modelhub-partitions-") as folder:
            path = Path(folder) / f"{dataset.name}.{dataset.format.value}"
            artifacts.materialize(dataset.digest, path)
            table = read_table(path)
            return list(table.column(column).to_pylist())

    return values
