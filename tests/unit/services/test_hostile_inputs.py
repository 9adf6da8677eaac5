"""What the CLI's local mode hands the services straight from argv (issue 19, section 6).

An undecodable byte in an argument arrives as a lone surrogate, and a number as
wide as the user typed it; each reached SQLite and came back as an uncaught error.
"""

from __future__ import annotations

import pytest

from modelhub.domain.auth import Caller, Role
from modelhub.domain.queries import VersionQuery
from modelhub.errors import InvalidInput
from modelhub.services import Services

ADMIN = Caller(name="admin", role=Role.ADMIN)


def test_search_text_with_a_lone_surrogate_is_invalid_input(services: Services) -> None:
    with pytest.raises(InvalidInput, match="lone surrogate"):
        services.registry.search(VersionQuery(text="caf\udce9"))
    with pytest.raises(InvalidInput):
        services.registry.search(VersionQuery(tags={"team": "\udce9"}))
    with pytest.raises(InvalidInput, match="at most 64 tags"):
        services.registry.search(VersionQuery(tags={f"k{i}": "v" for i in range(1000)}))


def test_search_offset_beyond_64_bits_is_invalid_input(services: Services) -> None:
    with pytest.raises(InvalidInput, match="offset"):
        services.registry.search(VersionQuery(offset=2**63))
    assert services.registry.search(VersionQuery(offset=2**63 - 1)).items == []


def test_gc_grace_beyond_the_calendar_is_invalid_input(services: Services) -> None:
    with pytest.raises(InvalidInput, match="grace_seconds"):
        services.registry.gc(2**62)


def test_audit_filters_are_bounded(services: Services) -> None:
    with pytest.raises(InvalidInput, match="lone surrogate"):
        services.audit.list(ADMIN, actor="\udcff")
    with pytest.raises(InvalidInput, match="since"):
        services.audit.list(ADMIN, since="9" * 5000 + "d")
    with pytest.raises(InvalidInput, match="since"):
        services.audit.list(ADMIN, since="99999999999d")
    assert services.audit.list(ADMIN, since="36500d") == services.audit.list(ADMIN)


def test_dataset_versions_beyond_64_bits_are_invalid_input(services: Services) -> None:
    for selector in (str(2**63), "9" * 5000):
        with pytest.raises(InvalidInput, match="invalid dataset version"):
            services.datasets.get(ADMIN, f"d@{selector}")


def test_run_listing_limit_is_bounded(services: Services) -> None:
    with pytest.raises(InvalidInput, match="limit"):
        services.training.list_runs(ADMIN, limit=2**63)
    assert services.training.list_runs(ADMIN, limit=1000) == []
