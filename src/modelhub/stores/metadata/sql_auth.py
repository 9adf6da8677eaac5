"""Principals and API tokens in the SQL store."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, Row, func, insert, select, update
from sqlalchemy import exc as sa_exc

from modelhub.domain.auth import Principal, Scope, TokenInfo
from modelhub.errors import Conflict, NotFound
from modelhub.stores.metadata.base import AuditDraft, TokenDraft
from modelhub.stores.metadata.sql_base import SqlStoreBase, _aware, _now
from modelhub.stores.metadata.tables import principals, tokens

TOKEN_WITH_PRINCIPAL = select(tokens, principals.c.name.label("principal_name")).join(
    principals, principals.c.id == tokens.c.principal_id
)


def _principal(row: Row[Any]) -> Principal:
    return Principal(
        name=row.name,
        role=row.role,
        disabled=row.disabled,
        created_at=_aware(row.created_at),
    )


def _token(row: Row[Any]) -> TokenInfo:
    return TokenInfo(
        id=row.id,
        principal=row.principal_name,
        scopes=[Scope(s) for s in row.scopes],
        description=row.description,
        created_at=_aware(row.created_at),
        expires_at=_aware(row.expires_at) if row.expires_at else None,
        revoked_at=_aware(row.revoked_at) if row.revoked_at else None,
        last_used_at=_aware(row.last_used_at) if row.last_used_at else None,
    )


class AuthQueries(SqlStoreBase):
    def count_principals(self) -> int:
        with self._read() as conn:
            return int(conn.execute(select(func.count()).select_from(principals)).scalar_one())

    def create_principal(self, name: str, role: Any, audit: AuditDraft) -> Principal:
        try:
            with self._write(audit) as conn:
                conn.execute(
                    insert(principals).values(
                        name=name, role=str(role), disabled=False, created_at=_now()
                    )
                )
                return self._principal_row(conn, name)
        except sa_exc.IntegrityError as exc:
            raise Conflict(f"user {name!r} already exists", {"user": name}) from exc

    def _principal_row(self, conn: Connection, name: str) -> Principal:
        row = conn.execute(select(principals).where(principals.c.name == name)).first()
        if row is None:
            raise NotFound(f"user {name!r} does not exist", {"user": name})
        return _principal(row)

    def get_principal(self, name: str) -> Principal:
        with self._read() as conn:
            return self._principal_row(conn, name)

    def list_principals(self) -> list[Principal]:
        with self._read() as conn:
            rows = conn.execute(select(principals).order_by(principals.c.name)).all()
            return [_principal(row) for row in rows]

    def update_principal(self, name: str, changes: dict[str, Any], audit: AuditDraft) -> Principal:
        values = {k: (str(v) if k == "role" else v) for k, v in changes.items()}
        with self._write(audit) as conn:
            self._principal_row(conn, name)
            conn.execute(update(principals).where(principals.c.name == name).values(**values))
            return self._principal_row(conn, name)

    def create_token(self, draft: TokenDraft, audit: AuditDraft) -> TokenInfo:
        with self._write(audit) as conn:
            principal_id = conn.execute(
                select(principals.c.id).where(principals.c.name == draft.principal)
            ).scalar()
            if principal_id is None:
                raise NotFound(
                    f"user {draft.principal!r} does not exist", {"user": draft.principal}
                )
            conn.execute(
                insert(tokens).values(
                    id=draft.id,
                    principal_id=principal_id,
                    secret_hash=draft.secret_hash,
                    scopes=[s.value for s in draft.scopes],
                    description=draft.description,
                    created_at=_now(),
                    expires_at=draft.expires_at,
                )
            )
            return self._token_row(conn, draft.id)

    def _token_row(self, conn: Connection, token_id: str) -> TokenInfo:
        row = conn.execute(TOKEN_WITH_PRINCIPAL.where(tokens.c.id == token_id)).first()
        if row is None:
            raise NotFound(f"token {token_id!r} does not exist", {"token": token_id})
        return _token(row)

    def token_credentials(self, token_id: str) -> tuple[TokenInfo, str, Principal]:
        with self._read() as conn:
            row = conn.execute(
                select(
                    tokens,
                    principals.c.name.label("principal_name"),
                    principals.c.role,
                    principals.c.disabled,
                    principals.c.created_at.label("principal_created_at"),
                )
                .join(principals, principals.c.id == tokens.c.principal_id)
                .where(tokens.c.id == token_id)
            ).first()
        if row is None:
            raise NotFound("unknown token")
        principal = Principal(
            name=row.principal_name,
            role=row.role,
            disabled=row.disabled,
            created_at=_aware(row.principal_created_at),
        )
        return _token(row), row.secret_hash, principal

    def list_tokens(self, principal: str | None = None) -> list[TokenInfo]:
        query = TOKEN_WITH_PRINCIPAL.order_by(tokens.c.created_at)
        if principal is not None:
            query = query.where(principals.c.name == principal)
        with self._read() as conn:
            return [_token(row) for row in conn.execute(query).all()]

    def revoke_token(self, token_id: str, audit: AuditDraft) -> TokenInfo:
        with self._write(audit) as conn:
            token = self._token_row(conn, token_id)
            if token.revoked_at is None:
                conn.execute(
                    update(tokens).where(tokens.c.id == token_id).values(revoked_at=_now())
                )
            return self._token_row(conn, token_id)

    def touch_token(self, token_id: str) -> None:
        with self.engine.connect().execution_options(sqlite_write=True) as conn, conn.begin():
            conn.execute(update(tokens).where(tokens.c.id == token_id).values(last_used_at=_now()))
