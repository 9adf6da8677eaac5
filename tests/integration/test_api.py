"""The REST API over a real server process: errors, uploads, downloads, crashes."""

from __future__ import annotations

import contextlib
import hashlib
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from modelhub.client import Client, RegisterRequest, VersionQuery
from modelhub.errors import IllegalTransition, InvalidInput, NotFound, Unavailable
from modelhub.samples import write_mlp_safetensors, write_random_safetensors
from tests.integration.conftest import ServerProcess


def blobs(home: Path) -> list[Path]:
    return [p for p in (home / "artifacts" / "blobs").rglob("*") if p.is_file()]


def staged(home: Path) -> list[Path]:
    return list((home / "staging").iterdir())


def register(client: Client, path: Path, name: str, **kwargs: str) -> int:
    return client.register(RegisterRequest(name=name, type="custom", **kwargs), path).version


def test_errors_are_json_with_one_code(server: ServerProcess) -> None:
    with server.http() as http:
        missing = http.get("/api/v1/models/nobody")
        assert missing.status_code == 404
        assert missing.json() == {
            "error": {
                "code": "not_found",
                "message": "model 'nobody' does not exist",
                "details": {"model": "nobody"},
            }
        }
        bad_body = http.post("/api/v1/models/m/versions", json={"type": "custom"})
        assert bad_body.status_code == 400
        assert bad_body.json()["error"]["code"] == "invalid_input"
        assert "upload_id" in bad_body.json()["error"]["message"]
        bad_filter = http.get("/api/v1/models", params={"stage": "moon"})
        assert bad_filter.status_code == 400
        assert "unknown stage 'moon'" in bad_filter.json()["error"]["message"]
        assert http.get("/api/v1/nothing-here").json()["error"]["code"] == "not_found"


def test_docs_metrics_and_health(server: ServerProcess) -> None:
    with server.http() as http:
        assert http.get("/healthz").json() == {"status": "ok"}
        assert http.get("/readyz").json()["database"] == "sqlite"
        assert "swagger" in http.get("/docs").text.lower()
        paths = http.get("/openapi.json").json()["paths"]
        assert "/api/v1/models/{name}/versions" in paths
        assert "/api/v1/uploads/{upload_id}/files/{path}" in paths
        metrics = http.get("/metrics").text
        assert 'modelhub_http_requests_total{method="GET",route="/healthz",status="200"}' in metrics


ESCAPES = ["..%2F..%2Fevil", "%2Fetc%2Fevil", "a%2F..%2F..%2Fevil", "a%5C..%5Cevil", "%2E%2E"]


def test_upload_paths_cannot_escape(server: ServerProcess) -> None:
    with server.http() as http:
        upload_id = http.post("/api/v1/uploads").json()["upload_id"]
        for path in ESCAPES:
            response = http.put(f"/api/v1/uploads/{upload_id}/files/{path}", content=b"x" * 10)
            assert response.status_code == 400, (path, response.text)
            assert response.json()["error"]["code"] == "invalid_input"
            assert "unsafe file path" in response.json()["error"]["message"]
    assert not list(server.home.parent.rglob("evil"))


def test_upload_ids_and_damaged_uploads_are_refused(server: ServerProcess) -> None:
    with server.http() as http:
        # The decoded path has more segments than the route: no route, not a file.
        traversal = http.put("/api/v1/uploads/..%2F..%2Fx/files/a.bin", content=b"1")
        assert traversal.status_code == 404
        assert traversal.json()["error"]["code"] == "not_found"
        unknown = http.put(f"/api/v1/uploads/{'0' * 32}/files/a.bin", content=b"1")
        assert unknown.status_code == 404
        upload_id = http.post("/api/v1/uploads").json()["upload_id"]
        damaged = http.put(
            f"/api/v1/uploads/{upload_id}/files/a.bin",
            content=b"payload",
            headers={"x-content-sha256": "0" * 64},
        )
        assert damaged.status_code == 400 and "arrived damaged" in damaged.text
        empty = http.post(
            "/api/v1/models/m/versions", json={"upload_id": upload_id, "type": "custom"}
        )
        assert empty.status_code == 400 and "holds no files" in empty.text
        # A file and a folder of one name, and a name no file system takes: never a 500.
        upload_id = http.post("/api/v1/uploads").json()["upload_id"]
        assert http.put(f"/api/v1/uploads/{upload_id}/files/d", content=b"1").status_code == 200
        clash = http.put(f"/api/v1/uploads/{upload_id}/files/d/x", content=b"2")
        assert clash.status_code == 409 and "'d/x'" in clash.json()["error"]["message"]
        long = http.put(f"/api/v1/uploads/{upload_id}/files/{'n' * 256}", content=b"3")
        assert long.status_code == 400 and "n" * 256 in long.json()["error"]["message"]
        assert http.delete(f"/api/v1/uploads/{upload_id}").status_code == 200
    assert staged(server.home) == [] and blobs(server.home) == []


