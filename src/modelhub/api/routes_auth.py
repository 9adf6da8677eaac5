"""/api/v1/auth: who am I, users, tokens."""

from __future__ import annotations

from fastapi import APIRouter

from modelhub.api.deps import ServicesDep
from modelhub.api.schemas import TokenBody, TokenCreated, UserBody, UserPatchBody
from modelhub.api.security import Self, TokenManager, UserManager
from modelhub.domain.auth import Principal, TokenInfo

router = APIRouter(prefix="/api/v1/auth", tags=["auth"])


@router.get("/whoami", response_model=Principal)
def whoami(services: ServicesDep, caller: Self) -> Principal:
    return services.auth.whoami(caller)


@router.get("/users", response_model=list[Principal])
def list_users(services: ServicesDep, caller: UserManager) -> list[Principal]:
    return services.auth.list_users(caller)


@router.post("/users", response_model=Principal, status_code=201)
def add_user(body: UserBody, services: ServicesDep, caller: UserManager) -> Principal:
    return services.auth.add_user(caller, body.name, body.role)


@router.patch("/users/{name}", response_model=Principal)
def update_user(
    name: str, body: UserPatchBody, services: ServicesDep, caller: UserManager
) -> Principal:
    return services.auth.set_user(caller, name, role=body.role, disabled=body.disabled)


@router.post("/tokens", response_model=TokenCreated, status_code=201)
def create_token(body: TokenBody, services: ServicesDep, caller: TokenManager) -> TokenCreated:
    info, token = services.auth.create_token(
        caller, body.user, expires=body.expires, scope=body.scope, description=body.description
    )
    return TokenCreated(token=token, info=info)


@router.get("/tokens", response_model=list[TokenInfo])
def list_tokens(services: ServicesDep, caller: Self, user: str | None = None) -> list[TokenInfo]:
    return services.auth.list_tokens(caller, user)


@router.delete("/tokens/{token_id}", response_model=TokenInfo)
def revoke_token(token_id: str, services: ServicesDep, caller: TokenManager) -> TokenInfo:
    return services.auth.revoke_token(caller, token_id)
