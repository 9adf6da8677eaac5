"""A version's lineage as a typed graph: where it came from and what came of it.

Nodes are versions, datasets, runs, pipelines and deployments; edges point the way
things flowed (a dataset feeds a run, a run produces a version, a version is the base
of another, a deployment serves a version).
"""

from __future__ import annotations

from enum import StrEnum

from pydantic import Field

from modelhub.domain.records import Record


class NodeKind(StrEnum):
    VERSION = "version"
    DATASET = "dataset"
    RUN = "run"
    PIPELINE = "pipeline"
    DEPLOYMENT = "deployment"


class EdgeKind(StrEnum):
    TRAINED_ON = "trained-on"  # dataset -> run (or -> version when no run is known)
    RAN = "ran"  # pipeline -> run
    PRODUCED = "produced"  # run -> version
    BASE_OF = "base-of"  # base version -> version fine-tuned from it
    OPTIMISED_INTO = "optimised-into"  # version -> version optimised from it
    SERVED_BY = "served-by"  # version -> deployment


class LineageNode(Record):
    id: str  # unique in the graph: "<kind>:<key>"
    kind: NodeKind
    label: str
    details: dict[str, str] = Field(default_factory=dict)


class LineageEdge(Record):
    source: str
    target: str
    kind: EdgeKind


class LineageGraph(Record):
    """`root` is the version asked about; `truncated` says a depth or size bound cut it."""

    root: str
    nodes: list[LineageNode] = Field(default_factory=list)
    edges: list[LineageEdge] = Field(default_factory=list)
    truncated: bool = False


class VersionDocument(Record):
    """A Markdown document generated about one version (its model card, the auditor's report)."""

    model: str
    version: int
    text: str