def home_files(home: Path) -> set[Path]:
    """Every file under the home except the database's own (its WAL changes on reads)."""
    return {p for p in home.rglob("*") if p.is_file() and ".db" not in p.name}


def test_refused_registrations_leave_nothing_behind(server: ServerProcess, tmp_path: Path) -> None:
    weights = write_mlp_safetensors(tmp_path / "w.safetensors")
    body = weights.read_bytes()
    digest = hashlib.sha256(body).hexdigest()
    not_a_model = tmp_path / "fake.safetensors"
    not_a_model.write_bytes(b"this is no safetensors file" * 100)
    with server.http() as http:
        before = home_files(server.home)

        def one_request(name: str, fields: str, content: bytes, sha: str) -> httpx.Response:
            return http.post(
                f"/api/v1/models/{name}/files/w.safetensors",
                content=content,
                headers={"x-modelhub-register": fields, "x-content-sha256": sha},
            )

        refusals = {
            "unknown type": one_request("m", '{"type": "robot"}', body, digest),
            "bad name": one_request("-bad-", '{"type": "custom"}', body, digest),
            "bad header": one_request("m", '{"type":', body, digest),
            "unknown field": one_request("m", '{"colour": "red"}', body, digest),
            "damaged": one_request("m", '{"type": "custom"}', body, "0" * 64),
            "not what it claims": one_request(
                "m",
                '{"type": "custom"}',
                not_a_model.read_bytes(),
                hashlib.sha256(not_a_model.read_bytes()).hexdigest(),
            ),
            "framework mismatch": one_request(
                "m", '{"type": "custom", "framework": "onnx"}', body, digest
            ),
        }
        for what, response in refusals.items():
            assert response.status_code == 400, (what, response.text)
            assert response.json()["error"]["code"] == "invalid_input", what
            assert home_files(server.home) == before, what
        # The three-request path: a refused registration drops its staged upload too.
        for fields in ({"type": "robot"}, {"type": "custom", "label": "not a label!"}):
            upload_id = http.post("/api/v1/uploads").json()["upload_id"]
            put = http.put(f"/api/v1/uploads/{upload_id}/files/w.safetensors", content=body)
            assert put.status_code == 200
            refused = http.post("/api/v1/models/m/versions", json={"upload_id": upload_id} | fields)
            assert refused.status_code == 400, refused.text
            assert home_files(server.home) == before, fields
        refused = http.post("/api/v1/models/-bad-/versions", json={"upload_id": upload_id})
        assert refused.status_code == 400, refused.text  # the name, before the upload
        assert staged(server.home) == [] and blobs(server.home) == []


def test_client_registers_a_file_in_one_request(server: ServerProcess, tmp_path: Path) -> None:
    weights = write_mlp_safetensors(tmp_path / "w.safetensors")
    with Client(server.url, token=server.token) as client:
        request = RegisterRequest(
            name="single", type="custom", tags={"team": "t"}, metrics={"acc": 0.5}
        )
        version = client.register(request, weights)
    assert version.version == 1 and version.files[0].path == "w.safetensors"
    assert version.metrics == {"acc": 0.5} and version.files[0].size == weights.stat().st_size
    with server.http() as http:
        metrics = http.get("/metrics").text
    route = 'route="/api/v1/models/{name}/files/{filename}",status="201"'
    assert f'modelhub_http_requests_total{{method="POST",{route}}} 1.0' in metrics
    assert 'route="/api/v1/uploads"' not in metrics
    assert staged(server.home) == []


def test_downloads_cannot_escape(server: ServerProcess, tmp_path: Path) -> None:
    with Client(server.url, token=server.token) as client:
        register(client, write_mlp_safetensors(tmp_path / "w.safetensors"), "m")
    with server.http() as http:
        for path in ("..%2F..%2Fmodelhub.db", "%2Fetc%2Fpasswd", "w.safetensors%2F..%2F..%2Fx"):
            response = http.get(f"/api/v1/models/m/versions/1/files/{path}")
            assert response.status_code == 400, (path, response.text)
            assert "unsafe file path" in response.json()["error"]["message"]
        good = http.get("/api/v1/models/m/versions/1/files/w.safetensors")
        assert good.status_code == 200
        assert good.headers["x-content-sha256"] == hashlib.sha256(good.content).hexdigest()


