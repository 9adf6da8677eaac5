"""The deployments CLI's own helpers: parsing options, estimating latency, rendering outputs."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from pathlib import Path

import pytest
from rich.console import Console

from modelhub.cli.deployment_input import parse_autoscale, read_request
from modelhub.cli.deployment_view import (
    curl_line,
    latency_percentile,
    outputs_table,
    usage_summary,
)
from modelhub.domain.deployments import LATENCY_BOUNDS_MS, UsageRecord
from modelhub.errors import InvalidInput


@pytest.mark.parametrize("text, bounds", [("1:4", (1, 4)), ("2:2", (2, 2)), (" 3 : 8 ", (3, 8))])
def test_autoscale_parses_min_and_max(text: str, bounds: tuple[int, int]) -> None:
    assert parse_autoscale(text) == bounds


@pytest.mark.parametrize("text", ["4", "1-4", "a:b", "0:3", "1:", ":4", "1:4:5", ""])
def test_bad_autoscale_names_the_option(text: str) -> None:
    with pytest.raises(InvalidInput, match="--autoscale wants MIN:MAX") as caught:
        parse_autoscale(text)
    assert caught.value.details["field"] == "autoscale"


def test_no_autoscale_is_none() -> None:
    assert parse_autoscale(None) is None


def test_request_from_input_or_file(tmp_path: Path) -> None:
    text = '{"inputs": [{"name": "input", "shape": [1, 2], "datatype": "FP32", "data": [1, 2]}]}'
    assert read_request(text, None) == text.encode()
    body = tmp_path / "body.json"
    body.write_bytes(text.encode())
    assert read_request(None, body) == text.encode()


def test_request_needs_exactly_one_source(tmp_path: Path) -> None:
    body = tmp_path / "body.json"
    body.write_text("{}")
    for input, file in ((None, None), ("{}", body)):
        with pytest.raises(InvalidInput, match="either --input JSON or --file PATH"):
            read_request(input, file)


def test_malformed_request_names_its_option(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="--input is not valid JSON"):
        read_request('{"inputs": [', None)
    with pytest.raises(InvalidInput, match="--input must be a JSON object"):
        read_request("[1, 2]", None)
    body = tmp_path / "body.json"
    body.write_text("nope")
    with pytest.raises(InvalidInput, match=r"--file .*body\.json is not valid JSON"):
        read_request(None, body)


OVER = math.inf


def buckets(counts: dict[float, int] | None = None) -> list[int]:
    """Counts per bucket, keyed by the bucket's upper bound in ms (OVER: slower than all)."""
    found = [0] * (len(LATENCY_BOUNDS_MS) + 1)
    for bound, count in (counts or {}).items():
        found[len(LATENCY_BOUNDS_MS) if bound == OVER else LATENCY_BOUNDS_MS.index(bound)] = count
    return found


def test_percentiles_interpolate_inside_a_bucket() -> None:
    # 100 requests between 5 and 10 ms: the median lies halfway, p99 near the top.
    counts = buckets({10: 100})
    assert latency_percentile(counts, 0.5) == pytest.approx(7.5)
    assert latency_percentile(counts, 0.99) == pytest.approx(9.95)
    # The first bucket starts at zero.
    assert latency_percentile(buckets({0.5: 4}), 0.5) == pytest.approx(0.25)


def test_percentiles_across_buckets_and_beyond_the_last_bound() -> None:
    counts = buckets({1: 50, 100: 49, OVER: 1})
    assert latency_percentile(counts, 0.5) == pytest.approx(1.0)
    assert 50 < latency_percentile(counts, 0.98) <= 100  # type: ignore[operator]
    assert latency_percentile(buckets({1: 98, OVER: 2}), 0.99) == math.inf
    assert latency_percentile([], 0.5) is None
    assert latency_percentile(buckets(), 0.5) is None


def test_usage_summary() -> None:
    used = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    record = UsageRecord(
        deployment="d",
        version=3,
        requests=200,
        errors=5,
        latency_ms_sum=1500.0,
        latency_buckets=buckets({10: 197, OVER: 3}),
        active_callers=2,
        last_used=used,
    )
    summary = usage_summary(record)
    assert summary["error_rate"] == pytest.approx(0.025)
    assert summary["mean_latency_ms"] == pytest.approx(7.5)
    assert summary["p50_latency_ms"] == pytest.approx(5 + 5 * 100 / 197)
    assert summary["p99_latency_ms"] is None  # slower than the last bound: no finite estimate
    assert (summary["active_callers"], summary["last_used"]) == (2, used.isoformat())
    idle = usage_summary(UsageRecord(deployment="d", version=1))
    assert idle["error_rate"] is None and idle["mean_latency_ms"] is None


def test_outputs_table_shows_name_shape_and_first_values() -> None:
    answer = {
        "model_name": "intents",
        "model_version": "2",
        "outputs": [
            {"name": "logits", "datatype": "FP32", "shape": [2, 4], "data": [0.5] * 8},
            {"name": "label", "datatype": "BYTES", "shape": [2], "data": ["a", "b"]},
        ],
    }
    console = Console(width=200, record=True)
    console.print(outputs_table(answer))
    text = console.export_text()
    assert "intents version 2" in text
    assert "logits" in text and "[2, 4]" in text and "... (8 values)" in text
    assert "label" in text and "a, b" in text


def test_curl_line_targets_the_platforms_inference_route() -> None:
    line = curl_line("http://127.0.0.1:8400/", "intents-staging")
    assert line.startswith("curl -s http://127.0.0.1:8400/v2/models/intents-staging/infer ")
    assert '"Authorization: Bearer $MODELHUB_TOKEN"' in line and "-d @body.json" in line
