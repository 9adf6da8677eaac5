"""The versioned governance policy: show it, replace it (audited), list its history.

Until an admin sets one, the default that ships beside this module is in force, as
policy version 0; the first `set` stores version 1.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import resources

from modelhub.domain.auth import Action, Caller
from modelhub.domain.enums import ModelType, Stage
from modelhub.domain.governance import PolicyVersion
from modelhub.domain.governance_policy import Policy, Requirements, parse_policy
from modelhub.services.auth import AuthService
from modelhub.stores.metadata.base import AuditDraft, MetadataStore

DEFAULT_POLICY_VERSION = 0


def default_policy_text() -> str:
    return resources.files(__package__).joinpath("default_policy.yaml").read_text("utf-8")


@dataclass(frozen=True)
class ActivePolicy:
    """The policy in force: its version record and its parsed form."""

    record: PolicyVersion
    policy: Policy

    @property
    def version(self) -> int:
        return self.record.version

    def requirements(
        self, model_type: ModelType, tags: dict[str, str], stage: Stage
    ) -> Requirements:
        return self.policy.requirements(model_type, tags, stage)


class PolicyService:
    def __init__(
        self,
        metadata: MetadataStore,
        auth: AuthService,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.metadata = metadata
        self.auth = auth
        self.clock = clock
        text = default_policy_text()
        self._default = ActivePolicy(
            PolicyVersion(
                version=DEFAULT_POLICY_VERSION,
                text=text,
                digest=hashlib.sha256(text.encode()).hexdigest(),
                created_by="system",
                created_at=datetime(2026, 12, 7, tzinfo=UTC),
            ),
            parse_policy(text),
        )

    def current(self) -> ActivePolicy:
        """The policy in force (no permission check: every service asks it)."""
        stored = self.metadata.current_policy_version()
        if stored is None:
            return self._default
        return ActivePolicy(stored, parse_policy(stored.text))

    def show(self, caller: Caller, version: int | None = None) -> PolicyVersion:
        self.auth.authorize(caller, Action.GOVERNANCE_READ)
        if version is None:
            return self.current().record
        if version == DEFAULT_POLICY_VERSION:
            return self._default.record
        return self.metadata.get_policy_version(version)

    def history(self, caller: Caller) -> list[PolicyVersion]:
        """Every stored version, newest first, then the default (version 0)."""
        self.auth.authorize(caller, Action.GOVERNANCE_READ)
        return [*self.metadata.list_policy_versions(), self._default.record]

    def set(self, caller: Caller, text: str) -> PolicyVersion:
        """Validate `text` and make it the policy in force; InvalidInput (nothing stored)
        listing every problem when it is not a valid policy."""
        self.auth.authorize(caller, Action.GOVERNANCE_POLICY)
        parse_policy(text)
        digest = hashlib.sha256(text.encode()).hexdigest()
        previous = self.current().record
        audit = AuditDraft(
            caller.name,
            "governance.policy.set",
            "policy",
            {"digest": digest, "previous_version": previous.version},
        )
        return self.metadata.add_policy_version(text, digest, caller.name, self.clock(), audit)
