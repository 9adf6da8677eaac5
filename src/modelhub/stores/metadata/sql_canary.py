"""The automated canary analysis' decisions, in SQL (audited: each one acts on a deployment)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Row, insert, select
from sqlalchemy import exc as sa_exc

from modelhub.domain.canary import CanaryDecision, CanaryOutcome, VersionFigures
from modelhub.domain.degradation import Verdict
from modelhub.errors import Conflict
from modelhub.stores.metadata.base import AuditDraft
from modelhub.stores.metadata.sql_base import SqlStoreBase, _aware
from modelhub.stores.metadata.tables import canary_decisions


def _decision(row: Row[Any]) -> CanaryDecision:
    return CanaryDecision(
        id=row.id,
        deployment=row.deployment,
        model=row.model,
        stable=VersionFigures.model_validate(row.figures["stable"]),
        canary=VersionFigures.model_validate(row.figures["canary"]),
        outcome=CanaryOutcome(row.outcome),
        reason=row.reason,
        verdicts=[Verdict.model_validate(verdict) for verdict in row.verdicts],
        started_at=_aware(row.started_at),
        decided_at=_aware(row.decided_at),
    )


class CanaryQueries(SqlStoreBase):
    def add_canary_decision(self, decision: CanaryDecision, audit: AuditDraft) -> CanaryDecision:
        values = {
            "deployment": decision.deployment,
            "model": decision.model,
            "stable_version": decision.stable.version,
            "canary_version": decision.canary.version,
            "outcome": decision.outcome.value,
            "reason": decision.reason,
            "figures": {
                "stable": decision.stable.model_dump(mode="json"),
                "canary": decision.canary.model_dump(mode="json"),
            },
            "verdicts": [verdict.model_dump(mode="json") for verdict in decision.verdicts],
            "started_at": decision.started_at,
            "decided_at": decision.decided_at,
        }
        try:
            with self._write(audit) as conn:
                key = conn.execute(insert(canary_decisions).values(**values)).inserted_primary_key
                assert key is not None
                query = select(canary_decisions).where(canary_decisions.c.id == key[0])
                row = conn.execute(query).one()
                return _decision(row)
        except sa_exc.IntegrityError as exc:
            raise Conflict(
                f"the canary of deployment {decision.deployment} started at "
                f"{decision.started_at.isoformat()} already has a decision",
                {"deployment": decision.deployment},
            ) from exc

    def list_canary_decisions(self, deployment: str, limit: int = 20) -> list[CanaryDecision]:
        query = (
            select(canary_decisions)
            .where(canary_decisions.c.deployment == deployment)
            .order_by(canary_decisions.c.decided_at.desc(), canary_decisions.c.id.desc())
            .limit(limit)
        )
        with self._read() as conn:
            return [_decision(row) for row in conn.execute(query)]
