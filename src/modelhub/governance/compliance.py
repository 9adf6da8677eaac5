"""The compliance checks of one version, each a verdict with its reason.

Pure judgement over facts the service gathered (the version, its model, what reading
its blobs back found, the scans of its training data, its latest assessments): every
function returns one `Check`. A check that does not apply to this version (lineage of
an uploaded, untrained version; a bias assessment the policy does not require) says
so and does not fail. The version passes when no check fails.
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from modelhub.domain.governance import Assessment, ReviewKind
from modelhub.domain.governance_status import assessment_requirement
from modelhub.domain.records import Lineage, ModelVersion, RegisteredModel
from modelhub.governance.pii import PiiReport

PICKLE_SUFFIXES = (".pkl", ".pickle", ".joblib")
_DIGEST = re.compile(r"[0-9a-f]{64}")
_USES_HEADING = re.compile(r"^#{1,6}\s*(?:intended\s+)?uses?\b", re.IGNORECASE | re.MULTILINE)


class CheckStatus(StrEnum):
    PASS = "pass"
    FAIL = "fail"
    NOT_APPLICABLE = "not_applicable"


class Check(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    status: CheckStatus
    reason: str
    details: dict[str, Any] = Field(default_factory=dict)

    @property
    def failed(self) -> bool:
        return self.status is CheckStatus.FAIL


def _verdict(name: str, ok: bool, reason: str, **details: Any) -> Check:
    status = CheckStatus.PASS if ok else CheckStatus.FAIL
    return Check(name=name, status=status, reason=reason, details=details)


def is_trained(version: ModelVersion) -> bool:
    """A version a training run produced (its lineage names the run)."""
    return version.lineage.source_run is not None


def check_license(license: str | None, allowed: list[str]) -> Check:
    allowed_text = ", ".join(allowed) or "none"
    if not license:
        return _verdict(
            "license", False, f"the model has no license; the policy allows: {allowed_text}"
        )
    ok = license.lower() in {name.lower() for name in allowed}
    reason = (
        f"license {license} is in the policy's allowlist"
        if ok
        else f"license {license} is not in the policy's allowlist ({allowed_text})"
    )
    return _verdict("license", ok, reason, license=license, allowed=allowed)


def check_model_card(
    model: RegisteredModel, version: ModelVersion, intended_use: str | None
) -> Check:
    """Complete: a description, a license, an intended use (from the ethics review or a
    "Uses" section of the stored card) and, for a trained version, evaluation metrics."""
    card = version.model_card or ""
    missing = []
    if not model.description.strip() and not card.strip():
        missing.append("a description (the model's, or a stored model card)")
    if not model.license:
        missing.append("a license")
    if not (intended_use or "").strip() and not _USES_HEADING.search(card):
        missing.append("an intended use (an ethics review, or a 'Uses' section in the card)")
    if is_trained(version) and not version.metrics:
        missing.append("evaluation metrics (a trained version records them)")
    if missing:
        return _verdict("model_card", False, "the model card lacks " + "; ".join(missing))
    return _verdict(
        "model_card", True, "description, license, intended use and metrics are all present"
    )


def check_serialization(version: ModelVersion) -> Check:
    """No pickle that could run code unless an admin trusted it after a clean scan."""
    inspection = version.inspection
    pickled = sorted(
        {
            path
            for path, info in (inspection.get("files") or {}).items()
            if isinstance(info, dict) and info.get("requires_trust")
        }
        | {f.path for f in version.files if f.path.lower().endswith(PICKLE_SUFFIXES)}
    )
    scans, needs_trust = _trust_markers(inspection)
    if needs_trust and not pickled:
        pickled = [f.path for f in version.files] or ["the model file"]
    if not pickled and not scans:
        return _verdict(
            "safe_serialization", True, "no pickle: every file loads without running code"
        )
    dangerous = sum(int(scan.get("dangerous", 0)) for scan in scans)
    scan_error = any(scan.get("scan_error") for scan in scans)
    where = ", ".join(pickled[:10])
    if not version.trusted:
        return _verdict(
            "safe_serialization",
            False,
            f"pickle-based files ({where}) are not marked trusted",
            files=pickled[:50],
        )
    if dangerous or scan_error:
        problem = f"{dangerous} dangerous import(s)" if dangerous else "an unreadable pickle"
        return _verdict(
            "safe_serialization",
            False,
            f"the pickle scan of {where} found {problem}",
            files=pickled[:50],
            dangerous=dangerous,
        )
    return _verdict(
        "safe_serialization",
        True,
        f"pickle-based files ({where}) were scanned at registration with no dangerous "
        "import and marked trusted",
        files=pickled[:50],
    )


def _trust_markers(details: dict[str, Any], depth: int = 0) -> tuple[list[dict[str, Any]], bool]:
    """The pickle scans recorded anywhere in an inspection (a folder's main file, a Hugging
    Face folder's weights), and whether any part of it required trust."""
    scans: list[dict[str, Any]] = []
    needs_trust = "trust_reason" in details or details.get("requires_trust") is True
    if isinstance(details.get("pickle_scan"), dict):
        scans.append(details["pickle_scan"])
        needs_trust = True
    if depth < 4:
        for value in details.values():
            if isinstance(value, dict):
                found, trust = _trust_markers(value, depth + 1)
                scans.extend(found)
                needs_trust = needs_trust or trust
    return scans, needs_trust


def check_digests(files: int, problems: dict[str, str]) -> Check:
    """`problems`: file path -> what reading it back found (absent: it verified)."""
    if problems:
        listed = "; ".join(f"{path}: {problem}" for path, problem in list(problems.items())[:10])
        return _verdict(
            "artifact_digests",
            False,
            f"{len(problems)} of {files} file(s) failed verification: {listed}",
            failed=list(problems)[:100],
        )
    return _verdict(
        "artifact_digests", True, f"all {files} file(s) read back and matched their sha256"
    )


def check_lineage(version: ModelVersion) -> Check:
    lineage: Lineage = version.lineage
    if not is_trained(version):
        return Check(
            name="lineage",
            status=CheckStatus.NOT_APPLICABLE,
            reason="not a trained version (no training run in its lineage)",
        )
    missing = []
    if not lineage.pipeline:
        missing.append("the pipeline")
    if not lineage.datasets:
        missing.append("the training datasets")
    bad = [d for d in lineage.datasets if not _DIGEST.fullmatch(d)]
    if bad:
        missing.append(f"a sha256 digest for {len(bad)} dataset(s)")
    if lineage.dataset_versions and len(lineage.dataset_versions) != len(lineage.datasets):
        missing.append("one name@version per dataset digest")
    if missing:
        return _verdict(
            "lineage", False, f"run {lineage.source_run}'s lineage lacks " + "; ".join(missing)
        )
    return _verdict(
        "lineage",
        True,
        f"run {lineage.source_run} of {lineage.pipeline} on "
        + ", ".join(lineage.dataset_versions or lineage.datasets),
        run=lineage.source_run,
        datasets=lineage.dataset_versions,
    )


class DatasetScan(BaseModel):
    """One training dataset's personal-data scan, or why it could not be scanned."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    dataset: str
    digest: str
    report: PiiReport | None = None
    error: str | None = None


def check_personal_data(version: ModelVersion, scans: list[DatasetScan]) -> Check:
    if not is_trained(version):
        return Check(
            name="personal_data",
            status=CheckStatus.NOT_APPLICABLE,
            reason="not a trained version: no training data to scan",
        )
    if not scans:
        return _verdict("personal_data", False, "the lineage names no training data to scan")
    details = {
        scan.dataset: scan.report.model_dump() if scan.report else {"error": scan.error}
        for scan in scans
    }
    unread = [f"{s.dataset}: {s.error}" for s in scans if s.report is None]
    found = [f"{s.dataset}: {s.report.summary()}" for s in scans if s.report and s.report.found]
    if unread or found:
        return _verdict("personal_data", False, "; ".join(unread + found), datasets=details)
    rows = sum(s.report.rows_scanned for s in scans if s.report)
    return _verdict(
        "personal_data",
        True,
        f"no personal data in {len(scans)} dataset(s), {rows:,} rows",
        datasets=details,
    )


def check_assessment(
    kind: ReviewKind, required: bool, latest: Assessment | None, policy_version: int
) -> Check:
    """Required by the policy for production: the latest one counts by the same rule as
    `governance status` (`assessment_requirement`), in the same words."""
    name = f"{kind.value}_assessment"
    if not required:
        return Check(
            name=name,
            status=CheckStatus.NOT_APPLICABLE,
            reason=f"the policy does not require {kind.value} before production",
        )
    standing = assessment_requirement(kind, latest, policy_version)
    details = {} if standing.assessment_id is None else {"assessment": standing.assessment_id}
    return _verdict(name, standing.met, standing.reason, **details)


def verdict(checks: list[Check]) -> tuple[bool, str]:
    """Whether the version passes (no check failed) and a one-line summary."""
    failed = [check.name for check in checks if check.failed]
    if failed:
        return False, f"{len(failed)} of {len(checks)} checks failed: " + ", ".join(failed)
    return True, f"all {len(checks)} checks pass (or do not apply)"
