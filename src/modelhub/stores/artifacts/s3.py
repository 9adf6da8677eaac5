"""Artifact store in an S3-compatible bucket: prefix/blobs/ab/<digest>, uploads in prefix/tmp/."""

from __future__ import annotations

import hashlib
import os
import tempfile
import uuid
from collections.abc import Iterable, Iterator
from contextlib import AbstractContextManager, contextmanager, suppress
from dataclasses import replace
from pathlib import Path
from typing import Any, BinaryIO
from urllib.parse import urlsplit

from modelhub.errors import InvalidInput, NotFound, Unavailable
from modelhub.stores.artifacts._hashing import (
    COPY_BUFFER_SIZE,
    DEFAULT_CHUNK_SIZE,
    MiB,
    check_expected,
    iter_file_views,
    iter_source,
    open_regular_file,
    sha256_file,
    verified_chunks,
)
from modelhub.stores.artifacts.base import (
    DIGEST,
    ArtifactStore,
    BlobInfo,
    check_digest,
    required_digest,
)

MIN_PART_SIZE = 8 * MiB  # S3 wants parts of at least 5 MiB, except the last
PARTS_PER_SIZE_STEP = 1000  # part size doubles every 1000 parts: S3 allows 10,000 parts
MISSING_CODES = {"NoSuchKey", "404", "NotFound"}


