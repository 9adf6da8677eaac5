"""Governance end to end over one real server: a developer's high-risk tabular classifier,
trained here on generated people with a sensitive column, is held from production until
the policy is met, then deployed; a new policy version makes its evidence stale; its
model card and the auditor's report hold what was done.

One server for the module, the HTTP client and a few CLI calls, as users would run them.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from huggingface_hub import ModelCard, ModelCardData

from modelhub.client import Client
from modelhub.domain.bias import BiasOptions
from modelhub.domain.explanation import ExplainOptions
from modelhub.errors import IllegalTransition
from modelhub.services.deployments import DeployRequest
from tests.integration.conftest import Cli, ServerProcess, clean_env
from tests.integration.governance_data import ETHICS, spec, train, write_people

NAME = "loans-fair"
REF = f"{NAME}@1"


@pytest.fixture(scope="module")
def tokens(shared_server: ServerProcess) -> dict[str, str]:
    """The developer who builds the model, a data scientist and the admin who review it."""
    with Client(shared_server.url, token=shared_server.token) as admin:
        found = {"admin": shared_server.token}
        for user, role in (("dev", "developer"), ("sci", "data_scientist")):
            admin.add_user(user, role)
            found[user] = admin.create_token(user)[1]
        return found


def client(server: ServerProcess, tokens: dict[str, str], user: str) -> Client:
    return Client(server.url, token=tokens[user])


def cli(server: ServerProcess, tokens: dict[str, str], user: str, cwd: Path) -> Cli:
    return Cli("server", clean_env(MODELHUB_URL=server.url, MODELHUB_TOKEN=tokens[user]), cwd)


def test_a_high_risk_model_reaches_production_only_when_the_policy_is_met(
    shared_server: ServerProcess, tokens: dict[str, str], tmp_path: Path
) -> None:
    srv = shared_server
    train_csv = write_people(tmp_path / "train.csv", 1200, seed=1, kind="fair")
    eval_csv = write_people(tmp_path / "eval.csv", 600, seed=2, kind="fair")
    with client(srv, tokens, "dev") as dev:
        dev.register_dataset(train_csv, "fair-people")
        train(dev, spec(NAME, "fair-people"))
        dev.update_model(
            NAME,
            description="Scores loan applications from two numeric features.",
            license="apache-2.0",
            tags={"risk": "high"},
        )
        assert dev.get(REF).created_by == "dev"
        dev.set_stage(NAME, 1, "staging")

        # (a) refused, naming every missing piece
        with pytest.raises(IllegalTransition) as refused:
            dev.deploy(DeployRequest(ref=REF, environment="production"))
        missing = refused.value.details["missing"]
        assert [line.split(":")[0] for line in missing] == [
            "approval",
            "compliance",
            "bias",
            "explainability",
            "ethics",
        ]
        assert missing[0].startswith("approval: no review request yet; 2 approval(s)")

        # (b) the evidence, then two reviewers
        bias = dev.assess_bias(NAME, 1, eval_csv, BiasOptions(sensitive=["group"], label="label"))
        assert bias.passed, bias.summary
        explained = dev.explain(NAME, 1, eval_csv, ExplainOptions(label="label"))
        assert explained.assessment.passed, explained.assessment.summary
        assert {r.feature for r in explained.ranking[:2]} == {"x1", "x2"}
    sci_cli = cli(srv, tokens, "sci", tmp_path)
    (tmp_path / "ethics.yaml").write_text(ETHICS)
    ethics = sci_cli.json("governance", "ethics", REF, "--file", "ethics.yaml")
    assert ethics["passed"] is True and ethics["actor"] == "sci"
    with client(srv, tokens, "dev") as dev:
        compliance = dev.compliance_check(NAME, 1)
        failed = [c for c in compliance.figures["checks"] if c["status"] == "fail"]
        assert compliance.passed, failed
        dev.request_review(NAME, 1, ["sci", "admin"])
    with client(srv, tokens, "sci") as sci:
        assert sci.review(NAME, 1, True, "figures within the bars").approval.value == "pending"
    status = sci_cli.json("governance", "status", REF)
    assert status["missing"] == [
        "approval: approvals 1 of 2 (from admin, data_scientist); the creator dev cannot approve"
    ]
    with client(srv, tokens, "admin") as admin:
        assert admin.review(NAME, 1, True, "second look, fine").approval.value == "approved"

    # (c) the same deploy now succeeds
    with client(srv, tokens, "dev") as dev:
        assert dev.governance_status(NAME, 1).ready
        deployment = dev.deploy(DeployRequest(ref=REF, environment="production"))
        try:
            assert deployment.environment.value == "production"
            assert deployment.versions == [1]
        finally:
            dev.stop_deployment(deployment.name)

    with client(srv, tokens, "admin") as admin:
        # (d) a new policy version: the assessments made under the old one are stale
        policy = admin.show_policy()
        admin.set_policy(policy.text + "\n# tightened review cycle\n")
        stale = admin.governance_status(NAME, 1)
        assert not stale.ready
        old = policy.version
        assert stale.missing == [
            f"{kind}: the latest ran under policy version {old}, not {old + 1} (in force); "
            "run it again"
            for kind in ("compliance", "bias", "explainability", "ethics")
        ]

        # (e) the model card and the auditor's report
        card_text = admin.model_card(NAME, 1).text
        card = ModelCard(card_text)
        assert isinstance(card.data, ModelCardData) and card.data.license == "apache-2.0"
        assert "risk:high" in (card.data.tags or [])
        [grouping] = bias.figures["groupings"]
        dpd = grouping["worst"]["demographic_parity_difference"]["value"]
        assert "### Grouping: group" in card.text
        assert f"| demographic parity difference | {dpd:.4g} | at most 0.1 | pass |" in card.text
        sizes = {g["group"]: g["size"] for g in grouping["groups"]}
        assert f"| a | {sizes['a']} |" in card.text and f"| b | {sizes['b']} |" in card.text
        assert "- Sort support tickets into two queues." in card.text  # the ethics record
        assert f"| 1 | {explained.ranking[0].feature} |" in card.text

    admin_cli = cli(srv, tokens, "admin", tmp_path)
    admin_cli.run("governance", "report", REF, "-o", "report.md")
    report = (tmp_path / "report.md").read_text()
    assert "## What the policy still needs" in report
    assert f"{REF} is **NOT ready** for production under policy version {old + 1}" in report
    assert "| bias | missing | the latest ran under policy version" in report
    for kind in ("bias", "explainability", "ethics", "compliance"):
        assert f"\n| {kind} | passed | {old} |" in report, kind
    assert "#### Grouping: group" in report and "#### Most important features" in report
    assert "| sci | data_scientist | approve |" in report
    assert "| admin | admin | approve |" in report
    for action in (
        "governance.bias",
        "governance.explainability",
        "governance.ethics",
        "governance.compliance",
        "governance.request",
        "governance.decision",
        "governance.request.approved",
        "models.approve",
    ):
        assert f"| {action} |" in report, action
