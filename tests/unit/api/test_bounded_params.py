"""Route and query integers beyond 64 bits, and text no database can store, are 400s (issue 19).

The in-process app over a real SQLite file: every one of these reached the store and
came back as a 500 (OverflowError from sqlite3, ValueError from int(), a cut SSE stream).
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

from modelhub.api.app import create_app
from modelhub.settings import Settings

if TYPE_CHECKING:
    from fastapi.testclient import TestClient

# Starlette's test client still reaches anyio's deprecated BlockingPortal alias.
ANYIO_ALIAS = "ignore:The anyio.abc.BlockingPortal alias is deprecated:DeprecationWarning"
pytestmark = pytest.mark.filterwarnings(ANYIO_ALIAS)

HUGE = str(2**63)  # one past the widest integer SQLite and PostgreSQL store
ENORMOUS = "9" * 5000  # past Python's int-from-text digit limit


@pytest.fixture(scope="module")
def http(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    home = tmp_path_factory.mktemp("bounded-home")
    settings = Settings(home=home, auth=False, train_scheduler=False, serve_supervisor=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        from fastapi.testclient import TestClient
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        yield client


def assert_invalid(response: object) -> None:
    status = getattr(response, "status_code", None)
    body = getattr(response, "text", "")
    assert status == 400, f"{status}: {body[:300]}"
    assert json.loads(body)["error"]["code"] == "invalid_input"


@pytest.mark.parametrize("value", [HUGE, ENORMOUS])
@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/runs/{v}",
        "/api/v1/runs/{v}/metrics",
        "/api/v1/runs/{v}/checkpoints",
        "/api/v1/runs/{v}/alerts",
        "/api/v1/runs/{v}/logs",
        "/api/v1/runs/{v}/events",
        "/api/v1/runs/1/logs?offset={v}",
        "/api/v1/runs/1/events?after={v}",
        "/api/v1/runs/1/events?log_offset={v}",
        "/api/v1/models?offset={v}",
        "/api/v1/models?limit={v}",
        "/api/v1/audit?limit={v}",
        "/api/v1/models/m/versions/{v}",
        "/api/v1/datasets/d/versions/{v}",
    ],
)
def test_integers_beyond_64_bits_are_400_on_reads(http: TestClient, path: str, value: str) -> None:
    assert_invalid(http.get(path.format(v=value)))


@pytest.mark.parametrize("value", [HUGE, ENORMOUS])
def test_integers_beyond_64_bits_are_400_on_writes(http: TestClient, value: str) -> None:
    for path in ("cancel", "resume"):
        assert_invalid(http.post(f"/api/v1/runs/{value}/{path}"))
    for action in ("approve", "reject"):
        assert_invalid(http.post(f"/api/v1/models/m/versions/{value}/{action}", json={}))
    assert_invalid(http.post(f"/api/v1/models/m/versions/{value}/stage", json={"stage": "staging"}))
    assert_invalid(http.delete(f"/api/v1/models/m/versions/{value}"))
    assert_invalid(http.put("/api/v1/models/m/aliases/champion", json={"version": int(HUGE)}))
    assert_invalid(http.post(f"/api/v1/gc?grace_seconds={value}"))


def test_a_huge_gc_grace_is_400_not_an_overflow(http: TestClient) -> None:
    assert_invalid(http.post(f"/api/v1/gc?grace_seconds={2**62}"))


@pytest.mark.parametrize("header", [HUGE, ENORMOUS, "²", "٣"])
def test_last_event_id_beyond_64_bits_or_not_ascii_is_400(http: TestClient, header: str) -> None:
    raw = header.encode("utf-8")  # a header travels as bytes; the server reads latin-1
    assert_invalid(http.get("/api/v1/runs/1/events", headers={"last-event-id": raw}))


def test_audit_since_far_back_reads_everything_and_absurd_since_is_400(http: TestClient) -> None:
    assert http.get("/api/v1/audit?since=36500d").status_code == 200  # the longest duration
    assert_invalid(http.get("/api/v1/audit?since=99999999999d"))
    assert_invalid(http.get(f"/api/v1/audit?since={ENORMOUS}d"))


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("post", "/api/v1/pipelines", {"spec": "name: \ud800"}),
        ("post", "/api/v1/pipelines", {"spec": "name: p", "files": {"\udcff.py": "x"}}),
        ("patch", "/api/v1/models/m", {"description": "bad \ud800 text"}),
        ("patch", "/api/v1/models/m", {"tags": {"team": "\udc80"}}),
        ("post", "/api/v1/models/m/versions", {"upload_id": "u", "model_card": "\ud83d"}),
        ("post", "/api/v1/datasets/d/versions", {"upload_id": "u", "description": "\ud800"}),
    ],
)
def test_lone_surrogates_in_bodies_are_400(
    http: TestClient, method: str, path: str, body: dict[str, object]
) -> None:
    raw = json.dumps(body)  # ensure_ascii: the surrogate travels as a \\ud800 escape
    response = http.request(method, path, content=raw, headers={"content-type": "application/json"})
    assert_invalid(response)
    assert "lone surrogate" in response.json()["error"]["message"]


def test_an_error_quoting_a_lone_surrogate_is_still_sent(http: TestClient) -> None:
    raw = json.dumps({"\ud800": 1})  # an unknown field whose very name is unencodable
    response = http.patch(
        "/api/v1/models/m", content=raw, headers={"content-type": "application/json"}
    )
    assert_invalid(response)


def test_a_thousand_tag_filters_are_400_not_a_sqlite_expression_error(http: TestClient) -> None:
    tags = [("tag", f"k{i}=v") for i in range(1000)]
    assert_invalid(http.get("/api/v1/models", params=tags))
    assert http.get("/api/v1/models", params=tags[:64]).status_code == 200


@pytest.mark.parametrize("number", ["NaN", "Infinity", "-Infinity", "1e999"])
def test_non_finite_numbers_in_bodies_are_400(http: TestClient, number: str) -> None:
    raw = '{"upload_id": "u", "metrics": {"loss": NUMBER}}'.replace("NUMBER", number)
    response = http.post(
        "/api/v1/models/m/versions", content=raw, headers={"content-type": "application/json"}
    )
    assert_invalid(response)
    assert "metrics.loss: numbers must be finite" in response.json()["error"]["message"]


def test_a_ten_megabyte_spec_is_400(http: TestClient) -> None:
    assert_invalid(http.post("/api/v1/pipelines", json={"spec": "x" * 10_000_000}))


def test_bounded_values_still_work(http: TestClient) -> None:
    assert http.get(f"/api/v1/runs/{2**63 - 1}").status_code == 404
    assert http.get(f"/api/v1/models?offset={2**63 - 1}").status_code == 200
    assert http.get(f"/api/v1/models/m/versions/{2**63 - 1}").status_code == 404
    widest = {"last-event-id": str(2**63 - 1)}
    assert http.get("/api/v1/runs/1/events", headers=widest).status_code == 404
