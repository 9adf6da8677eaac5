"""The import rules of docs/architecture.md, checked on the source itself.

Every `import modelhub.X` and `from modelhub.X import ...` counts, at the top of a
module or inside a function (a lazy import is still a dependency), so a change that
breaks a rule fails here with the file and line that broke it.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

import modelhub

SOURCE = Path(modelhub.__file__).parent
TRANSPORTS = {"api", "cli", "client", "dashboard"}
ENGINES = {
    "inspect",
    "datasets",
    "networks",
    "training",
    "serving",
    "monitoring",
    "governance",
    "interop",
}
STORES = {"stores"}
ROOT = {"__init__", "__main__"}  # the package's public face and `python -m modelhub`


@dataclass(frozen=True)
class Edge:
    importer: str  # first name below modelhub: "api", "services", "errors", ...
    imported: str
    where: str  # path:line, to point at the line that broke a rule


def _package_of(dotted: str) -> str | None:
    parts = dotted.split(".")
    return parts[1] if len(parts) > 1 and parts[0] == "modelhub" else None


def _edges() -> list[Edge]:
    edges = []
    for path in sorted(SOURCE.rglob("*.py")):
        relative = path.relative_to(SOURCE)
        importer = relative.parts[0].removesuffix(".py")
        module_parts = ["modelhub", *relative.with_suffix("").parts]
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:  # relative: resolve against this module's package
                    base = module_parts[: len(module_parts) - node.level]
                    names = [".".join([*base, *([node.module] if node.module else [])])]
                else:
                    names = [node.module or ""]
            else:
                continue
            for name in names:
                imported = _package_of(name)
                if imported is not None and imported != importer:
                    edges.append(Edge(importer, imported, f"{relative}:{node.lineno}"))
    return edges


EDGES = _edges()


def _breaking(importers: set[str] | None, forbidden: set[str]) -> list[str]:
    return [
        f"{edge.where} imports modelhub.{edge.imported}"
        for edge in EDGES
        if (importers is None or edge.importer in importers) and edge.imported in forbidden
    ]


def test_the_walk_sees_the_layers() -> None:
    """Guards the rules below from passing on an empty walk."""
    assert {("api", "services"), ("services", "stores"), ("services", "serving")} <= {
        (edge.importer, edge.imported) for edge in EDGES
    }


def test_only_transports_import_transports() -> None:
    below = {edge.importer for edge in EDGES} - TRANSPORTS - ROOT
    assert _breaking(below, TRANSPORTS) == []


def test_transports_reach_stores_only_through_services() -> None:
    assert _breaking(TRANSPORTS, STORES) == []


def test_nothing_below_the_services_calls_up_into_them() -> None:
    below = {edge.importer for edge in EDGES} - TRANSPORTS - ROOT - {"services"}
    assert _breaking(below, {"services"}) == []


def test_stores_and_domain_know_no_engine() -> None:
    assert _breaking({"stores", "domain"}, ENGINES) == []
    assert _breaking({"domain"}, STORES) == []


def test_serving_and_training_share_networks_and_never_import_each_other() -> None:
    assert _breaking({"serving"}, {"training"}) == []
    assert _breaking({"training"}, {"serving"}) == []
    assert _breaking({"networks"}, {"training", "serving"}) == []


def test_the_monitoring_engine_is_pure_computation() -> None:
    """It serves every layer above (replicas record minutes with it), so it imports
    none of them: no services, stores, transports, serving or training."""
    forbidden = TRANSPORTS | STORES | {"services", "serving", "training"}
    assert _breaking({"monitoring"}, forbidden) == []


def test_the_governance_engine_is_pure_computation() -> None:
    """Bias figures, attributions, scans, graphs and cards are computed over what the
    services hand in (models may come from networks, data from datasets)."""
    forbidden = TRANSPORTS | STORES | {"services", "serving", "training"}
    assert _breaking({"governance"}, forbidden) == []
