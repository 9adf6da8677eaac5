"""The auditor's report: every governance record about one version, in one Markdown document."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from modelhub.domain.auth import Action, Caller, role_allows
from modelhub.domain.enums import Stage
from modelhub.domain.governance_status import GovernanceStatus
from modelhub.domain.lineage import VersionDocument
from modelhub.domain.names import parse_ref
from modelhub.domain.records import AuditEvent, ModelVersion
from modelhub.governance.audit_report import ReportInputs, render_report
from modelhub.services.auth import AuthService
from modelhub.services.governance.assessments import AssessmentLog
from modelhub.services.governance.lineage import LineageService
from modelhub.services.governance.policy import PolicyService
from modelhub.stores.metadata.base import AuditQuery, MetadataStore

# The report lists at most this many audit events (newest kept); it says so when cut.
MAX_AUDIT_EVENTS = 1000


class ReportService:
    def __init__(
        self,
        metadata: MetadataStore,
        assessments: AssessmentLog,
        policy: PolicyService,
        lineage: LineageService,
        auth: AuthService,
        status: Callable[[ModelVersion, Stage], GovernanceStatus] | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.metadata = metadata
        self.assessments = assessments
        self.policy = policy
        self.lineage = lineage
        self.auth = auth
        # ReviewService.evaluate, handed down by build_services (no service calls upward).
        self.status = status
        self.clock = clock

    def report_for(self, caller: Caller, ref: str) -> VersionDocument:
        """Every role may read the report; its audit events only those who may read the
        audit log (admins), as `audit list` allows: for others the section says so."""
        self.auth.authorize(caller, Action.GOVERNANCE_READ)
        return self.report(ref, role_allows(caller, Action.AUDIT_READ, self.auth.permissions))

    def report(self, ref: str, with_audit: bool = True) -> VersionDocument:
        """NotFound when `ref` names no version."""
        version = self.metadata.resolve(parse_ref(ref))
        model = self.metadata.get_model(version.name)
        target = f"{version.name}@{version.version}"
        active = self.policy.current()
        requests = self.metadata.list_review_requests(version.name, version.version)
        events = self._audit(version) if with_audit else None
        notes = []
        if events is not None and len(events) >= MAX_AUDIT_EVENTS:
            notes.append(f"Only the newest {MAX_AUDIT_EVENTS} audit events are listed.")
        inputs = ReportInputs(
            model=model,
            version=version,
            policy=active.record,
            production=active.requirements(model.type, model.tags, Stage.PRODUCTION),
            assessments=self.assessments.all(version),
            requests=[(r, self.metadata.list_decisions(r.id)) for r in requests],
            lineage=self.lineage.graph(target),
            audit=events,
            generated_at=self.clock(),
            status=self.status(version, Stage.PRODUCTION) if self.status else None,
            notes=notes,
        )
        text = render_report(inputs)
        return VersionDocument(model=version.name, version=version.version, text=text)

    def _audit(self, version: ModelVersion) -> list[AuditEvent]:
        """Events naming the version, and the model's events about it: its registration
        (the one with its digest) and aliases pointed at it."""
        target = f"{version.name}@{version.version}"
        events = self.metadata.list_audit(AuditQuery(target=target, limit=MAX_AUDIT_EVENTS))
        events += [
            e
            for e in self.metadata.list_audit(
                AuditQuery(target=version.name, limit=MAX_AUDIT_EVENTS)
            )
            if e.details.get("version") == version.version
            or (e.action == "models.register" and e.details.get("digest") == version.digest)
        ]
        return events
