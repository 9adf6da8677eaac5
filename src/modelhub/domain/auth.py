"""Who may do what: roles, scopes, and the one permission table.

docs/permissions.md renders PERMISSIONS for people; a test keeps the two equal.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from enum import StrEnum

from pydantic import Field

from modelhub.domain.records import Record


class Role(StrEnum):
    ADMIN = "admin"
    DATA_SCIENTIST = "data_scientist"
    DEVELOPER = "developer"
    VIEWER = "viewer"


class Scope(StrEnum):
    """What a token may do within its principal's role: read only, or everything."""

    READ = "read"
    WRITE = "write"


class Action(StrEnum):
    PUBLIC = "public"
    MODELS_READ = "models.read"
    MODELS_REGISTER = "models.register"
    MODELS_UPDATE = "models.update"
    MODELS_STAGE = "models.stage"
    MODELS_APPROVE = "models.approve"
    MODELS_DELETE = "models.delete"
    MODELS_TRUST = "models.trust"
    MODELS_OVERRIDE_GATE = "models.override_gate"
    ARTIFACTS_GC = "artifacts.gc"
    DATASETS_READ = "datasets.read"
    DATASETS_REGISTER = "datasets.register"
    AUTH_SELF = "auth.self"
    TOKENS_MANAGE = "tokens.manage"
    USERS_MANAGE = "users.manage"
    AUDIT_READ = "audit.read"
    TRAINING_READ = "training.read"
    PIPELINES_WRITE = "pipelines.write"
    RUNS_START = "runs.start"
    RUNS_MANAGE = "runs.manage"
    CODE_RUN = "code.run"
    DEPLOYMENTS_READ = "deployments.read"
    DEPLOYMENTS_WRITE = "deployments.write"
    DEPLOYMENTS_OVERRIDE = "deployments.override"
    INFERENCE = "inference"
    ALERTS_MANAGE = "alerts.manage"  # add and remove rules (and their webhooks)
    ALERTS_ACK = "alerts.ack"
    # -- cost (issue 11): budgets are set by admins, who answer for the spend --
    COST_MANAGE = "cost.manage"
    # -- governance (issue 12) --
    GOVERNANCE_READ = "governance.read"  # policy, status, reports, lineage, cards
    GOVERNANCE_ASSESS = "governance.assess"  # request a review, run assessments
    GOVERNANCE_POLICY = "governance.policy"  # set the policy in force
    # -- several servers (issue 16): addresses, ports and PIDs are for operators --
    HOSTS_READ = "hosts.read"
    # -- personas (issue 17) --
    PERSONAS_READ = "personas.read"
    PERSONAS_WRITE = "personas.write"  # create, change, delete a persona
    PERSONAS_INTERACT = "personas.interact"  # send a persona's interactions
    PERSONAS_LEARN = "personas.learn"  # run a learning cycle now
    # -- plugins (issue 17): which runtimes, trainers ... are installed, and their status --
    PLUGINS_READ = "plugins.read"


ALL_ROLES = frozenset(Role)
WRITERS = frozenset({Role.ADMIN, Role.DATA_SCIENTIST, Role.DEVELOPER})
ADMINS = frozenset({Role.ADMIN})
# Who may make the server run their own code (a script trainer): by default those who
# may also accept a pickle's code or approve models. MODELHUB_CODE_RUNNERS changes it.
CODE_RUNNERS = frozenset({Role.ADMIN, Role.DATA_SCIENTIST})

