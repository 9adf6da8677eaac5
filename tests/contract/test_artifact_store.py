"""One contract for every ArtifactStore: a local folder, and S3 against a real moto server."""

from __future__ import annotations

import hashlib
import io
import os
import stat
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path

import pytest
from tests.conftest import BUCKET, s3_client

from modelhub.errors import IntegrityError, InvalidInput, NotFound
from modelhub.stores.artifacts.base import ArtifactStore
from modelhub.stores.artifacts.local import LocalArtifactStore

KiB = 1024
MiB = 1024 * KiB


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def read_all(store: ArtifactStore, digest: str, chunk_size: int | None = None) -> bytes:
    return b"".join(store.open_chunks(digest, chunk_size))


# -- a real S3-compatible server -------------------------------------------------


# -- one backend helper per implementation: build a store, tamper with it ---------


class Backend:
    name: str

    def make(self, chunk_size: int = 64 * KiB) -> ArtifactStore:
        raise NotImplementedError

    def overwrite_blob(self, store: ArtifactStore, digest: str, data: bytes) -> None:
        raise NotImplementedError

    def leave_temporary(self, store: ArtifactStore) -> int:
        """Simulate writes that crashed halfway; return how many leftovers they made."""
        raise NotImplementedError

    def temporary_count(self, store: ArtifactStore) -> int:
        raise NotImplementedError


class LocalBackend(Backend):
    name = "local"

    def __init__(self, root: Path) -> None:
        self.root = root

    def make(self, chunk_size: int = 64 * KiB) -> ArtifactStore:
        return LocalArtifactStore(self.root, chunk_size=chunk_size)

    def overwrite_blob(self, store: ArtifactStore, digest: str, data: bytes) -> None:
        blob = self.root / "blobs" / digest[:2] / digest
        blob.chmod(0o644)
        blob.write_bytes(data)

    def leave_temporary(self, store: ArtifactStore) -> int:
        (self.root / "tmp" / f"{uuid.uuid4().hex}.part").write_bytes(b"half a model")
        (self.root / "tmp" / f"{uuid.uuid4().hex}.part").write_bytes(b"")
        return 2

    def temporary_count(self, store: ArtifactStore) -> int:
        return len(list((self.root / "tmp").iterdir()))


class S3Backend(Backend):
    name = "s3"

    def __init__(self, endpoint: str) -> None:
        self.endpoint = endpoint
        self.prefix = f"run-{uuid.uuid4().hex[:12]}/artifacts"
        self.client = s3_client(endpoint)

    def make(self, chunk_size: int = 64 * KiB) -> ArtifactStore:
        from modelhub.stores.artifacts.s3 import S3ArtifactStore

        return S3ArtifactStore(
            f"s3://{BUCKET}/{self.prefix}",
            endpoint_url=self.endpoint,
            chunk_size=chunk_size,
            aws_access_key_id="test",
            aws_secret_access_key="test",
        )

    def overwrite_blob(self, store: ArtifactStore, digest: str, data: bytes) -> None:
        key = f"{self.prefix}/blobs/{digest[:2]}/{digest}"
        self.client.put_object(Bucket=BUCKET, Key=key, Body=data)

    def leave_temporary(self, store: ArtifactStore) -> int:
        tmp = f"{self.prefix}/tmp/"
        self.client.put_object(Bucket=BUCKET, Key=tmp + uuid.uuid4().hex, Body=b"half")
        self.client.create_multipart_upload(Bucket=BUCKET, Key=tmp + uuid.uuid4().hex)
        return 2

    def temporary_count(self, store: ArtifactStore) -> int:
        tmp = f"{self.prefix}/tmp/"
        keys = self.client.list_objects_v2(Bucket=BUCKET, Prefix=tmp).get("Contents", [])
        uploads = self.client.list_multipart_uploads(Bucket=BUCKET, Prefix=tmp).get("Uploads", [])
        return len(keys) + len(uploads)

    def close(self) -> None:
        self.client.close()


