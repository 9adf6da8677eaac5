"""Lineage, model cards and the auditor's report on versions trained here, end to end.

A real server trains a tiny char-level model from a registered dataset, fine-tunes a
second version from it and deploys the first; the lineage shows the dataset digest,
run and pipeline upstream and the fine-tuned version and deployment downstream; the
generated card round-trips through huggingface_hub and `models download` exports it
as README.md; the report holds the version's audit events.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from huggingface_hub import ModelCard, ModelCardData

from modelhub.client.http import Client
from modelhub.client.local import LocalClient
from modelhub.domain.lineage import EdgeKind, NodeKind
from modelhub.errors import InvalidInput, NotFound, PermissionDenied
from modelhub.samples import write_mlp_safetensors
from modelhub.services.deployments import DeployRequest
from modelhub.services.registry import RegisterRequest
from modelhub.settings import Settings
from tests.integration.conftest import Cli, ServerProcess, clean_env
from tests.integration.governance_data import train

LINES = ["the persona answers kindly and briefly.", "she remembers names and thanks people."] * 40
SMALL = "{context_length: 16, d_model: 16, n_heads: 2, batch_size: 16, learning_rate: 0.01}"


@pytest.fixture(scope="module")
def trained(
    shared_server: ServerProcess, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Client]:
    """persona-lm@1 trained from persona-corpus, @2 fine-tuned from it, @1 deployed."""
    corpus = tmp_path_factory.mktemp("lineage") / "corpus.jsonl"
    corpus.write_text("".join(json.dumps({"text": line}) + "\n" for line in LINES))
    with Client(shared_server.url, token=shared_server.token) as client:
        client.register_dataset(corpus, "persona-corpus")
        train(
            client,
            "name: lm-pre\ntype: pre_training\ntrainer: char_lm\ndatasets: [persona-corpus]\n"
            f"max_epochs: 1\nhyperparameters: {SMALL}\nresult_model: {{name: persona-lm}}\n",
        )
        train(
            client,
            "name: lm-more\ntype: fine_tuning\ntrainer: char_lm\nbase_model: persona-lm@1\n"
            f"datasets: [persona-corpus]\nmax_epochs: 1\nhyperparameters: {SMALL}\n"
            "result_model: {name: persona-lm}\n",
        )
        deployment = client.deploy(DeployRequest(ref="persona-lm@1", name="lm-dev"))
        try:
            yield client
        finally:
            client.stop_deployment(deployment.name)


def cli(server: ServerProcess, cwd: Path, *args: str) -> str:
    env = clean_env(MODELHUB_URL=server.url, MODELHUB_TOKEN=server.token)
    done = Cli("server", env, cwd).run(*args, ok=False)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_lineage_shows_dataset_run_pipeline_upstream_and_versions_and_deployments_downstream(
    trained: Client, shared_server: ServerProcess, tmp_path: Path
) -> None:
    dataset = trained.get_dataset("persona-corpus")
    v1 = trained.get("persona-lm@1")
    graph = trained.lineage("persona-lm", 1)
    nodes = {n.id: n for n in graph.nodes}
    edges = {(e.source, e.target, e.kind) for e in graph.edges}
    run = f"run:{v1.lineage.source_run}"
    assert nodes[f"dataset:{dataset.digest}"].label == f"persona-corpus@{dataset.version}"
    assert nodes[run].kind is NodeKind.RUN
    assert (f"dataset:{dataset.digest}", run, EdgeKind.TRAINED_ON) in edges
    assert (run, "version:persona-lm@1", EdgeKind.PRODUCED) in edges
    assert ("pipeline:lm-pre@1", run, EdgeKind.RAN) in edges
    assert ("version:persona-lm@1", "version:persona-lm@2", EdgeKind.BASE_OF) in edges
    assert ("version:persona-lm@1", "deployment:lm-dev", EdgeKind.SERVED_BY) in edges

    upward = trained.lineage("persona-lm", 2)
    assert ("version:persona-lm@1", "version:persona-lm@2", EdgeKind.BASE_OF) in {
        (e.source, e.target, e.kind) for e in upward.edges
    }

    text = cli(shared_server, tmp_path, "models", "lineage", "persona-lm@1")
    assert text.splitlines()[0].startswith("version persona-lm@1")
    assert f"trained-on: dataset persona-corpus@{dataset.version}" in text
    mermaid = cli(shared_server, tmp_path, "models", "lineage", "persona-lm@1", "-f", "mermaid")
    assert mermaid.startswith("graph LR\n") and "-->|served-by|" in mermaid


def test_the_card_round_trips_is_stored_and_exported_by_download(
    trained: Client, shared_server: ServerProcess, tmp_path: Path
) -> None:
    out = tmp_path / "README.md"
    cli(shared_server, tmp_path, "models", "card", "persona-lm@2", "-o", str(out), "--save")
    card = ModelCard(out.read_text())
    assert isinstance(card.data, ModelCardData)
    assert card.data.base_model == "persona-lm@1"
    assert card.data.datasets == [f"persona-corpus@{trained.get_dataset('persona-corpus').version}"]
    assert "## Environmental impact" in card.text and "CPU seconds" in card.text
    assert trained.get("persona-lm@2").model_card == out.read_text()

    folder = tmp_path / "download"
    cli(shared_server, tmp_path, "models", "download", "persona-lm@2", "-o", str(folder))
    assert (folder / "README.md").read_text() == out.read_text()
    bare = tmp_path / "bare"
    trained.download("persona-lm@1", bare)
    assert not (bare / "README.md").exists()  # no card stored with @1


def test_the_report_holds_policy_lineage_and_the_versions_audit_events(
    trained: Client, shared_server: ServerProcess, tmp_path: Path
) -> None:
    trained.set_model_card("persona-lm@1", "# hand-written card\n")
    out = tmp_path / "report.md"
    cli(shared_server, tmp_path, "governance", "report", "persona-lm@1", "-o", str(out))
    report = out.read_text()
    assert report.startswith("# Auditor's report: persona-lm@1")
    assert f"sha256:{trained.get('persona-lm@1').digest}" in report
    assert "## The policy in force" in report and "Policy version 0" in report
    assert "base-of: version persona-lm@2" in report
    audit = report[report.index("## Audit events") :]
    assert "models.register" in audit and "models.card" in audit
    assert trained.governance_report("persona-lm", 1).text.startswith("# Auditor's report")


def test_bad_references_are_refused_and_a_viewer_reads_all_but_the_audit_log(
    trained: Client, shared_server: ServerProcess
) -> None:
    with pytest.raises(NotFound):
        trained.lineage("persona-lm", 99)
    with pytest.raises(InvalidInput):
        trained.model_card("bad name!", 1)
    trained.add_user("vera", "viewer")
    viewer_token = trained.create_token("vera")[1]
    with Client(shared_server.url, token=viewer_token) as viewer:
        assert viewer.model_card("persona-lm", 1).model == "persona-lm"
        assert viewer.lineage("persona-lm", 1).root == "version:persona-lm@1"
        # The audit log is the admins' to read: the viewer's report leaves it out.
        report = viewer.governance_report("persona-lm", 1).text
        audit = report[report.index("## Audit events") :]
        assert "Shown only to those who may read the audit log" in audit
        assert "models.register" not in audit
        with pytest.raises(PermissionDenied):
            viewer.set_model_card("persona-lm@1", "nope")


def test_the_local_client_gives_the_same_documents(tmp_path: Path) -> None:
    weights = write_mlp_safetensors(tmp_path / "m.safetensors")
    with LocalClient(Settings(home=tmp_path / "home"), actor="ada") as local:
        base = local.register(
            RegisterRequest(name="mlp", type="classification", license="mit"), weights
        )
        graph = local.lineage("mlp", base.version)
        assert graph.root == "version:mlp@1" and len(graph.nodes) == 1
        card = local.model_card("mlp", 1)
        data = ModelCard(card.text).data
        assert isinstance(data, ModelCardData) and data.license == "mit"
        assert "## Audit events" in local.governance_report("mlp", 1).text