PERMISSIONS: dict[Action, frozenset[Role]] = {
    Action.PUBLIC: frozenset(),
    Action.MODELS_READ: ALL_ROLES,
    Action.MODELS_REGISTER: WRITERS,
    Action.MODELS_UPDATE: WRITERS,
    Action.MODELS_STAGE: WRITERS,
    Action.MODELS_APPROVE: frozenset({Role.ADMIN, Role.DATA_SCIENTIST}),
    Action.MODELS_DELETE: WRITERS,
    Action.MODELS_TRUST: ADMINS,
    Action.MODELS_OVERRIDE_GATE: ADMINS,
    Action.ARTIFACTS_GC: ADMINS,
    Action.DATASETS_READ: ALL_ROLES,
    Action.DATASETS_REGISTER: WRITERS,
    Action.AUTH_SELF: ALL_ROLES,
    Action.TOKENS_MANAGE: ALL_ROLES,
    Action.USERS_MANAGE: ADMINS,
    Action.AUDIT_READ: ADMINS,
    Action.TRAINING_READ: ALL_ROLES,
    Action.PIPELINES_WRITE: WRITERS,
    Action.RUNS_START: WRITERS,
    Action.RUNS_MANAGE: WRITERS,
    Action.CODE_RUN: CODE_RUNNERS,
    Action.DEPLOYMENTS_READ: ALL_ROLES,
    Action.DEPLOYMENTS_WRITE: WRITERS,
    Action.DEPLOYMENTS_OVERRIDE: ADMINS,
    Action.INFERENCE: ALL_ROLES,
    # A rule's webhook makes the server send requests where its author says: only
    # those trusted with the server's code (admins, data scientists) add rules.
    Action.ALERTS_MANAGE: frozenset({Role.ADMIN, Role.DATA_SCIENTIST}),
    Action.ALERTS_ACK: WRITERS,
    Action.COST_MANAGE: ADMINS,
    Action.GOVERNANCE_READ: ALL_ROLES,
    # Assessments run the version's model on the caller's data; reviewers' decisions
    # (approve, reject, an ethics verdict) stay models.approve.
    Action.GOVERNANCE_ASSESS: WRITERS,
    Action.GOVERNANCE_POLICY: ADMINS,
    Action.HOSTS_READ: ADMINS,
    Action.PERSONAS_READ: ALL_ROLES,
    Action.PERSONAS_WRITE: WRITERS,
    Action.PERSONAS_INTERACT: WRITERS,
    Action.PERSONAS_LEARN: WRITERS,
    Action.PLUGINS_READ: ALL_ROLES,
}

# Developers may take these actions only on what they own (they made the first
# version of the model, dataset or pipeline, or started the run); admins and data
# scientists may take them on anything.
OWNER_ONLY_FOR: dict[Action, frozenset[Role]] = {
    Action.MODELS_REGISTER: frozenset({Role.DEVELOPER}),
    Action.DATASETS_REGISTER: frozenset({Role.DEVELOPER}),
    Action.PIPELINES_WRITE: frozenset({Role.DEVELOPER}),
    Action.MODELS_UPDATE: frozenset({Role.DEVELOPER}),
    Action.MODELS_STAGE: frozenset({Role.DEVELOPER}),
    Action.MODELS_DELETE: frozenset({Role.DEVELOPER}),
    Action.RUNS_MANAGE: frozenset({Role.DEVELOPER}),
    Action.DEPLOYMENTS_WRITE: frozenset({Role.DEVELOPER}),
    Action.GOVERNANCE_ASSESS: frozenset({Role.DEVELOPER}),
    Action.PERSONAS_WRITE: frozenset({Role.DEVELOPER}),
    Action.PERSONAS_INTERACT: frozenset({Role.DEVELOPER}),
    Action.PERSONAS_LEARN: frozenset({Role.DEVELOPER}),
}

READ_ACTIONS = frozenset(
    {
        Action.PUBLIC,
        Action.MODELS_READ,
        Action.DATASETS_READ,
        Action.AUTH_SELF,
        Action.TRAINING_READ,
        Action.DEPLOYMENTS_READ,
        Action.INFERENCE,
        Action.GOVERNANCE_READ,
        Action.PERSONAS_READ,
        Action.PLUGINS_READ,
    }
)


class Principal(Record):
    name: str
    role: Role
    created_at: datetime | None = None
    disabled: bool = False


class Caller(Record):
    """A principal as seen on one request: who, and what the token allows."""

    name: str
    role: Role
    scopes: frozenset[Scope] = Field(default_factory=lambda: frozenset(Scope))
    token_id: str | None = None
    # When the token in use stops working; None for local mode and tokens made without one.
    token_expires_at: datetime | None = None

    @property
    def is_admin(self) -> bool:
        return self.role == Role.ADMIN


class TokenInfo(Record):
    id: str
    principal: str
    scopes: list[Scope]
    description: str = ""
    created_at: datetime
    expires_at: datetime | None = None
    revoked_at: datetime | None = None
    last_used_at: datetime | None = None