@pytest.fixture(params=["local", "s3"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    if request.param == "local":
        yield LocalBackend(tmp_path / "artifacts")
        return
    s3 = S3Backend(request.getfixturevalue("s3_endpoint"))
    try:
        yield s3
    finally:
        s3.close()


@pytest.fixture
def store(backend: Backend) -> Iterator[ArtifactStore]:
    made = backend.make()
    try:
        yield made
    finally:
        made.close()


@pytest.fixture
def make_store(backend: Backend) -> Iterator[Callable[[int], ArtifactStore]]:
    made: list[ArtifactStore] = []

    def factory(chunk_size: int) -> ArtifactStore:
        made.append(backend.make(chunk_size))
        return made[-1]

    yield factory
    for each in made:
        each.close()


# -- the contract ----------------------------------------------------------------


def test_round_trip(store: ArtifactStore) -> None:
    data = os.urandom(100 * KiB)
    info = store.put_stream(io.BytesIO(data))
    assert info.digest == sha(data)
    assert info.size == len(data)
    assert info.created_at.tzinfo is not None
    assert store.exists(info.digest)
    assert read_all(store, info.digest) == data
    again = store.info(info.digest)
    assert (again.digest, again.size) == (info.digest, len(data))
    assert isinstance(again.created_at, datetime) and again.created_at.utcoffset() is not None


def test_put_stream_from_iterator_of_chunks(store: ArtifactStore) -> None:
    chunks = [os.urandom(n) for n in (1, 7 * KiB, 0, 300 * KiB, 13)]
    info = store.put_stream(iter(chunks))
    assert info.digest == sha(b"".join(chunks))
    assert read_all(store, info.digest) == b"".join(chunks)


def test_empty_blob(store: ArtifactStore) -> None:
    info = store.put_stream(iter([]))
    assert info.digest == sha(b"") and info.size == 0
    assert read_all(store, info.digest) == b""


def test_same_bytes_are_stored_once(store: ArtifactStore, tmp_path: Path) -> None:
    data = b"the same weights" * 1000
    first = store.put_stream(io.BytesIO(data))
    second = store.put_stream(iter([data[:5], data[5:]]))
    source = tmp_path / "model.bin"
    source.write_bytes(data)
    third = store.put_file(source)
    assert first.digest == second.digest == third.digest
    assert [blob.digest for blob in store.list_blobs()] == [first.digest]


@pytest.mark.parametrize("move", [False, True])
def test_created_is_true_only_for_the_put_that_stored_the_blob(
    make_store: Callable[[int], ArtifactStore], tmp_path: Path, move: bool
) -> None:
    store = make_store(4 * KiB)
    small, large = os.urandom(KiB), os.urandom(9 * MiB + 7)  # large: a multipart upload on S3
    for data in (small, large):
        first = store.put_stream(io.BytesIO(data))
        assert first.created
        assert not store.put_stream(iter([data])).created
        source = tmp_path / "copy.bin"
        source.write_bytes(data)
        assert not store.put_file(source, move=move).created
        assert not store.info(first.digest).created
        assert all(not blob.created for blob in store.list_blobs())
        store.delete(first.digest)
        source.write_bytes(data)
        assert store.put_file(source, move=move).created


def test_expected_digest_accepted_when_it_matches(store: ArtifactStore) -> None:
    data = os.urandom(10 * KiB)
    assert store.put_stream(io.BytesIO(data), expected_digest=sha(data)).digest == sha(data)


@pytest.mark.parametrize("size", [10 * KiB, 9 * MiB], ids=["small", "multipart"])
def test_expected_digest_mismatch_stores_nothing(
    backend: Backend, store: ArtifactStore, size: int
) -> None:
    data = os.urandom(size)
    wrong = sha(b"something else")
    with pytest.raises(IntegrityError) as caught:
        store.put_stream(io.BytesIO(data), expected_digest=wrong)
    assert caught.value.details == {"expected": wrong, "actual": sha(data)}
    assert list(store.list_blobs()) == []
    assert not store.exists(sha(data))
    assert backend.temporary_count(store) == 0


def test_stream_larger_than_chunk_size(make_store: Callable[[int], ArtifactStore]) -> None:
    store = make_store(4 * KiB)
    data = os.urandom(9 * MiB + 123)  # above the S3 part size too: a real multipart upload
    info = store.put_stream(io.BytesIO(data))
    assert info.size == len(data)
    chunks = list(store.open_chunks(info.digest))
    assert len(chunks) > 1 and all(len(chunk) <= 4 * KiB for chunk in chunks)
    assert b"".join(chunks) == data
    small = list(store.open_chunks(info.digest, chunk_size=1 * MiB))
    assert max(len(chunk) for chunk in small) <= 1 * MiB
    assert b"".join(small) == data


def test_put_file_copies(store: ArtifactStore, tmp_path: Path) -> None:
    source = tmp_path / "model.safetensors"
    data = os.urandom(3 * MiB + 5)
    source.write_bytes(data)
    info = store.put_file(source)
    assert info.digest == sha(data) and info.size == len(data)
    assert source.read_bytes() == data  # untouched
    assert read_all(store, info.digest) == data


def test_put_file_move_takes_the_file(store: ArtifactStore, tmp_path: Path) -> None:
    source = tmp_path / "model.onnx"
    data = os.urandom(2 * MiB)
    source.write_bytes(data)
    os.utime(source, (0, 0))  # an old file must still get a fresh created_at
    info = store.put_file(source, expected_digest=sha(data), move=True)
    assert info.digest == sha(data)
    assert not source.exists()
    assert read_all(store, info.digest) == data
    assert info.created_at.timestamp() > time.time() - 3600


def test_put_file_move_of_a_stored_blob_removes_the_source(
    store: ArtifactStore, tmp_path: Path
) -> None:
    data = os.urandom(KiB)
    store.put_stream(iter([data]))
    source = tmp_path / "dup.bin"
    source.write_bytes(data)
    assert store.put_file(source, move=True).digest == sha(data)
    assert not source.exists()
    assert len(list(store.list_blobs())) == 1


@pytest.mark.parametrize("move", [False, True])
def test_put_file_mismatch_keeps_source_and_stores_nothing(
    backend: Backend, store: ArtifactStore, tmp_path: Path, move: bool
) -> None:
    source = tmp_path / "model.bin"
    source.write_bytes(b"weights")
    with pytest.raises(IntegrityError):
        store.put_file(source, expected_digest=sha(b"other"), move=move)
    assert source.read_bytes() == b"weights"
    assert list(store.list_blobs()) == []
    assert backend.temporary_count(store) == 0


def test_put_file_missing_source(store: ArtifactStore, tmp_path: Path) -> None:
    with pytest.raises(NotFound):
        store.put_file(tmp_path / "nope.bin")


def test_corrupted_blob_raises_on_read(backend: Backend, store: ArtifactStore) -> None:
    data = os.urandom(50 * KiB)
    digest = store.put_stream(io.BytesIO(data)).digest
    flipped = bytes([data[0] ^ 0xFF]) + data[1:]
    backend.overwrite_blob(store, digest, flipped)
    with pytest.raises(IntegrityError) as caught:
        read_all(store, digest)
    assert caught.value.details["actual"] == sha(flipped)


def test_truncated_blob_raises_on_read(backend: Backend, store: ArtifactStore) -> None:
    data = os.urandom(50 * KiB)
    digest = store.put_stream(io.BytesIO(data)).digest
    backend.overwrite_blob(store, digest, data[: len(data) // 2])
    with pytest.raises(IntegrityError):
        read_all(store, digest)


BAD_DIGESTS = ["", "abc", "A" * 64, "g" * 64, "../" + "a" * 61, "a" * 65]


@pytest.mark.parametrize("bad", BAD_DIGESTS)
def test_invalid_digest_is_invalid_input(store: ArtifactStore, bad: str) -> None:
    calls: list[Callable[[], object]] = [
        lambda: store.open_chunks(bad),
        lambda: store.local_path(bad).__enter__(),
        lambda: store.exists(bad),
        lambda: store.info(bad),
        lambda: store.delete(bad),
        lambda: store.put_stream(iter([b"x"]), expected_digest=bad),
    ]
    for call in calls:
        with pytest.raises(InvalidInput):
            call()


def test_missing_blob_is_not_found(store: ArtifactStore) -> None:
    absent = sha(b"never stored")
    assert not store.exists(absent)
    with pytest.raises(NotFound, match=absent):
        store.info(absent)
    with pytest.raises(NotFound):
        store.open_chunks(absent)
    with pytest.raises(NotFound), store.local_path(absent):
        pass


def test_delete_is_idempotent(store: ArtifactStore) -> None:
    digest = store.put_stream(iter([b"bye"])).digest
    store.delete(digest)
    assert not store.exists(digest)
    store.delete(digest)
    store.delete(sha(b"never stored"))


def test_list_blobs(store: ArtifactStore) -> None:
    assert list(store.list_blobs()) == []
    payloads = [os.urandom(n) for n in (1, 10, 100, 1000)]
    for payload in payloads:
        store.put_stream(iter([payload]))
    listed = {blob.digest: blob.size for blob in store.list_blobs()}
    assert listed == {sha(p): len(p) for p in payloads}


def test_clean_temporary_removes_crash_leftovers(backend: Backend, store: ArtifactStore) -> None:
    kept = store.put_stream(iter([b"keep me"])).digest
    left = backend.leave_temporary(store)
    assert backend.temporary_count(store) == left
    assert store.clean_temporary() == left
    assert backend.temporary_count(store) == 0
    assert store.clean_temporary() == 0
    assert read_all(store, kept) == b"keep me"


def test_local_path_holds_the_bytes(store: ArtifactStore) -> None:
    data = os.urandom(200 * KiB)
    digest = store.put_stream(io.BytesIO(data)).digest
    with store.local_path(digest) as path:
        assert path.read_bytes() == data


def test_a_failing_source_stores_nothing(backend: Backend, store: ArtifactStore) -> None:
    def chunks() -> Iterator[bytes]:
        yield os.urandom(9 * MiB)
        raise OSError("client went away")

    with pytest.raises(OSError, match="went away"):
        store.put_stream(chunks())
    assert list(store.list_blobs()) == []
    assert backend.temporary_count(store) == 0


def test_store_reopened_sees_the_blobs(backend: Backend, store: ArtifactStore) -> None:
    digest = store.put_stream(iter([b"durable"])).digest
    other = backend.make()
    try:
        assert read_all(other, digest) == b"durable"
    finally:
        other.close()


# -- local-only details ------------------------------------------------------------


def test_local_layout_and_read_only_blobs(tmp_path: Path) -> None:
    store = LocalArtifactStore(tmp_path)
    digest = store.put_stream(iter([b"layout"])).digest
    blob = tmp_path / "blobs" / digest[:2] / digest
    assert blob.read_bytes() == b"layout"
    assert stat.S_IMODE(blob.stat().st_mode) == 0o444
    assert list((tmp_path / "tmp").iterdir()) == []
    with store.local_path(digest) as path:
        assert path == blob


def test_local_verify(tmp_path: Path) -> None:
    store = LocalArtifactStore(tmp_path)
    digest = store.put_stream(iter([b"check me"])).digest
    assert store.verify(digest).size == 8
    blob = tmp_path / "blobs" / digest[:2] / digest
    blob.chmod(0o644)
    blob.write_bytes(b"check m3")
    with pytest.raises(IntegrityError):
        store.verify(digest)


def test_local_list_skips_strays(tmp_path: Path) -> None:
    store = LocalArtifactStore(tmp_path)
    digest = store.put_stream(iter([b"real"])).digest
    (tmp_path / "blobs" / digest[:2] / "notes.txt").write_text("stray")
    (tmp_path / "blobs" / "zz").mkdir()
    (tmp_path / "blobs" / "README").write_text("stray")
    assert [blob.digest for blob in store.list_blobs()] == [digest]


def test_local_move_of_a_hard_linked_file_copies(tmp_path: Path) -> None:
    store = LocalArtifactStore(tmp_path / "store")
    source, other = tmp_path / "model.bin", tmp_path / "alias.bin"
    source.write_bytes(b"linked")
    os.link(source, other)
    digest = store.put_file(source, move=True).digest
    assert not source.exists()
    other.chmod(0o644)
    other.write_bytes(b"changed")  # must not reach the blob
    assert read_all(store, digest) == b"linked"


def test_local_move_of_a_symlink_stores_the_target_bytes(tmp_path: Path) -> None:
    store = LocalArtifactStore(tmp_path / "store")
    target, link = tmp_path / "target.bin", tmp_path / "link.bin"
    target.write_bytes(b"pointed at")
    link.symlink_to(target)
    digest = store.put_file(link, move=True).digest
    blob = tmp_path / "store" / "blobs" / digest[:2] / digest
    assert not blob.is_symlink() and blob.read_bytes() == b"pointed at"
    assert not link.exists() and target.exists()


def test_put_file_with_a_known_digest_stores_the_bytes(
    store: ArtifactStore, tmp_path: Path
) -> None:
    data = os.urandom(3 * KiB)
    source = tmp_path / "staged.bin"
    source.write_bytes(data)
    info = store.put_file(source, move=True, known_digest=sha(data))
    assert info.digest == sha(data) and read_all(store, info.digest) == data
    assert not source.exists()


@pytest.mark.parametrize("move", [False, True])
def test_a_known_digest_is_checked_never_trusted(
    backend: Backend, store: ArtifactStore, tmp_path: Path, move: bool
) -> None:
    """A staged file rewritten after its digest was taken is refused, not stored under it."""
    genuine, rewritten = b"the genuine model", b"the attacker's bytes"
    source = tmp_path / "staged.bin"
    source.write_bytes(rewritten)
    with pytest.raises(IntegrityError) as refused:
        store.put_file(source, move=move, known_digest=sha(genuine))
    assert sha(rewritten) in refused.value.message
    assert source.read_bytes() == rewritten
    assert list(store.list_blobs()) == [] and not store.exists(sha(genuine))
    assert backend.temporary_count(store) == 0
    # The genuine bytes, put later, are stored as themselves.
    source.write_bytes(genuine)
    assert store.put_file(source, move=move, known_digest=sha(genuine)).created
    assert read_all(store, sha(genuine)) == genuine


def test_a_known_digest_that_contradicts_the_expected_one_is_refused(
    store: ArtifactStore, tmp_path: Path
) -> None:
    source = tmp_path / "staged.bin"
    source.write_bytes(b"bytes")
    with pytest.raises(IntegrityError):
        store.put_file(source, expected_digest=sha(b"bytes"), known_digest=sha(b"other"))
    assert list(store.list_blobs()) == []


def test_materialize_writes_a_private_verified_copy(store: ArtifactStore, tmp_path: Path) -> None:
    data = os.urandom(200 * KiB)
    digest = store.put_stream(io.BytesIO(data)).digest
    target = tmp_path / "run" / "data" / "train.csv"
    info = store.materialize(digest, target)
    assert info.digest == digest and target.read_bytes() == data
    assert stat.S_IMODE(target.stat().st_mode) & 0o222 == 0  # read-only, like the blob
    target.chmod(0o644)
    target.write_bytes(b"changed by the run")  # a copy: the store does not change
    assert read_all(store, digest) == data
    store.materialize(digest, target)  # replaces what an earlier attempt left
    assert target.read_bytes() == data


def test_materialize_of_a_corrupted_blob_leaves_nothing(
    backend: Backend, store: ArtifactStore, tmp_path: Path
) -> None:
    data = os.urandom(200 * KiB)
    digest = store.put_stream(io.BytesIO(data)).digest
    backend.overwrite_blob(store, digest, data[:-1] + bytes([data[-1] ^ 1]))
    folder = tmp_path / "run" / "data"
    with pytest.raises(IntegrityError) as refused:
        store.materialize(digest, folder / "train.csv")
    assert digest in refused.value.message
    assert list(folder.iterdir()) == []


def test_materialize_of_a_missing_blob_is_not_found(store: ArtifactStore, tmp_path: Path) -> None:
    with pytest.raises(NotFound):
        store.materialize(sha(b"absent"), tmp_path / "x")
    assert not (tmp_path / "x").exists()
