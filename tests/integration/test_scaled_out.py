"""The scaled-out setup: a server on PostgreSQL with artifacts in S3 (moto on loopback)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from modelhub.client import Client, RegisterRequest, VersionQuery
from modelhub.samples import minilm_folder, write_mlp_safetensors
from tests.conftest import BUCKET, CREDENTIALS, s3_client
from tests.integration.conftest import ServerProcess, make_server

pytestmark = pytest.mark.postgres


@pytest.fixture
def scaled_server(
    tmp_path: Path, pg_schema_url: str, s3_endpoint: str
) -> Iterator[tuple[ServerProcess, str]]:
    prefix = f"scaled-{tmp_path.name}"
    srv = make_server(
        tmp_path,
        MODELHUB_DATABASE_URL=pg_schema_url,
        MODELHUB_ARTIFACTS=f"s3://{BUCKET}/{prefix}",
        MODELHUB_S3_ENDPOINT_URL=s3_endpoint,
        AWS_ACCESS_KEY_ID=CREDENTIALS["aws_access_key_id"],
        AWS_SECRET_ACCESS_KEY=CREDENTIALS["aws_secret_access_key"],
        AWS_DEFAULT_REGION="us-east-1",
    )
    srv.start()
    try:
        yield srv, prefix
    finally:
        srv.stop()


def s3_blob_keys(endpoint: str, prefix: str) -> list[str]:
    client = s3_client(endpoint)
    try:
        listing = client.list_objects_v2(Bucket=BUCKET, Prefix=f"{prefix}/blobs/")
        return [item["Key"] for item in listing.get("Contents", [])]
    finally:
        client.close()


def test_register_search_download_delete_on_postgres_and_s3(
    scaled_server: tuple[ServerProcess, str], s3_endpoint: str, tmp_path: Path
) -> None:
    server, prefix = scaled_server
    assert httpx.get(f"{server.url}/readyz").json()["database"] == "postgresql"
    weights = write_mlp_safetensors(tmp_path / "w.safetensors")
    with Client(server.url, token=server.token) as client:
        v1 = client.register(
            RegisterRequest(name="ada", type="classification", tags={"team": "personas"}), weights
        )
        folder = client.register(
            RegisterRequest(name="minilm", type="embedding_model"), minilm_folder()
        )
        assert (v1.version, folder.framework.value) == (1, "huggingface")
        assert client.search(VersionQuery(tags={"team": "personas"})).items[0].name == "ada"
        assert len(s3_blob_keys(s3_endpoint, prefix)) == 1 + len(folder.files)

        _, files = client.download("ada@1", tmp_path / "out")
        assert hashlib.sha256(files[0].read_bytes()).hexdigest() == v1.digest
        client.delete("minilm")
        assert len(s3_blob_keys(s3_endpoint, prefix)) == 1
