"""The federated run's data: a held-out validation split for the server, a file per client.

The simulation stands in for clients whose data never leaves them: the runner reads
the run's dataset once, keeps the validation rows (the server's centralised
evaluation), partitions the training rows and writes each client's share to its own
Parquet file. From then on a client reads only its file, with the same checks as the
tabular trainer: a client whose rows are bad (a NaN in a feature) fails on its own,
as a real client with bad local data would, and the others go on.

The normalisation (mean and std per feature) is what the registered model applies to
every input. In the simulation the server computes it over the training rows, skipping
values that are not finite so that one client's bad row does not stop the run; a
real deployment would ship the statistics with the task instead.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from modelhub.domain.hyperparameters import TabularHyperparameters
from modelhub.errors import InvalidInput
from modelhub.networks.tabular import Label
from modelhub.training.federated.partitioning import Partitioning, partition_rows
from modelhub.training.trainers.tabular_data import (
    feature_columns,
    label_classes,
    read_table,
    split_rows,
    table_arrays,
)

Floats = npt.NDArray[np.float32]
Classes = npt.NDArray[np.int64]


@dataclass(frozen=True)
class ClientTask:
    """What every client needs to train its share: the network, the columns and the
    normalisation, and the local training settings. Sent to clients as JSON."""

    features: list[str]
    label: str
    classes: list[Label]
    hidden: list[int]
    mean: list[float]
    std: list[float]
    batch_size: int
    learning_rate: float
    weight_decay: float
    local_epochs: int
    seed: int
    data_dir: str = ""

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> ClientTask:
        return cls(**json.loads(text))


@dataclass(frozen=True)
class FederatedData:
    task: ClientTask
    x_val: Floats  # normalised
    y_val: Classes
    client_rows: list[int]


def client_file(data_dir: Path | str, client: int) -> Path:
    return Path(data_dir) / f"client-{client:04d}.parquet"


def prepare(
    dataset: Path,
    hp: TabularHyperparameters,
    partitioning: Partitioning,
    clients: int,
    local_epochs: int,
    seed: int,
    validation_split: float,
    data_dir: Path,
) -> FederatedData:
    """Split off the validation rows, partition the rest and write each client's file.

    Raises InvalidInput for unusable data: a missing label or feature column, a single
    class, NaN in a validation row, fewer partitions than clients.
    """
    import pyarrow as pa

    table = read_table(dataset)
    if table.num_rows < 2:
        raise InvalidInput(
            f"{dataset.name} holds {table.num_rows} rows; federated training needs more"
        )
    features = feature_columns(table, dataset.name, hp.label, hp.features)
    classes = label_classes(table, hp.label)
    train_idx, val_idx = split_rows(table.num_rows, validation_split, seed)
    validation = table.take(pa.array(val_idx))
    x_val, y_val = table_arrays(validation, features, hp.label, classes)
    training = table.take(pa.array(train_idx))
    _, y_train = table_arrays(training, [], hp.label, classes)
    groups = None
    if partitioning.partition_by is not None:
        if partitioning.partition_by not in training.column_names:
            raise InvalidInput(
                f"partition_by column {partitioning.partition_by!r} is not in {dataset.name}",
                {"field": "datasets[0].partition_by", "value": partitioning.partition_by},
            )
        groups = training.column(partitioning.partition_by).to_pylist()
    shares = partition_rows(partitioning, clients, seed, y_train, groups)
    mean, std = _finite_stats(training, features)
    data_dir.mkdir(parents=True, exist_ok=True)
    for client, rows in enumerate(shares):
        _write_parquet(training.take(pa.array(rows)), client_file(data_dir, client))
    task = ClientTask(
        features=features,
        label=hp.label,
        classes=classes,
        hidden=list(hp.hidden),
        mean=[float(v) for v in mean],
        std=[float(v) for v in std],
        batch_size=hp.batch_size,
        learning_rate=hp.learning_rate,
        weight_decay=hp.weight_decay,
        local_epochs=local_epochs,
        seed=seed,
        data_dir=str(data_dir),
    )
    x_norm = ((x_val - mean) / std).astype(np.float32)
    return FederatedData(task, x_norm, y_val, [len(rows) for rows in shares])


def load_client(task: ClientTask, path: Path) -> tuple[Floats, Classes]:
    """A client's rows, checked as the tabular trainer checks them, normalised."""
    table = read_table(path)
    if table.num_rows == 0:
        raise InvalidInput(f"{path.name} holds no rows", {"path": str(path)})
    x, y = table_arrays(table, task.features, task.label, list(task.classes))
    mean = np.asarray(task.mean, dtype=np.float32)
    std = np.asarray(task.std, dtype=np.float32)
    return ((x - mean) / std).astype(np.float32), y


def _finite_stats(table: Any, features: list[str]) -> tuple[Floats, Floats]:
    means, stds = [], []
    for name in features:
        column = table.column(name).to_numpy(zero_copy_only=False).astype(np.float64)
        finite = column[np.isfinite(column)]
        mean = float(finite.mean()) if len(finite) else 0.0
        std = float(finite.std()) if len(finite) else 1.0
        means.append(mean)
        stds.append(std if std > 0 else 1.0)
    return np.asarray(means, dtype=np.float32), np.asarray(stds, dtype=np.float32)


def _write_parquet(table: Any, path: Path) -> None:
    import pyarrow.parquet as pq

    tmp = path.with_suffix(".tmp")
    pq.write_table(table, tmp)
    os.replace(tmp, path)
