"""How a federated run splits a dataset's rows among its clients.

Three ways, named in the spec's dataset reference:

- `partition_by: COLUMN`: the rows of one value stay together (a persona's chats, a
  hospital's records). The distinct values, sorted, go to clients in turn: value i to
  client i mod clients, so with as many clients as values each client holds one.
- `partition: iid` (the default): a seeded shuffle cut into equal shares.
- `partition: dirichlet(alpha)`: label skew. For each class, the shares of the clients
  are drawn from Dirichlet(alpha); a small alpha gives each client few classes. Draws
  that leave a client without rows are drawn again (a bounded number of times).

Everything is a pure function of its inputs and the seed: the same spec partitions the
same way on every attempt.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from modelhub.domain.pipelines import DatasetRef, dirichlet_alpha
from modelhub.errors import InvalidInput

Rows = npt.NDArray[np.int64]
MAX_DIRICHLET_DRAWS = 100


@dataclass(frozen=True)
class Partitioning:
    """A dataset reference's partitioning: by a column's values, iid, or Dirichlet skew."""

    partition_by: str | None = None
    partition: str | None = None

    @classmethod
    def of(cls, ref: DatasetRef) -> Partitioning:
        return cls(partition_by=ref.partition_by, partition=ref.partition)

    @classmethod
    def from_json(cls, data: dict[str, Any] | None) -> Partitioning:
        data = data or {}
        return cls(partition_by=data.get("partition_by"), partition=data.get("partition"))

    def to_json(self) -> dict[str, Any]:
        return {"partition_by": self.partition_by, "partition": self.partition}

    @property
    def alpha(self) -> float | None:
        """Dirichlet's alpha, when the partitioning is dirichlet(alpha)."""
        return dirichlet_alpha(self.partition) if self.partition else None

    def describe(self) -> str:
        """`partition_by=COLUMN`, `iid` or `dirichlet(ALPHA)`: how lineage names it."""
        if self.partition_by is not None:
            return f"partition_by={self.partition_by}"
        return self.partition or "iid"


def by_value(values: Sequence[Any], clients: int) -> list[Rows]:
    """Rows grouped by value; the sorted distinct values go to the clients in turn.

    InvalidInput when a value is missing (None) or there are fewer values than clients.
    """
    missing = sum(1 for v in values if v is None)
    if missing:
        raise InvalidInput(
            f"the partition column has {missing} empty values; every row needs one",
            {"rows": missing},
        )
    distinct = sorted(set(values))
    if len(distinct) < clients:
        raise InvalidInput(
            f"{clients} clients but only {len(distinct)} distinct partition values",
            {"clients": clients, "partitions": len(distinct)},
        )
    client_of = {value: i % clients for i, value in enumerate(distinct)}
    owners = np.fromiter((client_of[v] for v in values), dtype=np.int64, count=len(values))
    return [np.flatnonzero(owners == c).astype(np.int64) for c in range(clients)]


def iid(n: int, clients: int, seed: int) -> list[Rows]:
    """A seeded shuffle of `n` rows cut into `clients` shares that differ by one row at most."""
    _enough_rows(n, clients)
    order = np.random.default_rng(seed).permutation(n)
    return [np.sort(share).astype(np.int64) for share in np.array_split(order, clients)]


def dirichlet(labels: npt.NDArray[Any], clients: int, alpha: float, seed: int) -> list[Rows]:
    """Label-skewed shares: each class's rows split by proportions drawn from Dirichlet(alpha).

    Every client gets at least one row; InvalidInput when MAX_DIRICHLET_DRAWS draws
    could not manage that (alpha too small for this many clients and rows).
    """
    _enough_rows(len(labels), clients)
    rng = np.random.default_rng(seed)
    classes = np.unique(labels)
    for _ in range(MAX_DIRICHLET_DRAWS):
        shares: list[list[Rows]] = [[] for _ in range(clients)]
        for label in classes:
            rows = np.flatnonzero(labels == label)
            rng.shuffle(rows)
            proportions = rng.dirichlet(np.full(clients, alpha))
            cuts = (np.cumsum(proportions)[:-1] * len(rows)).astype(np.int64)
            for client, chunk in enumerate(np.split(rows, cuts)):
                shares[client].append(chunk)
        joined = [np.sort(np.concatenate(parts)).astype(np.int64) for parts in shares]
        if all(len(share) for share in joined):
            return joined
    raise InvalidInput(
        f"dirichlet({alpha:g}) left a client without rows in {MAX_DIRICHLET_DRAWS} draws: "
        "use a larger alpha or fewer clients",
        {"alpha": alpha, "clients": clients},
    )


def partition_rows(
    partitioning: Partitioning,
    clients: int,
    seed: int,
    labels: npt.NDArray[Any],
    groups: Sequence[Any] | None = None,
) -> list[Rows]:
    """Each client's row indices (ascending, disjoint, together every row).

    `labels` are the rows' class indices (for Dirichlet), `groups` the partition column's
    values (for partition_by).
    """
    if partitioning.partition_by is not None:
        if groups is None:
            raise ValueError("partition_by needs the column's values")
        return by_value(groups, clients)
    alpha = partitioning.alpha
    if alpha is not None:
        return dirichlet(labels, clients, alpha, seed)
    return iid(len(labels), clients, seed)


def _enough_rows(n: int, clients: int) -> None:
    if n < clients:
        raise InvalidInput(
            f"{clients} clients but only {n} training rows to share among them",
            {"clients": clients, "rows": n},
        )
