"""Authentication (tokens) and the role/ownership checks every transport relies on."""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from modelhub.domain.auth import (
    PERMISSIONS,
    Action,
    Caller,
    Principal,
    Role,
    Scope,
    TokenInfo,
    check_new_user_name,
    check_user_name,
    format_duration,
    needs_ownership,
    parse_duration,
    role_allows,
)
from modelhub.domain.enums import parse_enum
from modelhub.errors import InvalidInput, NotFound, PermissionDenied, Unauthenticated
from modelhub.stores.metadata.base import AuditDraft, MetadataStore, TokenDraft

TOKEN_PREFIX = "mh"
BAD_TOKEN = "invalid, expired or revoked token"
BOOTSTRAP_ADMIN = "admin"


def load_or_create_key(path: Path) -> bytes:
    """The server's HMAC key for token hashes, made once (0600) on first start."""
    if path.exists():
        return path.read_bytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_bytes(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(key)
    return key


def write_secret_file(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(text + "\n")
    os.chmod(path, 0o600)


@dataclass(frozen=True)
class TokenLifetimes:
    """How long a new token lives when nobody says (`default`), and at most (`longest`)."""

    default: timedelta = timedelta(days=30)
    longest: timedelta = timedelta(days=365)


@dataclass(frozen=True)
class _Cached:
    secret_hash: str
    caller: Caller
    expires_at: datetime | None
    loaded: float


class AuthService:
    """Tokens look like `mh_<id>_<secret>`; only HMAC-SHA256(key, secret) is stored.

    Verified tokens are cached for `cache_seconds`, so a request costs one HMAC
    and a dictionary lookup. Revoking through this service drops the entry at
    once; another server process sees a revocation within `cache_seconds`.
    `clock` tells the wall-clock time that tokens expire by (tests move it on).
    """

    def __init__(
        self,
        metadata: MetadataStore,
        key: bytes,
        cache_seconds: float = 10.0,
        lifetimes: TokenLifetimes | None = None,
        permissions: dict[Action, frozenset[Role]] | None = None,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.metadata = metadata
        self.now: Callable[[], datetime] = clock or (lambda: datetime.now(UTC))
        self.lifetimes = lifetimes or TokenLifetimes()
        self.permissions = permissions or PERMISSIONS
        self._key = key
        self._cache_seconds = cache_seconds
        self._cache: dict[str, _Cached] = {}
        self._lock = threading.Lock()
        self._forget_listeners: list[Callable[[], None]] = []

    # -- tokens -------------------------------------------------------------

    def _hash(self, secret: str) -> str:
        return hmac.new(self._key, secret.encode(), hashlib.sha256).hexdigest()

    def authenticate(self, bearer: str | None) -> Caller:
        """The caller a token names; every failure is the same Unauthenticated."""
        if not bearer:
            raise Unauthenticated("authentication required: send Authorization: Bearer <token>")
        parts = bearer.split("_")
        if len(parts) != 3 or parts[0] != TOKEN_PREFIX or not parts[1] or not parts[2]:
            raise Unauthenticated(BAD_TOKEN)
        token_id, secret = parts[1], parts[2]
        entry = self._cache.get(token_id)
        if entry is None or time.monotonic() - entry.loaded > self._cache_seconds:
            entry = self._load(token_id)
        if not hmac.compare_digest(entry.secret_hash, self._hash(secret)):
            raise Unauthenticated(BAD_TOKEN)
        if entry.expires_at is not None and entry.expires_at <= self.now():
            raise Unauthenticated(BAD_TOKEN)
        return entry.caller

    def _load(self, token_id: str) -> _Cached:
        try:
            token, secret_hash, principal = self.metadata.token_credentials(token_id)
        except NotFound:
            # Hash anyway, so an unknown id costs what a wrong secret costs.
            self._hash(token_id)
            raise Unauthenticated(BAD_TOKEN) from None
        if token.revoked_at is not None or principal.disabled:
            raise Unauthenticated(BAD_TOKEN)
        caller = Caller(
            name=principal.name,
            role=principal.role,
            scopes=frozenset(token.scopes),
            token_id=token.id,
            token_expires_at=token.expires_at,
        )
        entry = _Cached(secret_hash, caller, token.expires_at, time.monotonic())
        with self._lock:
            self._cache[token_id] = entry
        self.metadata.touch_token(token_id)
        return entry

    def _forget(self, token_id: str | None = None) -> None:
        with self._lock:
            if token_id is None:
                self._cache.clear()
            else:
                self._cache.pop(token_id, None)
        for listener in list(self._forget_listeners):
            listener()

    def on_forget(self, listener: Callable[[], None]) -> None:
        """Call `listener` whenever a token is revoked or a user changed (role, disabled):
        caches of verified tokens elsewhere (the data plane's) drop what they hold."""
        self._forget_listeners.append(listener)

    # -- authorization --------------------------------------------------------

    def allows(self, caller: Caller, action: Action) -> bool:
        """Whether the role and token scope allow `action` (ownership is checked apart):
        what a view offers; the call itself is authorized again when made."""
        return role_allows(caller, action, self.permissions)

    def authorize(self, caller: Caller, action: Action) -> None:
        if not role_allows(caller, action, self.permissions):
            raise PermissionDenied(
                f"{caller.name} ({caller.role.value}) may not {action.value}"
                + ("" if Scope.WRITE in caller.scopes else " with a read-only token"),
                {"action": action.value, "role": caller.role.value},
            )

    def authorize_owned(
        self, caller: Caller, action: Action, owner: str | None, what: str = "models"
    ) -> None:
        """Role check, then: developers act only on models (or runs: `what`) they own."""
        self.authorize(caller, action)
        if owner is not None and needs_ownership(caller, action) and owner != caller.name:
            raise PermissionDenied(
                f"{caller.name} may {action.value} only {what} they own (owner: {owner})",
                {"action": action.value, "owner": owner},
            )

    def record_denial(self, actor: str, target: str, reason: str) -> None:
        self.metadata.record_event(AuditDraft(actor, "auth.denied", target, {"reason": reason}))

    # -- principals and tokens --------------------------------------------------

    def bootstrap(self, token_file: Path) -> str | None:
        """On a store with no users: make the first admin, write its token (0600).

        The token lives as long as tokens may (`lifetimes.longest`); before it ends, an
        admin on the server's host makes the next one in local mode.
        """
        if self.metadata.count_principals() > 0:
            return None
        system = Caller(name="system", role=Role.ADMIN)
        self.metadata.create_principal(
            BOOTSTRAP_ADMIN,
            Role.ADMIN,
            AuditDraft("system", "users.add", BOOTSTRAP_ADMIN, {"role": Role.ADMIN.value}),
        )
        _, token = self._issue(
            system, BOOTSTRAP_ADMIN, [Scope.READ, Scope.WRITE], self.lifetimes.longest,
            description="first admin token",
        )  # fmt: skip
        write_secret_file(token_file, token)
        return token

    def add_user(self, caller: Caller, name: str, role: str) -> Principal:
        self.authorize(caller, Action.USERS_MANAGE)
        parsed = parse_enum(Role, role, "role")
        audit = AuditDraft(caller.name, "users.add", name, {"role": parsed.value})
        return self.metadata.create_principal(check_new_user_name(name), parsed, audit)

    def set_user(
        self, caller: Caller, name: str, role: str | None = None, disabled: bool | None = None
    ) -> Principal:
        self.authorize(caller, Action.USERS_MANAGE)
        changes: dict[str, object] = {}
        if role is not None:
            changes["role"] = parse_enum(Role, role, "role")
        if disabled is not None:
            if name == caller.name and disabled:
                raise InvalidInput("you cannot disable yourself")
            changes["disabled"] = disabled
        if not changes:
            raise InvalidInput(
                "nothing to change: give a role, disabled, or both",
                {"fields": ["role", "disabled"]},
            )
        audit = AuditDraft(
            caller.name, "users.update", name, {k: str(v) for k, v in changes.items()}
        )
        principal = self.metadata.update_principal(check_user_name(name), changes, audit)
        self._forget()
        return principal

    def list_users(self, caller: Caller) -> list[Principal]:
        self.authorize(caller, Action.USERS_MANAGE)
        return self.metadata.list_principals()

    def whoami(self, caller: Caller) -> Principal:
        self.authorize(caller, Action.AUTH_SELF)
        if caller.token_id is None:  # local mode: the operating-system user
            return Principal(name=caller.name, role=caller.role)
        return self.metadata.get_principal(caller.name)

    def create_token(
        self,
        caller: Caller,
        user: str | None = None,
        expires: str | None = None,
        scope: str = "write",
        description: str = "",
    ) -> tuple[TokenInfo, str]:
        """A new token; the secret string is returned this once and never stored.

        A token never grants more than the one that makes it: no scope it lacks, no
        life beyond its own end (PermissionDenied). `expires` is at most
        `lifetimes.longest` (InvalidInput); left out, the token lives
        `lifetimes.default`, or until the caller's token ends if that is sooner.
        """
        user = check_user_name(user) if user else caller.name
        self.authorize(caller, Action.USERS_MANAGE if user != caller.name else Action.TOKENS_MANAGE)
        wanted = parse_enum(Scope, scope, "scope")
        scopes = [Scope.READ, Scope.WRITE] if wanted == Scope.WRITE else [Scope.READ]
        if not set(scopes) <= caller.scopes:
            raise PermissionDenied(
                f"a {'read-only ' if Scope.WRITE not in caller.scopes else ''}token cannot "
                f"create a {wanted.value} token",
                {"field": "scope", "value": wanted.value},
            )
        return self._issue(caller, user, scopes, self._lifetime(caller, expires), description)

    def _lifetime(self, caller: Caller, expires: str | None) -> timedelta:
        left = caller.token_expires_at - self.now() if caller.token_expires_at else None
        if not expires:
            default = self.lifetimes.default
            return default if left is None else max(min(default, left), timedelta(seconds=1))
        wanted = parse_duration(expires)
        if wanted > self.lifetimes.longest:
            longest = format_duration(self.lifetimes.longest)
            raise InvalidInput(
                f"expires {expires!r} is longer than a token may live: at most {longest} "
                "(MODELHUB_TOKEN_MAX_TTL)",
                {"field": "expires", "value": expires, "max": longest},
            )
        if left is not None and wanted > left:
            most = format_duration(left)
            raise PermissionDenied(
                f"a token cannot outlive the token that creates it: {expires} asked, "
                f"yours ends sooner; ask for at most {most}",
                {"field": "expires", "value": expires, "max": most},
            )
        return wanted

    def _issue(
        self,
        caller: Caller,
        user: str,
        scopes: list[Scope],
        lifetime: timedelta,
        description: str = "",
    ) -> tuple[TokenInfo, str]:
        token_id, secret = secrets.token_hex(8), secrets.token_urlsafe(32).replace("_", "-")
        expires_at = self.now() + lifetime
        draft = TokenDraft(
            id=token_id,
            principal=user,
            secret_hash=self._hash(secret),
            scopes=scopes,
            description=description,
            expires_at=expires_at,
        )
        audit = AuditDraft(
            caller.name,
            "tokens.create",
            user,
            {
                "token": token_id,
                "scopes": [s.value for s in scopes],
                "expires_at": expires_at.isoformat(timespec="seconds"),
            },
        )
        info = self.metadata.create_token(draft, audit)
        return info, f"{TOKEN_PREFIX}_{token_id}_{secret}"

    def list_tokens(self, caller: Caller, user: str | None = None) -> list[TokenInfo]:
        if user is None and caller.is_admin:
            return self.metadata.list_tokens()
        if user is not None and user != caller.name:
            self.authorize(caller, Action.USERS_MANAGE)
            return self.metadata.list_tokens(user)
        self.authorize(caller, Action.AUTH_SELF)
        return self.metadata.list_tokens(caller.name)

    def revoke_token(self, caller: Caller, token_id: str) -> TokenInfo:
        try:
            token, _, _ = self.metadata.token_credentials(token_id)
        except NotFound:
            raise NotFound(f"token {token_id!r} does not exist") from None
        if token.principal != caller.name:
            self.authorize(caller, Action.USERS_MANAGE)
        else:
            self.authorize(caller, Action.TOKENS_MANAGE)
        audit = AuditDraft(caller.name, "tokens.revoke", token.principal, {"token": token_id})
        revoked = self.metadata.revoke_token(token_id, audit)
        self._forget(token_id)
        return revoked
