"""The governance workflow over a real server: the policy set through the API and the
CLI, two reviewers' approvals, and the production gate of `deploy` with its override."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from modelhub.client import Client
from modelhub.errors import IllegalTransition, InvalidInput
from modelhub.samples import write_mlp_safetensors
from modelhub.services.deployments import DeployRequest
from modelhub.services.registry import RegisterRequest
from tests.integration.conftest import Cli, ServerProcess, clean_env

TWO_APPROVALS = """\
format: 1
stages:
  production:
    requires: [approval]
approvals:
  count: 2
  roles: [admin, data_scientist]
"""


def test_a_bad_policy_is_a_400_naming_each_problem(shared_server: ServerProcess) -> None:
    bad = "format: 1\nstages: {production: {requires: [vibes]}}\nlicences: [mit]\n"
    with httpx.Client(base_url=shared_server.url, headers=shared_server.headers) as http:
        before = http.get("/api/v1/governance/policy/history").json()
        refused = http.put("/api/v1/governance/policy", json={"text": bad})
        assert refused.status_code == 400, refused.text
        error = refused.json()["error"]
        assert "unknown review kind 'vibes'" in error["message"]
        assert {e["field"] for e in error["details"]["errors"]} == {
            "stages.production.requires.0",
            "licences",
        }
        huge = http.put("/api/v1/governance/policy", json={"text": "#" * 300_000})
        assert huge.status_code in (400, 422)
        assert http.get("/api/v1/governance/policy/history").json() == before


def test_the_gate_holds_a_production_deploy_until_two_reviewers_approve(
    shared_server: ServerProcess, tmp_path: Path
) -> None:
    srv = shared_server
    cli = Cli("server", clean_env(MODELHUB_URL=srv.url, MODELHUB_TOKEN=srv.token), tmp_path)
    (tmp_path / "policy.yaml").write_text(TWO_APPROVALS)
    assert cli.json("governance", "policy", "set", "policy.yaml")["version"] >= 1
    assert cli.json("governance", "policy", "show")["text"] == TWO_APPROVALS

    weights = write_mlp_safetensors(tmp_path / "w.safetensors")
    with Client(srv.url, token=srv.token) as admin:
        admin.register(RegisterRequest(name="gated", type="custom"), weights)
        admin.set_stage("gated", 1, "staging")
        tokens = {}
        for user in ("rev-one", "rev-two"):
            admin.add_user(user, "data_scientist")
            tokens[user] = admin.create_token(user)[1]
        admin.request_review("gated", 1, ["rev-one", "rev-two"])
        with pytest.raises(IllegalTransition, match="not approved") as refused:
            admin.deploy(DeployRequest(ref="gated@1", environment="production"))
        assert refused.value.details["missing"] == [
            "approval: approvals 0 of 2 (from admin, data_scientist); "
            "the creator admin cannot approve"
        ]
    with Client(srv.url, token=tokens["rev-one"]) as one:
        assert one.review("gated", 1, True, "ok").approval.value == "pending"
        with pytest.raises(InvalidInput):
            one.request_review("gated", 1, ["x" * 65])

    status = cli.json("governance", "status", "gated@1")
    assert status["ready"] is False
    assert status["missing"] == [
        "approval: approvals 1 of 2 (from admin, data_scientist); the creator admin cannot approve"
    ]
    assert [d["reviewer"] for d in status["decisions"]] == ["rev-one"]

    with Client(srv.url, token=srv.token) as admin:
        forced = admin.deploy(
            DeployRequest(
                ref="gated@1", environment="production", name="gated-forced",
                override_approval=True,
            )
        )  # fmt: skip
        assert forced.approval_override
        admin.stop_deployment("gated-forced")
        [event] = admin.audit_events(action="deployments.create", target="gated-forced")
        assert event.actor == "admin"
        assert event.details["approval_override"] == "pending"
        assert event.details["override_missing"] == status["missing"]

    with Client(srv.url, token=tokens["rev-two"]) as two:
        assert two.approve("gated", 1, "ok too").approval.value == "approved"
    with Client(srv.url, token=srv.token) as admin:
        assert admin.governance_status("gated", 1).ready
        admin.set_stage("gated", 1, "production")
        deployed = admin.deploy(DeployRequest(ref="gated@1", environment="production"))
        assert not deployed.approval_override
        admin.stop_deployment(deployed.name)
        approvals = admin.audit_events(action="governance.request.approved", target="gated@1")
        assert approvals[0].details["approvers"] == ["rev-one", "rev-two"]
    history = cli.json("governance", "policy", "history")
    assert [v["version"] for v in history][-1] == 0
