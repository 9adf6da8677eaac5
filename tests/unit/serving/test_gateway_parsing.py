"""How the data-plane listener reads a first request to find its deployment."""

from __future__ import annotations

import pytest

from modelhub.serving.dataplane.gateway import Unroutable, deployment_of, parse_head


def _name(request: bytes) -> str | None:
    head = parse_head(request)
    assert head is not None
    method, path, headers, length = head
    return deployment_of(method, path, headers, request[length:])


def test_the_deployment_comes_from_the_path_or_the_body() -> None:
    assert _name(b"POST /v2/models/intents/infer?x=1 HTTP/1.1\r\nhost: a\r\n\r\n") == "intents"
    assert _name(b"GET /v2/models/a%20b/ready HTTP/1.1\r\n\r\n") == "a b"
    body = b'{"input": ["\\"model\\": \\"decoy\\""], "model": "embed"}'
    request = b"POST /v1/embeddings HTTP/1.1\r\ncontent-length: %d\r\n\r\n%s" % (len(body), body)
    assert _name(request) == "embed"


def test_an_incomplete_request_asks_for_more() -> None:
    assert parse_head(b"POST /v2/models/x/infer HTTP/1.1\r\nhost: a\r\n") is None
    partial = b'{"input": "x", "mod'
    request = b"POST /v1/completions HTTP/1.1\r\ncontent-length: 500\r\n\r\n" + partial
    assert _name(request) is None


@pytest.mark.parametrize(
    ("request_bytes", "status"),
    [
        (b"\x16\x03\x01\x02\x00 hello\r\n\r\n", 400),
        (b"GET / HTTP/2\r\n\r\n", 400),
        (b"GET /v2/models/x HTTP/1.1\r\nno colon here\r\n\r\n", 400),
        (b"POST /v1/embeddings HTTP/1.1\r\ncontent-length: nine\r\n\r\n", 400),
        (b'POST /v1/embeddings HTTP/1.1\r\ncontent-length: 8\r\n\r\n{"a": 1}', 400),
        (b"GET /v2/models/ HTTP/1.1\r\n\r\n", 404),
        (b"GET /metrics HTTP/1.1\r\n\r\n", 404),
        (b"GET /_replica/stats HTTP/1.1\r\n\r\n", 404),
    ],
)
def test_what_cannot_be_routed_is_refused(request_bytes: bytes, status: int) -> None:
    with pytest.raises(Unroutable) as refused:
        _name(request_bytes)
    assert refused.value.status == status
