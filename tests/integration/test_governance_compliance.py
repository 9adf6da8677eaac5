"""Compliance checks and ethics reviews over a real server, both clients and the CLI.

One server for the module: a version with no license, a version trained on data with
planted personal data, a version whose blob is overwritten on disk, and ethics reviews.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from modelhub import Client
from modelhub.client.local import LocalClient
from modelhub.domain.governance import Assessment
from modelhub.domain.records import ModelVersion
from modelhub.domain.runs import RunStatus
from modelhub.errors import InvalidInput, PermissionDenied
from modelhub.samples import write_mlp_safetensors
from modelhub.services.registry import RegisterRequest
from modelhub.settings import Settings
from tests.integration.conftest import Cli, ServerProcess, clean_env
from tests.integration.governance_data import ETHICS

# Planted in the training data's "note" column, one per row below (1-based data rows).
PLANTED = {
    "email": ("mara.quist@example.org", 4),
    "phone": ("+44 20 7946 0958", 9),
    "payment_card": ("4111 1111 1111 1111", 15),
    "iban": ("GB82 WEST 1234 5698 7654 32", 22),
    "us_ssn": ("078-05-1120", 30),
    "uk_nino": ("AB 12 34 56 C", 41),
}


def write_training_data(path: Path, rows: int = 120) -> Path:
    rng = random.Random(3)
    notes = {row: value for value, row in PLANTED.values()}
    lines = ["a,b,note,label"]
    for i in range(1, rows + 1):
        c = i % 2
        note = f"customer wrote: {notes[i]} please call" if i in notes else "no remarks"
        lines.append(f"{rng.gauss(c * 3, 1):.3f},{rng.gauss(-c * 3, 1):.3f},{note},{c}")
    path.write_text("\n".join(lines) + "\n")
    return path


def checks_of(result: Assessment) -> dict[str, dict[str, Any]]:
    return {check["name"]: check for check in result.figures["checks"]}


@pytest.fixture(scope="module")
def admin(shared_server: ServerProcess) -> Iterator[Client]:
    with Client(shared_server.url, token=shared_server.token) as client:
        yield client


@pytest.fixture(scope="module")
def trained(admin: Client, tmp_path_factory: pytest.TempPathFactory) -> ModelVersion:
    data = write_training_data(tmp_path_factory.mktemp("pii") / "tickets.csv")
    admin.register_dataset(data, "tickets")
    admin.create_pipeline(
        "name: tickets-mlp\ntype: pre_training\ntrainer: tabular_classifier\n"
        "datasets: [tickets]\nmax_epochs: 1\nresult_model: {name: tickets-clf}\n"
    )
    run = admin.start_run("tickets-mlp")
    deadline = time.monotonic() + 90
    while (run := admin.get_run(run.id)).status is not RunStatus.COMPLETED:
        assert run.status not in (RunStatus.FAILED, RunStatus.CANCELLED), run.error
        assert time.monotonic() < deadline, f"run {run.id} still {run.status}"
        time.sleep(0.1)
    assert run.result_version is not None
    return admin.get(f"tickets-clf@{run.result_version}")


def test_a_version_without_a_license_fails_with_the_reason(admin: Client, tmp_path: Path) -> None:
    weights = write_mlp_safetensors(tmp_path / "w.safetensors")
    admin.register(RegisterRequest(name="unlicensed", type="custom"), weights)
    result = admin.compliance_check("unlicensed", 1)
    checks = checks_of(result)
    assert not result.passed and result.kind == "compliance"
    assert checks["license"]["status"] == "fail"
    assert checks["license"]["reason"].startswith("the model has no license")
    assert checks["safe_serialization"]["status"] == "pass"
    assert checks["artifact_digests"]["status"] == "pass"
    assert checks["lineage"]["status"] == "not_applicable"
    assert "license" in result.summary
    events = admin.audit_events(action="governance.compliance", target="unlicensed@1")
    assert len(events) == 1 and events[0].details["passed"] is False


def test_training_data_with_personal_data_fails_without_showing_it(
    admin: Client, trained: ModelVersion, shared_server: ServerProcess, tmp_path: Path
) -> None:
    admin.update_model("tickets-clf", description="Routes tickets.", license="mit")
    result = admin.compliance_check(trained.name, trained.version)
    check = checks_of(result)["personal_data"]
    assert not result.passed and check["status"] == "fail"
    assert checks_of(result)["lineage"]["status"] == "pass"
    report = check["details"]["datasets"]["tickets@1"]
    for kind, (_, row) in PLANTED.items():
        assert report["kinds"][kind] == {"count": 1, "rows": [row], "rows_total": 1}, kind
    assert report["columns"] == {"note": {kind: 1 for kind in PLANTED}}
    # The CLI shows the same, and none of the values appear anywhere.
    cli = Cli(
        "server",
        clean_env(MODELHUB_URL=shared_server.url, MODELHUB_TOKEN=shared_server.token),
        tmp_path,
    )
    shown = cli.run("governance", "check", f"{trained.name}@{trained.version}").stdout
    assert "personal_data" in shown and "fail" in shown
    audit = json.dumps([e.model_dump(mode="json") for e in admin.audit_events(limit=1000)])
    for text in (result.model_dump_json(), shown, audit):
        for value, _ in PLANTED.values():
            assert value not in text
            assert value.replace(" ", "") not in text.replace(" ", "")


def test_an_overwritten_blob_fails_the_digest_check(
    admin: Client, shared_server: ServerProcess, tmp_path: Path
) -> None:
    weights = write_mlp_safetensors(tmp_path / "w.safetensors", seed=5)
    request = RegisterRequest(name="tampered", type="custom", license="mit")
    version = admin.register(request, weights)
    assert checks_of(admin.compliance_check("tampered", 1))["artifact_digests"]["status"] == "pass"
    digest = version.files[0].digest
    [blob] = list((shared_server.home / "artifacts").rglob(digest))
    blob.chmod(0o644)
    blob.write_bytes(b"\0" * version.files[0].size)
    result = admin.compliance_check("tampered", 1)
    check = checks_of(result)["artifact_digests"]
    assert not result.passed and check["status"] == "fail"
    assert check["reason"].startswith("1 of 1 file(s) failed verification: ")
    assert check["details"]["failed"] == [version.files[0].path]


def test_ethics_reviews(
    admin: Client, trained: ModelVersion, shared_server: ServerProcess, tmp_path: Path
) -> None:
    ref = f"{trained.name}@{trained.version}"
    before = admin.audit_events(action="governance.ethics")
    with pytest.raises(InvalidInput) as caught:
        admin.ethics_review(trained.name, trained.version, "intended_use: x\ndecision: approved\n")
    assert caught.value.details["missing"] == [
        "out_of_scope_uses",
        "affected_groups",
        "risks",
        "human_oversight",
        "contact",
    ]
    with pytest.raises(InvalidInput, match="decision"):
        admin.ethics_review(trained.name, trained.version, ETHICS.replace("approved", "fine"))
    # The admin trained it (the run's creator): the default policy forbids self-review.
    with pytest.raises(PermissionDenied, match="you created it"):
        admin.ethics_review(trained.name, trained.version, ETHICS)
    admin.add_user("rev", "data_scientist")
    admin.add_user("dev", "developer")
    dev_token = admin.create_token("dev")[1]
    with (
        Client(shared_server.url, token=dev_token) as dev,
        pytest.raises(PermissionDenied, match=r"may not models\.approve"),
    ):
        dev.ethics_review(trained.name, trained.version, ETHICS)
    assert admin.audit_events(action="governance.ethics") == before
    token = admin.create_token("rev")[1]
    cli = Cli("server", clean_env(MODELHUB_URL=shared_server.url, MODELHUB_TOKEN=token), tmp_path)
    bad = tmp_path / "bad.yaml"
    bad.write_text("intended_use: x\n")
    refused = cli.run("governance", "ethics", ref, "--file", str(bad), ok=False)
    assert refused.returncode != 0 and "contact" in refused.stderr
    good = tmp_path / "ethics.yaml"
    good.write_text(ETHICS)
    recorded = cli.json("governance", "ethics", ref, "--file", str(good))
    assert recorded["kind"] == "ethics" and recorded["passed"] is True
    assert recorded["actor"] == "rev"
    assert recorded["figures"]["record"]["intended_use"] == "Sort support tickets into two queues."
    # The intended use now completes the model card check.
    card = checks_of(admin.compliance_check(trained.name, trained.version))["model_card"]
    assert card["status"] == "pass", card["reason"]


def test_the_local_client_runs_the_same_checks(tmp_path: Path) -> None:
    weights = write_mlp_safetensors(tmp_path / "w.safetensors")
    with LocalClient(Settings(home=tmp_path / "home"), actor="ada") as local:
        local.register(RegisterRequest(name="local-m", type="custom", license="gpl-3.0"), weights)
        result = local.compliance_check("local-m", 1)
        assert "gpl-3.0 is not in the policy's allowlist" in checks_of(result)["license"]["reason"]
        with pytest.raises(PermissionDenied, match="you created it"):
            local.ethics_review("local-m", 1, ETHICS)
