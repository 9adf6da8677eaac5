"""Schemathesis drives every operation of the server's own OpenAPI schema.

A real server, the admin's token, a fixed seed and a fixed budget of examples per
operation, each request sent without a token and then with it. The check: no
operation answers 5xx, and the valid token is never refused with 429, however
many requests without one failed from the same address before it. (An empty
`PATCH /api/v1/auth/users/{name}` was such a 500.)
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, given, seed, settings

from tests.integration.conftest import ServerProcess, make_server, running

schemathesis = pytest.importorskip("schemathesis")

EXAMPLES_PER_OPERATION = 5
USERS = "/api/v1/auth/users/{name}"


@pytest.fixture(scope="module")
def fuzzed_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    with running(make_server(tmp_path_factory.mktemp("schemathesis"))) as srv:
        yield srv


def describe(case: Any, response: Any) -> str:
    sent = {"query": case.query, "body": case.body if isinstance(case.body, dict | list) else None}
    return (
        f"{case.method} {case.formatted_path} {sent} -> {response.status_code} "
        f"{response.text[:300]}"
    )


def test_no_operation_answers_5xx_or_429_to_a_valid_token(fuzzed_server: ServerProcess) -> None:
    with fuzzed_server.http() as http:
        created = http.post("/api/v1/auth/users", json={"name": "vera", "role": "viewer"})
        assert created.status_code == 201, created.text
        raw = http.get("/openapi.json").json()
    schema = schemathesis.openapi.from_dict(raw)
    headers = fuzzed_server.headers
    problems: list[str] = []
    anonymous_codes: set[int] = set()
    operations = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        operations += 1
        # A user that exists, so that user operations get past the lookup.
        known = {"name": "vera"} if operation.path.startswith(USERS) else None

        @seed(20261206)
        @settings(
            max_examples=EXAMPLES_PER_OPERATION,
            derandomize=True,
            database=None,
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
            deadline=None,
        )
        @given(case=operation.as_strategy(path_parameters=known))
        def exercise(case: Any) -> None:
            # The same request without a token first: failed authentications from
            # this address pile up far past the limit, as in a misconfigured client.
            anonymous = case.call(base_url=fuzzed_server.url, timeout=30)
            anonymous_codes.add(anonymous.status_code)
            if anonymous.status_code >= 500:
                problems.append(describe(case, anonymous))
            response = case.call(base_url=fuzzed_server.url, headers=headers, timeout=30)
            if response.status_code >= 500 or response.status_code == 429:
                problems.append(describe(case, response))

        exercise()
    assert operations > 40
    assert problems == []
    assert 429 in anonymous_codes  # the limit was reached, and valid tokens still went through
