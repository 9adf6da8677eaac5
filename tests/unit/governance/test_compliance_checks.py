"""Each compliance check's pass and fail, judged over records made here."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pandas as pd
import pytest

from modelhub.domain.enums import Framework, ModelType
from modelhub.domain.governance import Assessment, ReviewKind
from modelhub.domain.governance_status import assessment_requirement
from modelhub.domain.records import FileEntry, Lineage, ModelVersion, RegisteredModel
from modelhub.governance.compliance import (
    CheckStatus,
    DatasetScan,
    check_assessment,
    check_digests,
    check_license,
    check_lineage,
    check_model_card,
    check_personal_data,
    check_serialization,
    verdict,
)
from modelhub.governance.pii import scan_frame

NOW = datetime(2026, 12, 7, tzinfo=UTC)
DIGEST = "a" * 64
TRAINED = Lineage(
    source_run="7",
    pipeline="churn@1",
    datasets=[DIGEST],
    dataset_versions=["churn-data@1"],
)


def model(**given: Any) -> RegisteredModel:
    fields: dict[str, Any] = {
        "name": "m",
        "type": ModelType.CLASSIFICATION,
        "description": "Predicts churn.",
        "owner": "alice",
        "license": "apache-2.0",
        "created_at": NOW,
        "updated_at": NOW,
    }
    return RegisteredModel(**(fields | given))


def version(**given: Any) -> ModelVersion:
    fields: dict[str, Any] = {
        "name": "m",
        "version": 1,
        "type": ModelType.CLASSIFICATION,
        "framework": Framework.SAFETENSORS,
        "size": 10,
        "digest": DIGEST,
        "files": [FileEntry(path="model.safetensors", digest=DIGEST, size=10)],
        "created_at": NOW,
        "created_by": "alice",
    }
    return ModelVersion(**(fields | given))


def assessment(kind: ReviewKind, passed: bool, policy_version: int) -> Assessment:
    return Assessment(
        id=3,
        model="m",
        version=1,
        kind=kind,
        passed=passed,
        policy_version=policy_version,
        summary="dpd 0.31 > 0.1",
        actor="bob",
        created_at=NOW,
    )


def test_license_in_the_allowlist_passes_and_others_fail() -> None:
    assert check_license("MIT", ["mit"]).status is CheckStatus.PASS
    refused = check_license("gpl-3.0", ["mit", "apache-2.0"])
    assert refused.failed and "gpl-3.0 is not in the policy's allowlist" in refused.reason
    missing = check_license(None, ["mit"])
    assert missing.failed and missing.reason.startswith("the model has no license")


def test_a_complete_card_passes() -> None:
    assert check_model_card(model(), version(), "triage of support tickets").status == "pass"
    card = "---\nlicense: mit\n---\n# m\n\n## Uses\n\nRanking tickets.\n"
    assert check_model_card(model(), version(model_card=card), None).status == "pass"


def test_an_incomplete_card_names_what_it_lacks() -> None:
    found = check_model_card(model(description="", license=None), version(lineage=TRAINED), None)
    assert found.failed
    for lacking in ("a description", "a license", "an intended use", "evaluation metrics"):
        assert lacking in found.reason
    trained = version(lineage=TRAINED, metrics={"accuracy": 0.9})
    assert check_model_card(model(), trained, "triage").status == "pass"


def test_safe_serialization() -> None:
    assert check_serialization(version()).status == "pass"
    scanned = {
        "format": "pickle",
        "trust_reason": "pickle files can execute code",
        "pickle_scan": {"dangerous": 0, "suspicious": 0, "scan_error": False},
    }
    pickled = [FileEntry(path="model.pkl", digest=DIGEST, size=10)]
    untrusted = version(files=pickled, inspection=scanned, framework=Framework.SKLEARN)
    assert check_serialization(untrusted).failed
    trusted = untrusted.model_copy(update={"trusted": True})
    assert check_serialization(trusted).status == "pass"
    dangerous = scanned | {"pickle_scan": {"dangerous": 2, "scan_error": False}}
    found = check_serialization(trusted.model_copy(update={"inspection": dangerous}))
    assert found.failed and "2 dangerous import(s)" in found.reason
    folder = {"files": {"weights/model.bin": {"requires_trust": True}}}
    assert check_serialization(version(inspection=folder)).failed
    clean_scan = {"dangerous": 0, "suspicious": 0, "scan_error": False}
    hub = {"weights": {"trust_reason": "weights_only refused it", "pickle_scan": clean_scan}}
    bins = [FileEntry(path="pytorch_model.bin", digest=DIGEST, size=10)]
    nested = version(files=bins, inspection=hub, framework=Framework.HUGGINGFACE)
    refused = check_serialization(nested)
    assert refused.failed and "pytorch_model.bin" in refused.reason
    assert check_serialization(nested.model_copy(update={"trusted": True})).status == "pass"


def test_digests() -> None:
    assert check_digests(2, {}).status == "pass"
    found = check_digests(2, {"model.safetensors": "blob aaa… is corrupted"})
    assert found.failed and "1 of 2 file(s) failed verification: model.safetensors" in found.reason


def test_lineage() -> None:
    assert check_lineage(version()).status is CheckStatus.NOT_APPLICABLE
    assert check_lineage(version(lineage=TRAINED)).status == "pass"
    bare = check_lineage(version(lineage=Lineage(source_run="7")))
    assert bare.failed and "the pipeline" in bare.reason and "the training datasets" in bare.reason
    bad = TRAINED.model_copy(update={"datasets": ["not-a-digest"]})
    assert "a sha256 digest for 1 dataset" in check_lineage(version(lineage=bad)).reason


def test_personal_data() -> None:
    trained = version(lineage=TRAINED)
    clean = scan_frame(pd.DataFrame({"text": ["hello there"] * 10}))
    assert check_personal_data(version(), []).status is CheckStatus.NOT_APPLICABLE
    ok = check_personal_data(trained, [DatasetScan(dataset="d@1", digest=DIGEST, report=clean)])
    assert ok.status == "pass"
    dirty = scan_frame(pd.DataFrame({"text": ["hi", "mail jane@example.com", "x"]}))
    found = check_personal_data(trained, [DatasetScan(dataset="d@1", digest=DIGEST, report=dirty)])
    assert found.failed and "1 email in 1 row" in found.reason
    assert found.details["datasets"]["d@1"]["kinds"]["email"]["rows"] == [2]
    assert "jane@example.com" not in found.model_dump_json()
    unread = DatasetScan(dataset="d@1", digest=DIGEST, error="could not be read")
    assert check_personal_data(trained, [unread]).failed
    assert check_personal_data(trained, []).failed


@pytest.mark.parametrize("kind", [ReviewKind.BIAS, ReviewKind.EXPLAINABILITY])
def test_assessments_under_the_current_policy(kind: ReviewKind) -> None:
    assert check_assessment(kind, False, None, 2).status is CheckStatus.NOT_APPLICABLE
    none = check_assessment(kind, True, None, 2)
    assert none.failed and none.reason == f"no {kind.value} assessment yet"
    stale = check_assessment(kind, True, assessment(kind, True, 1), 2)
    assert stale.failed
    assert stale.reason == "the latest ran under policy version 1, not 2 (in force); run it again"
    failed = check_assessment(kind, True, assessment(kind, False, 2), 2)
    assert failed.failed and failed.reason.startswith("the latest failed: ")
    passed = check_assessment(kind, True, assessment(kind, True, 2), 2)
    assert passed.status == "pass" and passed.reason.startswith("passed: ")
    # The same rule, in the same words, as `governance status` and the production gate.
    for latest in (None, assessment(kind, True, 1), assessment(kind, False, 2)):
        standing = assessment_requirement(kind, latest, 2)
        assert check_assessment(kind, True, latest, 2).reason == standing.reason


def test_the_verdict_fails_on_any_failed_check() -> None:
    checks = [check_license("mit", ["mit"]), check_lineage(version())]
    assert verdict(checks) == (True, "all 2 checks pass (or do not apply)")
    checks.append(check_license(None, ["mit"]))
    assert verdict(checks) == (False, "1 of 3 checks failed: license")