def test_client_raises_the_servers_errors(server: ServerProcess, tmp_path: Path) -> None:
    weights = write_mlp_safetensors(tmp_path / "w.safetensors")
    with Client(server.url, token=server.token) as client:
        with pytest.raises(NotFound, match="model 'ghost' does not exist"):
            client.get("ghost@1")
        with pytest.raises(InvalidInput, match="invalid model name"):
            client.register(RegisterRequest(name="../ghost", type="custom"), weights)
        assert register(client, weights, "ada") == 1
        client.set_stage("ada", 1, "staging")
        with pytest.raises(IllegalTransition, match="approved before production"):
            client.set_stage("ada", 1, "production")
        version, files = client.download("ada@latest", tmp_path / "out")
        assert files[0].read_bytes() == weights.read_bytes() and version.version == 1


def test_concurrent_registrations_of_one_new_name(server: ServerProcess, tmp_path: Path) -> None:
    paths = [write_mlp_safetensors(tmp_path / f"w{i}.safetensors", seed=i) for i in range(4)]
    results: list[int] = []
    errors: list[BaseException] = []

    def worker(path: Path) -> None:
        try:
            with Client(server.url, token=server.token) as client:
                results.append(register(client, path, "raced"))
        except BaseException as exc:  # collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(p,)) for p in paths]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == [] and sorted(results) == [1, 2, 3, 4]


def slow_body(path: Path, started: threading.Event) -> Iterator[bytes]:
    with open(path, "rb") as source:
        while chunk := source.read(256 * 1024):
            yield chunk
            started.set()
            time.sleep(0.05)


def test_kill_9_during_upload_leaves_nothing_behind(server: ServerProcess, tmp_path: Path) -> None:
    big = write_random_safetensors(tmp_path / "big.safetensors", 32 * 1024 * 1024)
    with server.http(timeout=30) as http:
        upload_id = http.post("/api/v1/uploads").json()["upload_id"]
        started = threading.Event()

        def send() -> None:
            with contextlib.suppress(httpx.HTTPError):  # the server dies under us: the point
                http.put(
                    f"/api/v1/uploads/{upload_id}/files/big.safetensors",
                    content=slow_body(big, started),
                )

        sender = threading.Thread(target=send)
        sender.start()
        assert started.wait(20)
        folder = server.home / "staging" / upload_id

        def partial_sizes() -> list[int]:
            files = [p for p in folder.rglob("*") if p.is_file() and p.name != "owner"]
            return [p.stat().st_size for p in files]

        deadline = time.monotonic() + 20
        while not any(partial_sizes()):
            assert time.monotonic() < deadline, "no partial upload appeared in staging"
            time.sleep(0.01)
        assert 0 < partial_sizes()[0] < big.stat().st_size
        server.kill9()
        sender.join(30)

    server.start()
    assert staged(server.home) == []
    with Client(server.url, token=server.token) as client:
        assert client.search(VersionQuery(include_archived=True, all_versions=True)).total == 0
        client.gc(grace_seconds=0)
    assert blobs(server.home) == []


def test_kill_9_after_upload_before_register(server: ServerProcess, tmp_path: Path) -> None:
    weights = write_mlp_safetensors(tmp_path / "w.safetensors")
    with server.http() as http:
        upload_id = http.post("/api/v1/uploads").json()["upload_id"]
        sent = http.put(
            f"/api/v1/uploads/{upload_id}/files/w.safetensors", content=weights.read_bytes()
        )
        assert sent.status_code == 200
    server.kill9()
    server.start()
    assert staged(server.home) == []
    with server.http() as http:
        late = http.post(
            "/api/v1/models/m/versions", json={"upload_id": upload_id, "type": "custom"}
        )
        assert late.status_code == 404 and "does not exist" in late.text
    assert blobs(server.home) == []


def test_delete_collects_unreferenced_blobs(server: ServerProcess, tmp_path: Path) -> None:
    shared = write_mlp_safetensors(tmp_path / "shared.safetensors")
    with Client(server.url, token=server.token) as client:
        register(client, shared, "a")
        register(client, shared, "b")
        assert len(blobs(server.home)) == 1
        client.delete("a")
        assert len(blobs(server.home)) == 1
        client.delete("b@1")
        assert blobs(server.home) == []


def test_a_corrupted_blob_never_downloads_as_a_complete_file(
    server: ServerProcess, tmp_path: Path
) -> None:
    weights = write_mlp_safetensors(tmp_path / "w.safetensors")
    with Client(server.url, token=server.token) as client:
        register(client, weights, "m")
        [blob] = blobs(server.home)
        blob.chmod(0o644)
        data = bytearray(blob.read_bytes())
        data[-1] ^= 0xFF
        blob.write_bytes(bytes(data))
        with pytest.raises(Unavailable, match="stored file is damaged"):
            client.download("m@1", tmp_path / "out")
    assert not (tmp_path / "out" / "w.safetensors").exists()
    with server.http() as http, pytest.raises(httpx.RemoteProtocolError):
        http.get("/api/v1/models/m/versions/1/files/w.safetensors")
    assert "stopped sending m@1/w.safetensors: blob sha256:" in server.log.read_text()
