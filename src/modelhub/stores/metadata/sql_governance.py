"""Governance in SQL: policy versions, assessments, review requests and decisions."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Row, case, func, insert, select, update
from sqlalchemy import exc as sa_exc

from modelhub.domain.enums import Approval
from modelhub.domain.governance import (
    Assessment,
    Decision,
    PolicyVersion,
    ReviewKind,
    ReviewRequest,
    ReviewState,
)
from modelhub.errors import Conflict, IllegalTransition, NotFound
from modelhub.stores.metadata.base import AuditDraft
from modelhub.stores.metadata.sql_base import SqlStoreBase, _aware
from modelhub.stores.metadata.tables import (
    assessments,
    governance_policies,
    models,
    review_decisions,
    review_requests,
    versions,
)


def _policy(row: Row[Any]) -> PolicyVersion:
    return PolicyVersion(
        version=row.version,
        text=row.text,
        digest=row.digest,
        created_by=row.created_by,
        created_at=_aware(row.created_at),
    )


def _assessment(row: Row[Any]) -> Assessment:
    return Assessment(
        id=row.id,
        model=row.model,
        version=row.version,
        kind=ReviewKind(row.kind),
        passed=row.passed,
        policy_version=row.policy_version,
        summary=row.summary,
        figures=row.figures,
        attachments=row.attachments,
        actor=row.actor,
        created_at=_aware(row.created_at),
    )


def _request(row: Row[Any]) -> ReviewRequest:
    return ReviewRequest(
        id=row.id,
        model=row.model,
        version=row.version,
        state=ReviewState(row.state),
        requested_by=row.requested_by,
        reviewers=list(row.reviewers),
        policy_version=row.policy_version,
        opened_at=_aware(row.opened_at),
        closed_at=_aware(row.closed_at) if row.closed_at is not None else None,
    )


def _decision(row: Row[Any]) -> Decision:
    return Decision(
        id=row.id,
        request_id=row.request_id,
        model=row.model,
        version=row.version,
        reviewer=row.reviewer,
        role=row.role,
        approve=row.approve,
        note=row.note,
        created_at=_aware(row.created_at),
    )


class GovernanceQueries(SqlStoreBase):
    # -- the policy ------------------------------------------------------------------

    def add_policy_version(
        self, text: str, digest: str, actor: str, at: datetime, audit: AuditDraft
    ) -> PolicyVersion:
        try:
            with self._write(audit) as conn:
                newest = conn.execute(select(func.max(governance_policies.c.version))).scalar()
                values = {
                    "version": (newest or 0) + 1,
                    "text": text,
                    "digest": digest,
                    "created_by": actor,
                    "created_at": at,
                }
                conn.execute(insert(governance_policies).values(**values))
                audit.details.setdefault("policy_version", values["version"])
                return PolicyVersion.model_validate(values)
        except sa_exc.IntegrityError as exc:
            raise Conflict("another policy version was stored at the same moment; retry") from exc

    def current_policy_version(self) -> PolicyVersion | None:
        query = select(governance_policies).order_by(governance_policies.c.version.desc()).limit(1)
        with self._read() as conn:
            row = conn.execute(query).first()
            return _policy(row) if row is not None else None

    def get_policy_version(self, version: int) -> PolicyVersion:
        query = select(governance_policies).where(governance_policies.c.version == version)
        with self._read() as conn:
            row = conn.execute(query).first()
        if row is None:
            raise NotFound(f"policy version {version} does not exist", {"policy_version": version})
        return _policy(row)

    def list_policy_versions(self, limit: int = 50) -> list[PolicyVersion]:
        query = (
            select(governance_policies).order_by(governance_policies.c.version.desc()).limit(limit)
        )
        with self._read() as conn:
            return [_policy(row) for row in conn.execute(query)]

    # -- assessments -----------------------------------------------------------------

    def add_assessment(self, assessment: Assessment, audit: AuditDraft) -> Assessment:
        values = assessment.model_dump(mode="json", exclude={"id"})
        values["created_at"] = assessment.created_at
        with self._write(audit) as conn:
            key = conn.execute(insert(assessments).values(**values)).inserted_primary_key
            assert key is not None
            row = conn.execute(select(assessments).where(assessments.c.id == key[0])).one()
            return _assessment(row)

    def list_assessments(
        self, model: str, version: int, kind: ReviewKind | None = None, limit: int = 100
    ) -> list[Assessment]:
        t = assessments.c
        query = select(assessments).where(t.model == model, t.version == version)
        if kind is not None:
            query = query.where(t.kind == kind.value)
        query = query.order_by(t.created_at.desc(), t.id.desc()).limit(limit)
        with self._read() as conn:
            return [_assessment(row) for row in conn.execute(query)]

    def assessment_digests(self) -> set[str]:
        with self._read() as conn:
            rows = conn.execute(select(assessments.c.attachments)).scalars()
            return {digest for attached in rows for digest in attached.values()}

    # -- reviews ---------------------------------------------------------------------

    def open_review_request(self, request: ReviewRequest, audit: AuditDraft) -> ReviewRequest:
        values = request.model_dump(exclude={"id"})
        values["state"] = ReviewState.PENDING.value
        with self._write(audit) as conn:
            version_id = self._governed_version_id(conn, request.model, request.version)
            key = conn.execute(insert(review_requests).values(**values)).inserted_primary_key
            assert key is not None
            conn.execute(
                update(versions)
                .where(versions.c.id == version_id)
                .values(approval=Approval.PENDING.value)
            )
            row = conn.execute(select(review_requests).where(review_requests.c.id == key[0])).one()
            return _request(row)

    def latest_review_request(self, model: str, version: int) -> ReviewRequest | None:
        requests = self.list_review_requests(model, version, limit=1)
        return requests[0] if requests else None

    def list_review_requests(
        self, model: str, version: int, limit: int = 100
    ) -> list[ReviewRequest]:
        t = review_requests.c
        query = (
            select(review_requests)
            .where(t.model == model, t.version == version)
            .order_by(t.id.desc())
            .limit(limit)
        )
        with self._read() as conn:
            return [_request(row) for row in conn.execute(query)]

    def list_latest_review_requests(
        self, offset: int, limit: int
    ) -> tuple[list[ReviewRequest], int]:
        t = review_requests.c
        latest = select(func.max(t.id)).group_by(t.model, t.version).scalar_subquery()
        pending_first = case((t.state == ReviewState.PENDING.value, 0), else_=1)
        query = (
            select(review_requests)
            .where(t.id.in_(latest))
            .order_by(pending_first, func.coalesce(t.closed_at, t.opened_at).desc(), t.id.desc())
            .limit(limit)
            .offset(offset)
        )
        versions_reviewed = select(t.model, t.version).distinct().subquery()
        count = select(func.count()).select_from(versions_reviewed)
        with self._read() as conn:
            found = [_request(row) for row in conn.execute(query)]
            return found, int(conn.execute(count).scalar_one())

    def list_decisions_of(self, request_ids: list[int]) -> list[Decision]:
        if not request_ids:
            return []
        t = review_decisions.c
        query = select(review_decisions).where(t.request_id.in_(request_ids)).order_by(t.id)
        with self._read() as conn:
            return [_decision(row) for row in conn.execute(query)]

    def add_decision(self, decision: Decision, audit: AuditDraft) -> Decision:
        values = decision.model_dump(exclude={"id"})
        try:
            with self._write(audit) as conn:
                key = conn.execute(insert(review_decisions).values(**values)).inserted_primary_key
                assert key is not None
                query = select(review_decisions).where(review_decisions.c.id == key[0])
                return _decision(conn.execute(query).one())
        except sa_exc.IntegrityError as exc:
            raise Conflict(
                f"{decision.reviewer} already decided on review request {decision.request_id}",
                {"request_id": decision.request_id, "reviewer": decision.reviewer},
            ) from exc

    def list_decisions(self, request_id: int) -> list[Decision]:
        t = review_decisions.c
        query = select(review_decisions).where(t.request_id == request_id).order_by(t.id)
        with self._read() as conn:
            return [_decision(row) for row in conn.execute(query)]

    def close_review_request(
        self,
        request_id: int,
        state: ReviewState,
        approval: Approval,
        at: datetime,
        audit: AuditDraft,
    ) -> ReviewRequest:
        t = review_requests.c
        with self._write(audit) as conn:
            row = conn.execute(select(review_requests).where(t.id == request_id)).first()
            if row is None:
                raise NotFound(f"review request {request_id} does not exist", {"id": request_id})
            closed = conn.execute(
                update(review_requests)
                .where(t.id == request_id, t.state == ReviewState.PENDING.value)
                .values(state=state.value, closed_at=at)
            ).rowcount
            if not closed:
                raise IllegalTransition(
                    f"review request {request_id} is already {row.state}; open a new request",
                    {"id": request_id, "state": row.state},
                )
            version_id = self._governed_version_id(conn, row.model, row.version)
            conn.execute(
                update(versions).where(versions.c.id == version_id).values(approval=approval.value)
            )
            return _request(conn.execute(select(review_requests).where(t.id == request_id)).one())

    @staticmethod
    def _governed_version_id(conn: Connection, model: str, version: int) -> int:
        query = (
            select(versions.c.id)
            .join(models, models.c.id == versions.c.model_id)
            .where(models.c.name == model, versions.c.version == version)
        )
        found = conn.execute(query).scalar()
        if found is None:
            raise NotFound(f"{model}@{version} does not exist", {"ref": f"{model}@{version}"})
        return int(found)
