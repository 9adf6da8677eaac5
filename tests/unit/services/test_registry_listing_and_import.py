"""The registry's model-level listing (checked filters and orders) and registering a
path on the server's disk, only from inside the import folders."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from modelhub.domain.queries import ModelQuery
from modelhub.errors import InvalidInput, NotFound
from modelhub.services import Services
from modelhub.services.registry import RegisterRequest


def imports(services: Services) -> Path:
    folder = services.settings.home / "imports"
    folder.mkdir(exist_ok=True)
    return folder


def test_the_import_folder_defaults_to_the_homes(services: Services) -> None:
    assert services.registry.import_dirs == (services.settings.home / "imports",)


def test_a_file_inside_an_import_folder_is_copied_into_the_registry(
    services: Services, safetensors_file: Path
) -> None:
    source = Path(shutil.copy(safetensors_file, imports(services) / "m.safetensors"))
    request = RegisterRequest(name="imported", type="classification")
    version = services.registry.import_path(request, str(source), "alice")
    assert version.name == "imported" and version.version == 1
    assert [f.path for f in version.files] == ["m.safetensors"]
    assert source.exists()  # copied, not moved


@pytest.mark.parametrize("how", ["outside", "link", "dotdot"])
def test_a_path_that_resolves_outside_every_import_folder_is_refused(
    services: Services, safetensors_file: Path, tmp_path: Path, how: str
) -> None:
    folder = imports(services)
    outside = Path(shutil.copy(safetensors_file, tmp_path / "outside.safetensors"))
    if how == "outside":
        path = str(outside)
    elif how == "link":
        (folder / "link.safetensors").symlink_to(outside)
        path = str(folder / "link.safetensors")
    else:
        path = f"{folder}/../../{outside.relative_to(tmp_path.parent)}"
    with pytest.raises(InvalidInput, match="outside the folders this server imports from"):
        services.registry.import_path(RegisterRequest(name="x", type="custom"), path, "alice")
    with pytest.raises(NotFound):
        services.registry.get_model("x")


def test_a_missing_relative_or_empty_path_is_refused_in_words(services: Services) -> None:
    folder = imports(services)
    request = RegisterRequest(name="x", type="custom")
    with pytest.raises(InvalidInput, match="no such file or directory"):
        services.registry.import_path(request, str(folder / "nothing.onnx"), "alice")
    with pytest.raises(InvalidInput, match="not an absolute path"):
        services.registry.import_path(request, "imports/m.onnx", "alice")
    with pytest.raises(InvalidInput, match="cannot read"):
        services.registry.import_path(request, str(folder / ("x" * 300)), "alice")
    with pytest.raises(InvalidInput, match="give the path"):
        services.registry.import_path(request, "  ", "alice")


def test_a_file_that_is_not_a_model_is_refused_by_inspection(services: Services) -> None:
    junk = imports(services) / "notes.txt"
    junk.write_text("not a model")
    with pytest.raises(InvalidInput):
        services.registry.import_path(RegisterRequest(name="x", type="custom"), str(junk), "a")
    with pytest.raises(NotFound):
        services.registry.get_model("x")


def test_the_listing_checks_its_filters_and_order(services: Services) -> None:
    with pytest.raises(InvalidInput, match="unknown sort"):
        services.registry.list_models(ModelQuery(sort="colour"))
    with pytest.raises(InvalidInput, match="type"):
        services.registry.list_models(ModelQuery(type="spaceship"))
    with pytest.raises(InvalidInput, match="limit"):
        services.registry.list_models(ModelQuery(limit=0))
    assert services.registry.list_models(ModelQuery(stage="Staging")).total == 0