class S3ArtifactStore(ArtifactStore):
    """Blobs in a bucket. Unknown-digest streams go to a temp key, then are copied into place.

    Credentials come from the constructor or, when omitted, from boto3's own chain
    (environment, profile, instance role); modelhub itself reads no environment.
    """

    def __init__(
        self,
        url: str,
        endpoint_url: str | None = None,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
        *,
        aws_access_key_id: str | None = None,
        aws_secret_access_key: str | None = None,
        region_name: str | None = None,
        local_tmp_dir: Path | None = None,
    ) -> None:
        if chunk_size <= 0:
            raise InvalidInput(f"chunk_size must be positive, got {chunk_size}")
        self.bucket, self.prefix = parse_s3_url(url)
        self.url = url
        self.chunk_size = chunk_size
        self.part_size = max(chunk_size, MIN_PART_SIZE)
        self.local_tmp_dir = local_tmp_dir
        import boto3
        from botocore.config import Config

        config = Config(
            s3={"addressing_style": "path" if endpoint_url else "auto"},
            retries={"max_attempts": 5, "mode": "standard"},
        )
        self._client: Any = boto3.client(
            "s3",
            endpoint_url=endpoint_url,
            aws_access_key_id=aws_access_key_id,
            aws_secret_access_key=aws_secret_access_key,
            region_name=region_name or "us-east-1",
            config=config,
        )

    # -- writes ---------------------------------------------------------------

    def put_stream(
        self, source: BinaryIO | Iterable[bytes], expected_digest: str | None = None
    ) -> BlobInfo:
        if expected_digest is not None:
            check_digest(expected_digest)
        return self._upload(iter_source(source, self.chunk_size), expected_digest)

    def put_file(
        self,
        path: Path,
        expected_digest: str | None = None,
        move: bool = False,
        known_digest: str | None = None,
    ) -> BlobInfo:
        """Hash the file first (one local read) so a stored blob costs no upload.

        A `known_digest` is checked like `expected_digest`, never trusted: the file
        is hashed, and hashed again as it uploads. With move=True the source file
        is removed once the blob is stored; on IntegrityError it is left untouched.
        """
        expected = required_digest(expected_digest, known_digest)
        path = Path(path)
        digest = sha256_file(path)[0]
        check_expected(digest, expected)
        if self.exists(digest):
            info = self.info(digest)
        else:
            # The upload hashes again: the file must not have changed since.
            with open_regular_file(path) as handle:
                info = self._upload(iter_file_views(handle, COPY_BUFFER_SIZE), digest)
        if move:
            path.unlink()
        return info

    def _upload(self, chunks: Iterator[bytes | memoryview], expected: str | None) -> BlobInfo:
        hasher = hashlib.sha256()
        pending = bytearray()
        part_size = self.part_size
        multipart: _MultipartUpload | None = None
        try:
            for chunk in chunks:
                hasher.update(chunk)
                pending += chunk
                if len(pending) >= part_size:
                    if multipart is None:
                        multipart = _MultipartUpload(self, self._key("tmp", uuid.uuid4().hex))
                    multipart.upload_part(pending)
                    pending.clear()
                    if multipart.parts % PARTS_PER_SIZE_STEP == 0:
                        part_size *= 2  # S3 allows 10,000 parts; grow to stay under it
            digest = hasher.hexdigest()
            check_expected(digest, expected)
            final = self._blob_key(digest)
            if multipart is None:  # small enough for one request, straight to its final key
                if self.exists(digest):
                    return self.info(digest)
                with _s3_errors(f"storing blob sha256:{digest}"):
                    self._client.put_object(Bucket=self.bucket, Key=final, Body=bytes(pending))
                return replace(self.info(digest), created=True)
            if pending:
                multipart.upload_part(pending)
            multipart.complete()
            if self.exists(digest):
                return self.info(digest)
            with _s3_errors(f"storing blob sha256:{digest}"):
                self._client.copy({"Bucket": self.bucket, "Key": multipart.key}, self.bucket, final)
            return replace(self.info(digest), created=True)
        finally:
            if multipart is not None:
                multipart.discard()

    # -- reads ----------------------------------------------------------------

    def open_chunks(self, digest: str, chunk_size: int | None = None) -> Iterator[bytes]:
        check_digest(digest)
        with _s3_errors(f"reading blob sha256:{digest}", digest):
            response = self._client.get_object(Bucket=self.bucket, Key=self._blob_key(digest))
        return self._verified_chunks(response["Body"], digest, chunk_size or self.chunk_size)

    def _verified_chunks(self, body: Any, digest: str, chunk_size: int) -> Iterator[bytes]:
        try:
            with _s3_errors(f"reading blob sha256:{digest}", digest):
                yield from verified_chunks(body.iter_chunks(chunk_size), digest)
        finally:
            body.close()

    def local_path(self, digest: str) -> AbstractContextManager[Path]:
        """Download to a temp file (verified while it streams), removed when the context ends."""
        return self._download(digest)

    @contextmanager
    def _download(self, digest: str) -> Iterator[Path]:
        chunks = self.open_chunks(digest)
        fd, name = tempfile.mkstemp(prefix=f"{digest[:12]}-", dir=self.local_tmp_dir)
        path = Path(name)
        try:
            with os.fdopen(fd, "wb") as handle:
                for chunk in chunks:
                    handle.write(chunk)
            yield path
        finally:
            with suppress(FileNotFoundError):
                path.unlink()

    def verify(self, digest: str) -> BlobInfo:
        """Read the whole blob and raise IntegrityError unless it hashes to its name."""
        for _ in self.open_chunks(digest):
            pass
        return self.info(digest)

    def exists(self, digest: str) -> bool:
        try:
            self.info(digest)
        except NotFound:
            return False
        return True

    def info(self, digest: str) -> BlobInfo:
        check_digest(digest)
        with _s3_errors(f"looking up blob sha256:{digest}", digest):
            head = self._client.head_object(Bucket=self.bucket, Key=self._blob_key(digest))
        return BlobInfo(digest=digest, size=head["ContentLength"], created_at=head["LastModified"])

    def delete(self, digest: str) -> None:
        check_digest(digest)
        with _s3_errors(f"deleting blob sha256:{digest}"):
            self._client.delete_object(Bucket=self.bucket, Key=self._blob_key(digest))

    def list_blobs(self) -> Iterator[BlobInfo]:
        blobs = self._key("blobs") + "/"
        for item in self._list(blobs):
            shard, _, digest = item["Key"][len(blobs) :].partition("/")
            if DIGEST.match(digest) and digest[:2] == shard:
                yield BlobInfo(digest=digest, size=item["Size"], created_at=item["LastModified"])

    def clean_temporary(self) -> int:
        """Delete temp keys, abort unfinished multipart uploads. Call when no write is in flight."""
        tmp = self._key("tmp") + "/"
        removed = 0
        keys = [item["Key"] for item in self._list(tmp)]
        with _s3_errors("cleaning temporary uploads"):
            for start in range(0, len(keys), 1000):
                batch = [{"Key": key} for key in keys[start : start + 1000]]
                self._client.delete_objects(
                    Bucket=self.bucket, Delete={"Objects": batch, "Quiet": True}
                )
                removed += len(batch)
            paginator = self._client.get_paginator("list_multipart_uploads")
            for page in paginator.paginate(Bucket=self.bucket, Prefix=tmp):
                for upload in page.get("Uploads", []):
                    with suppress(NotFound):
                        self._abort(upload["Key"], upload["UploadId"])
                        removed += 1
        return removed

    def close(self) -> None:
        self._client.close()

    # -- keys -----------------------------------------------------------------

    def _key(self, *parts: str) -> str:
        return "/".join(part for part in (self.prefix, *parts) if part)

    def _blob_key(self, digest: str) -> str:
        return self._key("blobs", digest[:2], digest)

    def _list(self, prefix: str) -> Iterator[dict[str, Any]]:
        with _s3_errors(f"listing {prefix}"):
            paginator = self._client.get_paginator("list_objects_v2")
            for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix):
                yield from page.get("Contents", [])

    def _abort(self, key: str, upload_id: str) -> None:
        with _s3_errors("aborting an unfinished upload", "upload"):
            self._client.abort_multipart_upload(Bucket=self.bucket, Key=key, UploadId=upload_id)


