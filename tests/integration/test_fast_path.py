"""The authenticated fast path (issue 16, part 2): a real server with its data-plane
listener on 127.0.0.1, one deployment of model A, tokens made through the API.

The listener hands each connection to a replica, whose gate checks every request's
token (cached 1 s) with the server; refusals are audited and reach no model."""

from __future__ import annotations

import json
import socket
import ssl
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest

from modelhub.client import Client, RegisterRequest
from tests.integration.conftest import ServerProcess, free_port, make_server, running
from tests.integration.serving_helpers import deploy, oip_body, write_model_a

ROWS = np.random.default_rng(5).normal(size=(2, 32)).astype(np.float32)


@pytest.fixture(scope="module")
def fast(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServerProcess, str, str]]:
    """(server, data-plane URL, loopback endpoint of deployment `fp`)."""
    root = tmp_path_factory.mktemp("fast-path")
    model = write_model_a(root / "a1")
    port = free_port()
    # A cache time far longer than the tests: a revoked token must stop at once,
    # because the server tells the replicas (the expiry is tested in tests/unit).
    server = make_server(
        root, MODELHUB_DATA_PLANE_PORT=str(port), MODELHUB_DATA_PLANE_TOKEN_CACHE_SECONDS="60"
    )
    with running(server):
        with Client(server.url, server.token) as client:
            client.register(RegisterRequest(name="intents", type="classification"), model)
        with server.http(timeout=60) as http:
            deployment = deploy(http, model="intents@1", environment="staging", name="fp")
        assert deployment["status"] == "running", deployment
        yield server, f"http://127.0.0.1:{port}", deployment["endpoint"]


def _requests_served(endpoint: str) -> float:
    """The deployment's inference request count, from its loopback endpoint's metrics."""
    total = 0.0
    for line in httpx.get(f"{endpoint}/metrics").text.splitlines():
        if line.startswith("modelhub_inference_requests_total{"):
            total += float(line.rsplit(" ", 1)[1])
    return total


