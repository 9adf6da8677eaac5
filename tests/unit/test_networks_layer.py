"""The network architectures lie below both engines: serving and networks never import
training (a trainer), so a replica loads a model without the training engine."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import modelhub

PACKAGE = Path(modelhub.__file__).parent


def imported_modules(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


@pytest.mark.parametrize("package", ["serving", "networks"])
def test_the_package_never_imports_training(package: str) -> None:
    files = sorted((PACKAGE / package).rglob("*.py"))
    assert files
    offenders = {
        f"{path.relative_to(PACKAGE)}: {module}"
        for path in files
        for module in imported_modules(path)
        if module == "modelhub.training" or module.startswith("modelhub.training.")
    }
    assert offenders == set()
