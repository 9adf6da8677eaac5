"""Staged uploads cannot put bytes into the store under another content's digest."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest

from modelhub.domain.queries import VersionQuery
from modelhub.errors import Conflict, IntegrityError, InvalidInput
from modelhub.services import Services
from modelhub.services.registry import RegisterRequest
from tests.stores import blob_digests, stores_of
from tests.unit.inspect.builders import save_numpy_safetensors

OWNER = "uploader"


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def request(name: str) -> RegisterRequest:
    return RegisterRequest(name=name, type="classification")


def other_model(path: Path) -> bytes:
    """A second valid safetensors file: inspection alone cannot tell it from the first."""
    rng = np.random.default_rng(7)
    weights = {"w": rng.standard_normal((4, 3)).astype(np.float32), "b": np.ones(3, np.float32)}
    return save_numpy_safetensors(path, weights).read_bytes()


def upload(s: Services, relative: str, data: bytes) -> str:
    upload_id = s.uploads.start(OWNER)
    staged = s.uploads.open_file(upload_id, relative, OWNER)
    staged.write(data)
    staged.finish(sha(data))
    return upload_id


def assert_every_blob_hashes_to_its_name(s: Services) -> None:
    with stores_of(s) as stores:
        blobs = {
            b.digest: b"".join(stores.artifacts.open_chunks(b.digest))
            for b in stores.artifacts.list_blobs()
        }  # verified reads
    for digest, data in blobs.items():
        assert sha(data) == digest


def version_count(s: Services) -> int:
    return s.registry.search(VersionQuery(all_versions=True, include_archived=True)).total


def test_a_second_upload_of_a_path_still_arriving_blocks_registration(
    services: Services, safetensors_file: Path
) -> None:
    """The race: a second request rewrites a staged path while the first registers it."""
    genuine = safetensors_file.read_bytes()
    upload_id = upload(services, "model.safetensors", genuine)
    second = services.uploads.open_file(upload_id, "model.safetensors", OWNER)
    second.write(b"not the model")

    with pytest.raises(Conflict) as refused:
        services.uploads.register(upload_id, request("m"), OWNER)
    assert "model.safetensors" in refused.value.message
    assert version_count(services) == 0 and blob_digests(services) == []

    second.abort()  # the first file was never touched by the second writer
    version = services.uploads.register(upload_id, request("m"), OWNER)
    assert version.digest == sha(genuine)
    assert_every_blob_hashes_to_its_name(services)


def test_a_staged_file_changed_after_it_arrived_is_refused_and_poisons_nothing(
    services: Services, safetensors_file: Path, tmp_path: Path
) -> None:
    genuine = safetensors_file.read_bytes()
    evil = other_model(tmp_path / "evil.safetensors")
    upload_id = services.uploads.start(OWNER)
    staged = services.uploads.open_file(upload_id, "model.safetensors", OWNER)
    staged.write(genuine)
    staged.finish(sha(genuine))
    staged.path.write_bytes(evil)  # someone who can write to the staging folder

    with pytest.raises(IntegrityError) as refused:
        services.uploads.register(upload_id, request("m"), OWNER)
    assert refused.value.details["path"] == "model.safetensors"
    assert sha(evil) in refused.value.message and sha(genuine) in refused.value.message
    assert version_count(services) == 0 and blob_digests(services) == []

    # The genuine file, uploaded later, is stored as itself, not deduplicated onto a fake.
    version = services.uploads.register(
        upload(services, "model.safetensors", genuine), request("m"), OWNER
    )
    _, files = services.registry.download("m@latest", tmp_path / "out")
    assert version.digest == sha(genuine) and files[0].read_bytes() == genuine
    assert_every_blob_hashes_to_its_name(services)


def test_a_rewrite_that_finished_is_registered_as_what_it_holds(
    services: Services, safetensors_file: Path, tmp_path: Path
) -> None:
    genuine = safetensors_file.read_bytes()
    replacement = other_model(tmp_path / "replacement.safetensors")
    upload_id = upload(services, "model.safetensors", genuine)
    again = services.uploads.open_file(upload_id, "model.safetensors", OWNER)
    again.write(replacement)
    again.finish()
    version = services.uploads.register(upload_id, request("m"), OWNER)
    assert version.digest == sha(replacement)
    assert_every_blob_hashes_to_its_name(services)


def test_one_path_is_written_by_one_request_at_a_time(services: Services) -> None:
    upload_id = services.uploads.start(OWNER)
    first = services.uploads.open_file(upload_id, "a.bin", OWNER)
    with pytest.raises(Conflict, match=r"a\.bin"):
        services.uploads.open_file(upload_id, "a.bin", OWNER)
    first.write(b"1")
    first.finish()
    services.uploads.open_file(upload_id, "a.bin", OWNER).abort()  # free again once finished


@pytest.mark.parametrize(
    ("first", "second"),
    [("d", "d/x"), ("d/x", "d"), ("d/x", "d/x/y"), ("a/b/c", "a/b")],
)
def test_a_file_and_a_folder_of_one_name_conflict(
    services: Services, first: str, second: str
) -> None:
    upload_id = services.uploads.start(OWNER)
    services.uploads.open_file(upload_id, first, OWNER).finish()
    with pytest.raises(Conflict) as clash:
        services.uploads.open_file(upload_id, second, OWNER)
    assert clash.value.details["path"] == second and repr(second) in clash.value.message
    # ... and while the first one is still arriving
    other = services.uploads.start(OWNER)
    arriving = services.uploads.open_file(other, first, OWNER)
    with pytest.raises(Conflict):
        services.uploads.open_file(other, second, OWNER)
    arriving.abort()


def test_a_path_component_longer_than_the_file_system_allows_is_invalid(
    services: Services,
) -> None:
    upload_id = services.uploads.start(OWNER)
    path = "weights/" + "x" * 256
    with pytest.raises(InvalidInput) as refused:
        services.uploads.open_file(upload_id, path, OWNER)
    assert refused.value.details["value"] == path
    services.uploads.open_file(upload_id, "weights/" + "x" * 255, OWNER).finish()
