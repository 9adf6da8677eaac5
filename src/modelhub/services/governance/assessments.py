"""The one place governance evidence is recorded: checked, audited, attachments stored.

Every kind of evidence (bias, explainability, ethics, compliance) ends here as an
`Assessment` under the policy version in force when it ran.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from modelhub.domain.governance import Assessment, ReviewKind
from modelhub.domain.records import ModelVersion
from modelhub.services.governance.policy import PolicyService
from modelhub.stores.artifacts.base import ArtifactStore
from modelhub.stores.metadata.base import AuditDraft, MetadataStore


class AssessmentLog:
    def __init__(
        self,
        metadata: MetadataStore,
        artifacts: ArtifactStore,
        policy: PolicyService,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.metadata = metadata
        self.artifacts = artifacts
        self.policy = policy
        self.clock = clock

    def record(
        self,
        actor: str,
        version: ModelVersion,
        kind: ReviewKind,
        passed: bool,
        summary: str,
        figures: dict[str, Any],
        attachments: Mapping[str, bytes] | None = None,
    ) -> Assessment:
        """Store `attachments` (name -> bytes) in the artifact store, then the assessment
        with its audit event (`governance.<kind>`), under the policy version in force."""
        digests = {
            name: self.artifacts.put_stream([data]).digest
            for name, data in (attachments or {}).items()
        }
        assessment = Assessment(
            model=version.name,
            version=version.version,
            kind=kind,
            passed=passed,
            policy_version=self.policy.current().version,
            summary=summary,
            figures=figures,
            attachments=digests,
            actor=actor,
            created_at=self.clock(),
        )
        audit = AuditDraft(
            actor,
            f"governance.{kind.value}",
            f"{version.name}@{version.version}",
            {
                "passed": passed,
                "summary": summary[:500],
                "policy_version": assessment.policy_version,
            },
        )
        return self.metadata.add_assessment(assessment, audit)

    def latest(self, version: ModelVersion, kind: ReviewKind) -> Assessment | None:
        found = self.metadata.list_assessments(version.name, version.version, kind, limit=1)
        return found[0] if found else None

    def all(self, version: ModelVersion) -> list[Assessment]:
        return self.metadata.list_assessments(version.name, version.version)

    def attachment(self, assessment: Assessment, name: str) -> bytes:
        return b"".join(self.artifacts.open_chunks(assessment.attachments[name]))