def role_allows(
    caller: Caller, action: Action, table: dict[Action, frozenset[Role]] | None = None
) -> bool:
    """The table's answer for a role and a token scope; ownership is checked apart.

    `table` is PERMISSIONS as this server configured it (see `permission_table`).
    """
    if action == Action.PUBLIC:
        return True
    if action not in READ_ACTIONS and Scope.WRITE not in caller.scopes:
        return False
    return caller.role in (table or PERMISSIONS)[action]


def permission_table(code_runners: frozenset[Role] = CODE_RUNNERS) -> dict[Action, frozenset[Role]]:
    """PERMISSIONS with `code.run` granted to `code_runners` (the one configurable row)."""
    return PERMISSIONS | {Action.CODE_RUN: code_runners}


def needs_ownership(caller: Caller, action: Action) -> bool:
    return caller.role in OWNER_ONLY_FOR.get(action, frozenset())


# Longer than any token or look-back needs, and far from datetime's year 9999.
MAX_DURATION = timedelta(days=36500)
DURATION_UNITS = {"d": 86400, "h": 3600, "m": 60, "s": 1}


def parse_duration(text: str, field: str = "expires") -> timedelta:
    """`30d`, `12h`, `90m`, `45s` as a timedelta of at most MAX_DURATION.

    Anything else, a huge number included, is InvalidInput naming `field`.
    """
    from modelhub.errors import InvalidInput

    shown = text if len(text) <= 24 else text[:20] + "..."  # never echo a huge input whole
    value, unit = text[:-1], text[-1:].lower()
    if unit not in DURATION_UNITS or not value.isascii() or not value.isdigit():
        raise InvalidInput(
            f"invalid {field} duration {shown!r}: use a positive number with d, h, m or s "
            "(e.g. 30d)",
            {"field": field, "value": shown},
        )
    # Compared as text first: int() of thousands of digits is itself refused.
    seconds = int(value) * DURATION_UNITS[unit] if len(value) <= 12 else None
    if seconds is None or seconds > MAX_DURATION.total_seconds():
        raise InvalidInput(
            f"{field} duration {shown!r} is too long: at most {MAX_DURATION.days}d",
            {"field": field, "value": shown},
        )
    if seconds <= 0:
        raise InvalidInput(
            f"invalid {field} duration {shown!r}: use a positive number with d, h, m or s "
            "(e.g. 30d)",
            {"field": field, "value": shown},
        )
    return timedelta(seconds=seconds)


def format_duration(span: timedelta) -> str:
    """The largest whole unit that reads back as `span` or less (`29d`, `5h`)."""
    seconds = max(int(span.total_seconds()), 0)
    for unit, size in DURATION_UNITS.items():
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return "0s"


USER_NAME = re.compile(r"[a-z][a-z0-9_.-]{0,63}\Z")
# Names the platform itself acts under (a request without a token, the first start):
# a user by one of these names could pass for the platform in the audit log.
RESERVED_USER_NAMES = frozenset({"anonymous", "system"})


def check_user_name(name: str) -> str:
    from modelhub.errors import InvalidInput

    if not USER_NAME.match(name):
        raise InvalidInput(
            f"invalid user name {name!r}: use lowercase letters, digits, '.', '_' or '-', "
            "starting with a letter",
            {"field": "user", "value": name},
        )
    return name


def check_new_user_name(name: str) -> str:
    """A name a new user may take: well formed and not one the platform acts under.

    Lookups use check_user_name alone, so a user made before a name was reserved
    can still be disabled.
    """
    from modelhub.errors import InvalidInput

    check_user_name(name)
    if name in RESERVED_USER_NAMES:
        raise InvalidInput(
            f"user name {name!r} is reserved: the platform acts under it",
            {"field": "user", "value": name},
        )
    return name


def check_not_own_approval(caller: str, version_author: str, ref: str) -> None:
    """Separation of duties: nobody approves a version they made, admins included.

    An admin who must ship their own version uses the production gate's override
    (`models.override_gate`), which the audit log records as such.
    """
    from modelhub.errors import PermissionDenied

    if caller == version_author:
        raise PermissionDenied(
            f"you may not approve {ref}: nobody approves a version they created "
            "(an admin may move it past the gate with the audited override)",
            {"action": Action.MODELS_APPROVE.value, "rule": "no_self_approval", "author": caller},
        )
