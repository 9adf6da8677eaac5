"""The lineage graph built from records, and its text, JSON and Mermaid renderings."""

from __future__ import annotations

import re

import pytest

from modelhub.domain.lineage import EdgeKind, LineageGraph, NodeKind
from modelhub.domain.records import ModelVersion
from modelhub.errors import InvalidInput
from modelhub.governance.lineage_graph import (
    build_lineage,
    mermaid_label,
    names_version,
    render,
    render_mermaid,
)
from tests.unit.governance.lineage_records import deployment, version

DIGEST = "ab" * 32


def registry(*versions: ModelVersion) -> tuple[dict[str, ModelVersion], list[ModelVersion]]:
    return {f"{v.name}@{v.version}": v for v in versions}, list(versions)


def graph_of(root: ModelVersion, *others: ModelVersion, deployments=(), **bounds) -> LineageGraph:  # type: ignore[no-untyped-def]
    by_ref, everything = registry(root, *others)
    return build_lineage(
        root,
        by_ref.get,
        lambda v: [c for c in everything if names_version(c, v)],
        lambda v: [d for d in deployments if d.model == v.name],
        **bounds,
    )


def edges(graph: LineageGraph) -> set[tuple[str, str, EdgeKind]]:
    return {(e.source, e.target, e.kind) for e in graph.edges}


def test_a_trained_version_shows_its_datasets_run_pipeline_base_and_what_came_of_it() -> None:
    base = version("intents", 1)
    trained = version(
        "intents",
        2,
        source_run="17",
        pipeline="tune@3",
        datasets=[DIGEST],
        dataset_versions=["chats@4"],
        base_version="intents@1",
    )
    child = version("intents-small", 1, optimised_from="intents@2")
    tuned = version("intents", 3, base_version="intents@2")
    graph = graph_of(
        trained, base, child, tuned, deployments=[deployment("live", "intents", {2: 90, 3: 10})]
    )
    assert graph.root == "version:intents@2"
    assert {n.id: n.kind for n in graph.nodes}[f"dataset:{DIGEST}"] is NodeKind.DATASET
    assert edges(graph) >= {
        (f"dataset:{DIGEST}", "run:17", EdgeKind.TRAINED_ON),
        ("pipeline:tune@3", "run:17", EdgeKind.RAN),
        ("run:17", "version:intents@2", EdgeKind.PRODUCED),
        ("version:intents@1", "version:intents@2", EdgeKind.BASE_OF),
        ("version:intents@2", "version:intents-small@1", EdgeKind.OPTIMISED_INTO),
        ("version:intents@2", "version:intents@3", EdgeKind.BASE_OF),
        ("version:intents@2", "deployment:live", EdgeKind.SERVED_BY),
        ("version:intents@3", "deployment:live", EdgeKind.SERVED_BY),
    }
    dataset = next(n for n in graph.nodes if n.kind is NodeKind.DATASET)
    assert dataset.label == "chats@4" and dataset.details["digest"] == DIGEST
    served = next(n for n in graph.nodes if n.id == "deployment:live")
    assert served.details["traffic"] == "90%"
    assert not graph.truncated


def test_a_cycle_written_into_stored_lineage_ends_and_a_depth_bound_cuts_a_long_chain() -> None:
    a = version("a", 1, base_version="b@1")
    b = version("b", 1, base_version="a@1")
    graph = graph_of(a, b)
    assert edges(graph) == {
        ("version:b@1", "version:a@1", EdgeKind.BASE_OF),
        ("version:a@1", "version:b@1", EdgeKind.BASE_OF),
    }
    assert "(cycle)" in render(graph, "text")

    chain = [version("m", i, base_version=f"m@{i - 1}" if i > 1 else None) for i in range(1, 30)]
    cut = graph_of(chain[-1], *chain[:-1], max_depth=5)
    assert cut.truncated
    assert len([n for n in cut.nodes if n.kind is NodeKind.VERSION]) == 6


def test_a_base_the_registry_no_longer_holds_is_shown_as_missing() -> None:
    graph = graph_of(version("x", 2, base_version="gone@9"))
    missing = next(n for n in graph.nodes if n.id == "version:gone@9")
    assert missing.details == {"missing": "not in the registry"}


def test_text_rendering_is_an_indented_tree_upstream_then_downstream() -> None:
    trained = version("intents", 2, source_run="17", datasets=[DIGEST], dataset_versions=["d@1"])
    text = render(graph_of(trained, version("intents", 3, base_version="intents@2")), "text")
    lines = text.splitlines()
    assert lines[0].startswith("version intents@2")
    assert lines[1] == "  upstream:"
    assert lines[2].startswith("    produced: run 17")
    assert lines[3].startswith("      trained-on: dataset d@1")
    assert "  downstream:" in lines
    assert any(line.startswith("    base-of: version intents@3") for line in lines)


def test_mermaid_ids_are_never_user_text_and_hostile_labels_are_escaped() -> None:
    hostile = 'evil"]; click n0 call alert(1) %%\n<script>|x|'
    root = version("m", 1, dataset_versions=[hostile], datasets=[DIGEST], source_run='r"]-->x')
    text = render_mermaid(graph_of(root))
    lines = text.splitlines()
    assert lines[0] == "graph LR"
    node_lines = [line for line in lines[1:] if "[" in line]
    for line in node_lines:
        assert re.fullmatch(r'    n\d+\["[A-Za-z0-9 @._:/%#;-]*"\]', line), line
    edge_lines = [line for line in lines if "-->" in line]
    for line in edge_lines:
        assert re.fullmatch(r"    n\d+ -->\|[a-z-]+\| n\d+", line), line
    assert "<script>" not in text and '"]' not in text.replace('"]\n', "")
    assert mermaid_label('a"b') == "a#34;b"
    assert mermaid_label("#") == "#35;"


def test_json_rendering_round_trips_and_an_unknown_format_is_refused() -> None:
    graph = graph_of(version("m", 1, source_run="3"))
    assert LineageGraph.model_validate_json(render(graph, "json")) == graph
    with pytest.raises(InvalidInput, match="text, json or mermaid"):
        render(graph, "dot")
