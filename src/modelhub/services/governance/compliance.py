"""Compliance checks of one version, run now, recorded as one Assessment(kind=compliance).

Each check is judged by the engine (modelhub.governance.compliance) over facts gathered
here: the version and its model, the policy in force, every file read back through the
artifact store's verifying read, the training datasets of its lineage scanned for
personal data, and the latest bias and explainability assessments. The assessment
passes when no check fails; its figures hold every check with its reason.
"""

from __future__ import annotations

from modelhub.domain.auth import Action, Caller
from modelhub.domain.enums import Stage
from modelhub.domain.governance import Assessment, ReviewKind
from modelhub.domain.records import ModelVersion
from modelhub.errors import ModelhubError
from modelhub.governance.compliance import (
    Check,
    DatasetScan,
    check_assessment,
    check_digests,
    check_license,
    check_lineage,
    check_model_card,
    check_personal_data,
    check_serialization,
    is_trained,
    verdict,
)
from modelhub.services.auth import AuthService
from modelhub.services.governance.assessments import AssessmentLog
from modelhub.services.governance.ethics import EthicsService
from modelhub.services.governance.policy import PolicyService
from modelhub.services.registry import RegistryService
from modelhub.stores.artifacts.base import ArtifactStore
from modelhub.stores.metadata.base import MetadataStore


class ComplianceService:
    def __init__(
        self,
        metadata: MetadataStore,
        artifacts: ArtifactStore,
        registry: RegistryService,
        auth: AuthService,
        policy: PolicyService,
        assessments: AssessmentLog,
        ethics: EthicsService,
    ) -> None:
        self.metadata = metadata
        self.artifacts = artifacts
        self.registry = registry
        self.auth = auth
        self.policy = policy
        self.assessments = assessments
        self.ethics = ethics

    def check(self, caller: Caller, ref: str) -> Assessment:
        """Run every check on the version `ref` and record the result (developers: on
        models they own). NotFound for an unknown version."""
        self.auth.authorize(caller, Action.GOVERNANCE_ASSESS)
        version = self.registry.get(ref)
        owner = self.registry.model_owner(version.name)
        self.auth.authorize_owned(caller, Action.GOVERNANCE_ASSESS, owner)
        model = self.registry.get_model(version.name)
        active = self.policy.current()
        needs = active.requirements(model.type, model.tags, Stage.PRODUCTION)
        ethics = self.ethics.latest_record(version)
        checks: list[Check] = [
            check_license(model.license, needs.licenses),
            check_model_card(model, version, ethics.intended_use if ethics else None),
            check_serialization(version),
            check_digests(len(version.files), self.read_back(version)),
            check_lineage(version),
            check_personal_data(version, self.scan_training_data(version)),
        ]
        for kind in (ReviewKind.BIAS, ReviewKind.EXPLAINABILITY):
            latest = self.assessments.latest(version, kind)
            checks.append(check_assessment(kind, kind in needs.requires, latest, active.version))
        passed, summary = verdict(checks)
        figures = {
            "stage": Stage.PRODUCTION.value,
            "rules": needs.rules,
            "checks": [check.model_dump(mode="json") for check in checks],
        }
        return self.assessments.record(
            caller.name, version, ReviewKind.COMPLIANCE, passed, summary, figures
        )

    def read_back(self, version: ModelVersion) -> dict[str, str]:
        """Each file of `version` whose stored bytes no longer hash to its digest."""
        problems: dict[str, str] = {}
        for entry in version.files:
            try:
                for _ in self.artifacts.open_chunks(entry.digest):
                    pass
            except ModelhubError as exc:
                problems[entry.path] = exc.message
        return problems

    def scan_training_data(self, version: ModelVersion) -> list[DatasetScan]:
        """Scan each dataset of a trained version's lineage, read from the artifact store.

        A dataset that cannot be read is reported by what failed, never with the parser's
        message, which may quote a row."""
        from modelhub.governance.frames import read_frame
        from modelhub.governance.pii import scan_frame

        if not is_trained(version):
            return []
        lineage = version.lineage
        scans = []
        for index, digest in enumerate(lineage.datasets):
            named = (
                lineage.dataset_versions[index]
                if index < len(lineage.dataset_versions)
                else digest[:12]
            )
            try:
                name, _, number = named.partition("@")
                dataset = self.metadata.get_dataset(name, int(number))
                if dataset.digest != digest:
                    raise ValueError("its digest differs from the one the run trained on")
                with self.artifacts.local_path(digest) as path:
                    frame = read_frame(path, dataset.format.value)
                scans.append(DatasetScan(dataset=named, digest=digest, report=scan_frame(frame)))
            except ValueError as exc:
                scans.append(DatasetScan(dataset=named, digest=digest, error=str(exc)))
            except ModelhubError as exc:
                what = type(exc).__name__
                error = f"could not be read for the scan ({what})"
                scans.append(DatasetScan(dataset=named, digest=digest, error=error))
        return scans