def _raw(port: int, request: bytes) -> bytes:
    """Send raw bytes, read the answer until the server closes."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(request)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def _status(reply: bytes) -> int:
    return int(reply.split(b" ", 2)[1])


def test_a_token_reaches_a_deployment_by_name(fast: tuple[ServerProcess, str, str]) -> None:
    server, url, endpoint = fast
    body = oip_body(ROWS)
    direct = httpx.post(f"{endpoint}/v2/models/fp/infer", json=body)  # loopback: no token
    assert direct.status_code == 200, direct.text
    with httpx.Client(base_url=url, headers=server.headers) as fastpath:
        for _ in range(3):  # one connection, several requests: the cache answers
            reply = fastpath.post("/v2/models/fp/infer", json=body)
            assert reply.status_code == 200, reply.text
            assert reply.json()["outputs"] == direct.json()["outputs"]
        # The same connection asking for another deployment: that replica has no such model.
        other = fastpath.post("/v2/models/elsewhere/infer", json=body)
        assert other.status_code == 404, other.text
        # The OpenAI-style routes are routed by the body's model.
        openai = fastpath.post("/v1/completions", json={"model": "nowhere", "prompt": "x"})
        assert openai.status_code == 404 and "nowhere" in openai.text


def test_refusals_are_audited_and_reach_no_model(fast: tuple[ServerProcess, str, str]) -> None:
    server, url, endpoint = fast
    port = int(url.rsplit(":", 1)[1])
    body = json.dumps(oip_body(ROWS)).encode()
    before = _requests_served(endpoint)

    def post(headers: dict[str, str], path: str = "/v2/models/fp/infer") -> httpx.Response:
        return httpx.post(f"{url}{path}", content=body, headers=headers)

    assert post({}).status_code == 401
    assert post({"authorization": "Bearer mh_nosuch_secret"}).status_code == 401
    assert post({"authorization": "Basic " + "A" * 40}).status_code == 401
    too_long = post({"authorization": "Bearer " + "x" * 6000})
    assert too_long.status_code == 401 and "too long" in too_long.text
    # An unknown deployment is told only to a caller with a good token.
    assert post({}, "/v2/models/secret-name/infer").status_code == 401
    unknown = post(server.headers, "/v2/models/secret-name/infer")
    assert unknown.status_code == 404 and "secret-name" in unknown.text
    # A head larger than the listener reads, garbage, and a body without a model.
    huge = b"POST /v2/models/fp/infer HTTP/1.1\r\nx-pad: " + b"a" * 70000 + b"\r\n\r\n"
    assert _status(_raw(port, huge)) == 431
    assert _status(_raw(port, b"\x16\x03\x01 not http\r\n\r\n")) == 400
    no_model = b'{"prompt": "x"}'
    request = (
        b"POST /v1/embeddings HTTP/1.1\r\nhost: x\r\nauthorization: %s\r\n"
        b"content-length: %d\r\n\r\n%s"
        % (server.headers["authorization"].encode(), len(no_model), no_model)
    )
    assert _status(_raw(port, request)) == 400
    assert _requests_served(endpoint) == before  # no model was touched

    with Client(server.url, server.token) as admin:
        denied = [
            e
            for e in admin.audit_events(action="auth.denied", limit=1000)
            if "(data plane" in e.target
        ]
    targets = [e.target for e in denied]
    assert sum("POST /v2/models/fp/infer" in t for t in targets) >= 4, targets
    assert any("secret-name" in t for t in targets), targets
    assert any(
        e.details["reason"].startswith("the Authorization header is too long") for e in denied
    )


def test_a_revoked_token_stops_before_the_cache_time(
    fast: tuple[ServerProcess, str, str],
) -> None:
    server, url, _ = fast
    with Client(server.url, server.token) as admin:
        info, token = admin.create_token(description="fast path")
        body = oip_body(ROWS[:1])
        with httpx.Client(base_url=url, headers={"authorization": f"Bearer {token}"}) as caller:
            assert caller.post("/v2/models/fp/infer", json=body).status_code == 200
            admin.revoke_token(info.id)
            revoked = time.monotonic()
            deadline = revoked + 5.0
            status = 200
            while status == 200 and time.monotonic() < deadline:
                status = caller.post("/v2/models/fp/infer", json=body).status_code
            stopped_after = time.monotonic() - revoked
    assert status == 401
    # Well within the cache time (60 s): the time requests take on a busy 2-core machine.
    assert stopped_after < 2.5, stopped_after


def test_replica_routes_stay_closed_on_the_data_plane(
    fast: tuple[ServerProcess, str, str],
) -> None:
    server, url, _ = fast
    for path in ("/_replica/stats", "/metrics"):
        assert httpx.get(f"{url}{path}", headers=server.headers).status_code == 404


def _self_signed(folder: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and its key, made here (PEM)."""
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


@pytest.mark.slow  # a second server and deployment: ~10 s alone, more on a busy machine
def test_tls_on_the_data_plane_listener(tmp_path: Path) -> None:
    cert, key = _self_signed(tmp_path)
    port = free_port()
    server = make_server(
        tmp_path,
        MODELHUB_DATA_PLANE_PORT=str(port),
        MODELHUB_DATA_PLANE_SSL_CERTFILE=str(cert),
        MODELHUB_DATA_PLANE_SSL_KEYFILE=str(key),
    )
    with running(server):
        with Client(server.url, server.token) as client:
            client.register(
                RegisterRequest(name="intents", type="classification"),
                write_model_a(tmp_path / "a1"),
            )
        with server.http(timeout=60) as http:
            assert deploy(http, model="intents@1", name="tls")["status"] == "running"
        url = f"https://127.0.0.1:{port}/v2/models/tls/infer"
        with httpx.Client(verify=ssl.create_default_context(cafile=str(cert))) as caller:
            body = oip_body(ROWS)
            for _ in range(2):  # two requests on one TLS connection
                reply = caller.post(url, json=body, headers=server.headers)
                assert reply.status_code == 200, reply.text
            assert caller.post(url, json=body).status_code == 401
        with pytest.raises(httpx.TransportError):  # plain HTTP is not spoken there
            httpx.post(url.replace("https", "http"), json=body, headers=server.headers)
