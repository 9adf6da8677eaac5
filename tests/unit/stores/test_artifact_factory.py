from __future__ import annotations

from pathlib import Path

import pytest

from modelhub.errors import InvalidInput
from modelhub.stores.artifacts.factory import open_artifact_store
from modelhub.stores.artifacts.local import LocalArtifactStore


def test_plain_path_opens_and_creates_a_local_store(tmp_path: Path) -> None:
    store = open_artifact_store(str(tmp_path / "a" / "b"), chunk_size=1024)
    assert isinstance(store, LocalArtifactStore)
    assert store.chunk_size == 1024
    assert (tmp_path / "a" / "b" / "blobs").is_dir()
    assert (tmp_path / "a" / "b" / "tmp").is_dir()


def test_file_url_opens_a_local_store(tmp_path: Path) -> None:
    store = open_artifact_store((tmp_path / "with space").as_uri())
    assert isinstance(store, LocalArtifactStore)
    assert store.root == tmp_path / "with space"
    assert store.url == (tmp_path / "with space").as_uri()


def test_file_url_with_a_remote_host_is_refused() -> None:
    with pytest.raises(InvalidInput, match="local path"):
        open_artifact_store("file://fileserver/share")


def test_s3_url_opens_an_s3_store() -> None:
    pytest.importorskip("boto3")
    from modelhub.stores.artifacts.s3 import S3ArtifactStore

    store = open_artifact_store("s3://bucket/some/prefix/", s3_endpoint_url="http://127.0.0.1:9")
    try:
        assert isinstance(store, S3ArtifactStore)
        assert (store.bucket, store.prefix) == ("bucket", "some/prefix")
    finally:
        store.close()


def test_s3_url_needs_a_bucket() -> None:
    pytest.importorskip("boto3")
    with pytest.raises(InvalidInput, match="bucket"):
        open_artifact_store("s3:///prefix")


@pytest.mark.parametrize("url", ["gs://bucket/x", "http://example.com/blobs", "ftp://host/x"])
def test_unknown_scheme_is_invalid_input(url: str) -> None:
    scheme = url.split(":")[0]
    with pytest.raises(InvalidInput, match=repr(scheme)):
        open_artifact_store(url)