class _MultipartUpload:
    """A multipart upload to a temp key; `discard` aborts it or deletes what it stored."""

    def __init__(self, store: S3ArtifactStore, key: str) -> None:
        self._store = store
        self._client = store._client
        self.key = key
        self._parts: list[dict[str, Any]] = []
        self._completed = False
        with _s3_errors("starting an upload"):
            response = self._client.create_multipart_upload(Bucket=store.bucket, Key=key)
        self._upload_id: str = response["UploadId"]

    def upload_part(self, data: bytearray) -> None:
        number = len(self._parts) + 1
        with _s3_errors(f"uploading part {number}"):
            response = self._client.upload_part(
                Bucket=self._store.bucket,
                Key=self.key,
                UploadId=self._upload_id,
                PartNumber=number,
                Body=bytes(data),
            )
        self._parts.append({"PartNumber": number, "ETag": response["ETag"]})

    @property
    def parts(self) -> int:
        return len(self._parts)

    def complete(self) -> None:
        with _s3_errors("completing an upload"):
            self._client.complete_multipart_upload(
                Bucket=self._store.bucket,
                Key=self.key,
                UploadId=self._upload_id,
                MultipartUpload={"Parts": self._parts},
            )
        self._completed = True

    def discard(self) -> None:
        with suppress(Unavailable, NotFound):
            if self._completed:
                with _s3_errors("removing a temporary upload"):
                    self._client.delete_object(Bucket=self._store.bucket, Key=self.key)
            else:
                self._store._abort(self.key, self._upload_id)


def parse_s3_url(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    if parts.scheme != "s3" or not parts.netloc:
        raise InvalidInput(f"not an S3 URL (want s3://bucket/prefix): {url!r}", {"url": url})
    return parts.netloc, parts.path.strip("/")


@contextmanager
def _s3_errors(doing: str, missing: str | None = None) -> Iterator[None]:
    """Translate botocore errors; a missing key means NotFound when `missing` names it."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        yield
    except ClientError as exc:
        error = exc.response.get("Error", {})
        code = str(error.get("Code", ""))
        if missing is not None and code in MISSING_CODES | {"NoSuchUpload"}:
            what = f"blob sha256:{missing}" if DIGEST.match(missing) else missing
            raise NotFound(f"{what} is not in the artifact store", {"digest": missing}) from exc
        if code == "NoSuchBucket":
            raise Unavailable(f"S3 bucket does not exist while {doing}", {"code": code}) from exc
        message = error.get("Message") or str(exc)
        raise Unavailable(f"S3 error while {doing}: {code} {message}", {"code": code}) from exc
    except BotoCoreError as exc:
        raise Unavailable(f"S3 unreachable while {doing}: {exc}") from exc
