"""Partitions of a federated run's rows: disjoint, covering every row, deterministic by seed;
partition_by keeps a value's rows together; Dirichlet(alpha) skews the labels."""

from __future__ import annotations

import numpy as np
import pytest

from modelhub.errors import InvalidInput
from modelhub.training.federated.partitioning import (
    Partitioning,
    by_value,
    dirichlet,
    iid,
    partition_rows,
)

LABELS = np.array([i % 4 for i in range(400)])


def covers_disjointly(shares: list[np.ndarray], n: int) -> bool:
    joined = np.concatenate(shares)
    return len(joined) == n and set(joined.tolist()) == set(range(n))


def test_iid_shares_are_disjoint_even_and_fixed_by_the_seed() -> None:
    shares = iid(103, 4, seed=7)
    assert covers_disjointly(shares, 103)
    assert sorted(len(s) for s in shares) == [25, 26, 26, 26]
    assert all(np.array_equal(a, b) for a, b in zip(shares, iid(103, 4, seed=7), strict=True))
    assert not all(np.array_equal(a, b) for a, b in zip(shares, iid(103, 4, seed=8), strict=True))


def test_partition_by_keeps_each_value_on_one_client_in_sorted_order() -> None:
    values = ["west", "north", "south", "north", "west", "east", "south", "east"]
    shares = by_value(values, 4)
    assert covers_disjointly(shares, len(values))
    owners = [[values[i] for i in share] for share in shares]
    assert [set(o) for o in owners] == [{"east"}, {"north"}, {"south"}, {"west"}]
    two = by_value(values, 2)  # sorted values to clients in turn: east, south | north, west
    assert [{values[i] for i in share} for share in two] == [{"east", "south"}, {"north", "west"}]


def test_partition_by_refuses_more_clients_than_values_and_empty_values() -> None:
    with pytest.raises(InvalidInput, match="3 clients but only 2 distinct"):
        by_value(["a", "b", "a"], 3)
    with pytest.raises(InvalidInput, match="1 empty values"):
        by_value(["a", None, "b"], 2)


def label_shares(shares: list[np.ndarray]) -> np.ndarray:
    """Each client's largest class's share of its rows."""
    return np.array([np.bincount(LABELS[s], minlength=4).max() / len(s) for s in shares])


def test_dirichlet_skews_labels_more_as_alpha_falls_and_is_fixed_by_the_seed() -> None:
    skewed = dirichlet(LABELS, 8, alpha=0.1, seed=3)
    even = dirichlet(LABELS, 8, alpha=1000.0, seed=3)
    for shares in (skewed, even):
        assert covers_disjointly(shares, len(LABELS))
        assert all(len(s) > 0 for s in shares)
    assert label_shares(skewed).mean() > 0.7  # most clients see mostly one class
    assert label_shares(even).mean() < 0.4  # about a quarter each
    again = dirichlet(LABELS, 8, alpha=0.1, seed=3)
    assert all(np.array_equal(a, b) for a, b in zip(skewed, again, strict=True))


def test_more_clients_than_rows_is_refused() -> None:
    with pytest.raises(InvalidInput, match="5 clients but only 4 training rows"):
        iid(4, 5, seed=0)
    with pytest.raises(InvalidInput, match="5 clients but only 4 training rows"):
        dirichlet(np.array([0, 1, 0, 1]), 5, alpha=1.0, seed=0)


def test_partition_rows_follows_the_dataset_reference() -> None:
    groups = [f"g{i % 3}" for i in range(len(LABELS))]
    by_column = partition_rows(Partitioning(partition_by="g"), 3, 0, LABELS, groups)
    assert [len({groups[i] for i in s}) for s in by_column] == [1, 1, 1]
    skewed = partition_rows(Partitioning(partition="dirichlet(0.1)"), 8, 3, LABELS)
    assert all(
        np.array_equal(a, b) for a, b in zip(skewed, dirichlet(LABELS, 8, 0.1, 3), strict=True)
    )
    assert len(partition_rows(Partitioning(), 4, 0, LABELS)) == 4  # iid by default
    assert Partitioning(partition="dirichlet(0.3)").describe() == "dirichlet(0.3)"
    assert Partitioning(partition_by="site").describe() == "partition_by=site"
    assert Partitioning().describe() == "iid"
