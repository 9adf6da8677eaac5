"""Build a version's lineage graph from records, and render it as text, JSON or Mermaid.

Pure computation: the caller hands in the root version and three lookups (resolve a
NAME@V reference, the versions made from a version, the deployments serving one).
Upstream follows base and optimised-from references, downstream the versions made
from the root; both stop at `max_depth` and never visit a version twice, so a cycle
written into stored lineage cannot loop.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import Any

from modelhub.domain.deployments import Deployment
from modelhub.domain.lineage import EdgeKind, LineageEdge, LineageGraph, LineageNode, NodeKind
from modelhub.domain.records import ModelVersion
from modelhub.errors import InvalidInput

MAX_DEPTH = 10
MAX_NODES = 500

Resolve = Callable[[str], ModelVersion | None]
Derived = Callable[[ModelVersion], list[ModelVersion]]
Serving = Callable[[ModelVersion], list[Deployment]]


def version_id(name: str, version: int) -> str:
    return f"version:{name}@{version}"


class _Builder:
    def __init__(self, max_nodes: int) -> None:
        self.nodes: dict[str, LineageNode] = {}
        self.edges: dict[tuple[str, str, EdgeKind], LineageEdge] = {}
        self.max_nodes = max_nodes
        self.truncated = False

    def node(self, node: LineageNode) -> bool:
        if node.id in self.nodes:
            return True
        if len(self.nodes) >= self.max_nodes:
            self.truncated = True
            return False
        self.nodes[node.id] = node
        return True

    def edge(self, source: str, target: str, kind: EdgeKind) -> None:
        if source in self.nodes and target in self.nodes:
            self.edges.setdefault(
                (source, target, kind), LineageEdge(source=source, target=target, kind=kind)
            )

    def version(self, v: ModelVersion) -> str:
        details = {
            "framework": v.framework.value,
            "stage": v.stage.value,
            "approval": v.approval.value,
            "digest": v.digest,
        }
        node_id = version_id(v.name, v.version)
        self.node(
            LineageNode(
                id=node_id, kind=NodeKind.VERSION, label=f"{v.name}@{v.version}", details=details
            )
        )
        return node_id

    def sources(self, v: ModelVersion, target: str) -> None:
        """The datasets, run and pipeline a version was made from."""
        lineage = v.lineage
        run_id = None
        if lineage.source_run:
            run_id = f"run:{lineage.source_run}"
            run = LineageNode(
                id=run_id,
                kind=NodeKind.RUN,
                label=lineage.source_run,
                details=federated_details(lineage.federated),
            )
            if self.node(run):
                self.edge(run_id, target, EdgeKind.PRODUCED)
        if lineage.pipeline:
            pipeline_id = f"pipeline:{lineage.pipeline}"
            if self.node(
                LineageNode(id=pipeline_id, kind=NodeKind.PIPELINE, label=lineage.pipeline)
            ):
                self.edge(
                    pipeline_id, run_id or target, EdgeKind.RAN if run_id else EdgeKind.PRODUCED
                )
        names = (
            lineage.dataset_versions
            if len(lineage.dataset_versions) == len(lineage.datasets)
            else []
        )
        for index, digest in enumerate(lineage.datasets):
            label = names[index] if names else digest[:12]
            dataset_id = f"dataset:{digest}"
            node = LineageNode(
                id=dataset_id, kind=NodeKind.DATASET, label=label, details={"digest": digest}
            )
            if self.node(node):
                self.edge(dataset_id, run_id or target, EdgeKind.TRAINED_ON)

    def deployments(self, deployments: Iterable[Deployment], v: ModelVersion, source: str) -> None:
        for deployment in deployments:
            if deployment.model != v.name:
                continue
            share = next((s.percent for s in deployment.traffic if s.version == v.version), None)
            if share is None:
                continue
            deployment_id = f"deployment:{deployment.name}"
            details = {
                "environment": deployment.environment.value,
                "status": deployment.status.value,
                "traffic": f"{share}%",
            }
            node = LineageNode(
                id=deployment_id,
                kind=NodeKind.DEPLOYMENT,
                label=deployment.name,
                details=details,
            )
            if self.node(node):
                self.edge(source, deployment_id, EdgeKind.SERVED_BY)


def federated_details(federated: dict[str, Any]) -> dict[str, str]:
    """A federated run's setup as node details: strategy, rounds, clients, partitioning,
    and `differential_privacy` (noise multiplier and clipping norm) when it had DP."""
    details: dict[str, str] = {
        key: str(federated[key])
        for key in ("engine", "strategy", "rounds", "clients", "partitioning")
        if key in federated
    }
    dp = federated.get("differential_privacy")
    if isinstance(dp, dict):
        details["differential_privacy"] = (
            f"noise_multiplier {dp.get('noise_multiplier')}, "
            f"clipping_norm {dp.get('clipping_norm')}"
        )
    return details


def upstream_refs(v: ModelVersion) -> list[tuple[str, EdgeKind]]:
    refs = []
    if v.lineage.base_version:
        refs.append((v.lineage.base_version, EdgeKind.BASE_OF))
    if v.lineage.optimised_from:
        refs.append((v.lineage.optimised_from, EdgeKind.OPTIMISED_INTO))
    return refs


def build_lineage(
    root: ModelVersion,
    resolve: Resolve,
    derived: Derived,
    serving: Serving,
    max_depth: int = MAX_DEPTH,
    max_nodes: int = MAX_NODES,
) -> LineageGraph:
    """The graph around `root`; `truncated` is set when a bound stopped the walk."""
    graph = _Builder(max_nodes)
    root_id = graph.version(root)
    graph.sources(root, root_id)
    graph.deployments(serving(root), root, root_id)
    seen = {root_id}
    frontier = [(root, root_id)]
    for depth in range(max_depth + 1):
        following = []
        for v, node_id in frontier:
            for ref, kind in upstream_refs(v):
                parent = resolve(ref)
                parent_id = version_id(parent.name, parent.version) if parent else f"version:{ref}"
                if parent is None:
                    graph.node(
                        LineageNode(
                            id=parent_id,
                            kind=NodeKind.VERSION,
                            label=ref,
                            details={"missing": "not in the registry"},
                        )
                    )
                    graph.edge(parent_id, node_id, kind)
                    continue
                if parent_id in seen:
                    graph.edge(parent_id, node_id, kind)
                    continue
                if depth == max_depth:
                    graph.truncated = True
                    continue
                seen.add(parent_id)
                graph.version(parent)
                graph.edge(parent_id, node_id, kind)
                graph.sources(parent, parent_id)
                following.append((parent, parent_id))
        frontier = following
    frontier = [(root, root_id)]
    for depth in range(max_depth + 1):
        following = []
        for v, node_id in frontier:
            for child in derived(v):
                child_id = version_id(child.name, child.version)
                kind = (
                    EdgeKind.OPTIMISED_INTO
                    if _names(child.lineage.optimised_from, v)
                    else EdgeKind.BASE_OF
                )
                if child_id in seen:
                    graph.edge(node_id, child_id, kind)
                    continue
                if depth == max_depth:
                    graph.truncated = True
                    continue
                seen.add(child_id)
                graph.version(child)
                graph.edge(node_id, child_id, kind)
                graph.deployments(serving(child), child, child_id)
                following.append((child, child_id))
        frontier = following
    return LineageGraph(
        root=root_id,
        nodes=list(graph.nodes.values()),
        edges=list(graph.edges.values()),
        truncated=graph.truncated,
    )


def _names(ref: str | None, v: ModelVersion) -> bool:
    return ref is not None and ref == f"{v.name}@{v.version}"


def names_version(candidate: ModelVersion, v: ModelVersion) -> bool:
    """Whether `candidate` records `v` as its base or what it was optimised from."""
    return _names(candidate.lineage.base_version, v) or _names(candidate.lineage.optimised_from, v)


# -- rendering -----------------------------------------------------------------------


def render_text(graph: LineageGraph) -> str:
    """An indented tree: what the root came from, then what came of it."""
    nodes = {n.id: n for n in graph.nodes}
    incoming: dict[str, list[LineageEdge]] = {}
    outgoing: dict[str, list[LineageEdge]] = {}
    for edge in graph.edges:
        incoming.setdefault(edge.target, []).append(edge)
        outgoing.setdefault(edge.source, []).append(edge)
    lines = [_describe(nodes[graph.root])]

    def walk(node_id: str, indent: int, up: bool, path: frozenset[str]) -> None:
        for edge in (incoming if up else outgoing).get(node_id, []):
            other = edge.source if up else edge.target
            cycle = " (cycle)" if other in path else ""
            lines.append(f"{'  ' * indent}{edge.kind.value}: {_describe(nodes[other])}{cycle}")
            if not cycle:
                walk(other, indent + 1, up, path | {other})

    lines.append("  upstream:")
    before = len(lines)
    walk(graph.root, 2, True, frozenset({graph.root}))
    if len(lines) == before:
        lines.append("    (none recorded)")
    lines.append("  downstream:")
    before = len(lines)
    walk(graph.root, 2, False, frozenset({graph.root}))
    if len(lines) == before:
        lines.append("    (none)")
    if graph.truncated:
        lines.append("  (cut short: the graph is deeper or larger than the bound)")
    return "\n".join(lines) + "\n"


def _describe(node: LineageNode) -> str:
    extras = ", ".join(f"{k} {v}" for k, v in node.details.items())
    return f"{node.kind.value} {_one_line(node.label)}" + (
        f" [{_one_line(extras)}]" if extras else ""
    )


def _one_line(text: str) -> str:
    return " ".join(text.split())


_MERMAID_SAFE = re.compile(r"[A-Za-z0-9 @._:/-]")


def mermaid_label(text: str) -> str:
    """`text` as a Mermaid label body: every character outside a small safe set (quotes,
    brackets, angle brackets, pipes, '#', newlines, anything else) as an entity code."""
    return "".join(ch if _MERMAID_SAFE.fullmatch(ch) else f"#{ord(ch)};" for ch in text)


def render_mermaid(graph: LineageGraph) -> str:
    """`graph LR`; node ids are n0, n1 ... (never user text), labels entity-escaped."""
    ids = {node.id: f"n{index}" for index, node in enumerate(graph.nodes)}
    lines = ["graph LR"]
    for node in graph.nodes:
        label = mermaid_label(f"{node.kind.value}: {node.label}")
        lines.append(f'    {ids[node.id]}["{label}"]')
    for edge in graph.edges:
        lines.append(f"    {ids[edge.source]} -->|{edge.kind.value}| {ids[edge.target]}")
    lines.append(f"    style {ids[graph.root]} stroke-width:3px")
    return "\n".join(lines) + "\n"


FORMATS = ("text", "json", "mermaid")


def render(graph: LineageGraph, format: str) -> str:
    """InvalidInput for a format other than text, json or mermaid."""
    if format not in FORMATS:
        raise InvalidInput(
            f"unknown lineage format {format!r}: use text, json or mermaid", {"field": "format"}
        )
    if format == "json":
        return graph.model_dump_json(indent=2) + "\n"
    if format == "mermaid":
        return render_mermaid(graph)
    return render_text(graph)
