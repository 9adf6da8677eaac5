"""`modelhub auth ...` and `modelhub audit ...`."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from modelhub.cli.context import client_session
from modelhub.cli.render import console, print_json

app = typer.Typer(help="Who you are, users and API tokens.", no_args_is_help=True)
users = typer.Typer(help="Manage users (admins).", no_args_is_help=True)
tokens = typer.Typer(help="Create, list and revoke API tokens.", no_args_is_help=True)
app.add_typer(users, name="users")
app.add_typer(tokens, name="tokens")
audit = typer.Typer(help="The tamper-evident audit log (admins).", no_args_is_help=True)

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]


@app.command()
def whoami(json: JsonOpt = False) -> None:
    """Show the user your token belongs to and its role."""
    with client_session() as client:
        me = client.whoami()
    if json:
        print_json(me)
    else:
        console.print(f"{me.name} ({me.role.value})")


@users.command("add")
def add_user(
    name: str,
    role: Annotated[str, typer.Option(help="admin, data_scientist, developer or viewer")],
    json: JsonOpt = False,
) -> None:
    """Add a user with a role."""
    with client_session() as client:
        user = client.add_user(name, role)
    if json:
        print_json(user)
    else:
        console.print(f"added {user.name} ({user.role.value}); give them a token with "
                      f"`modelhub auth tokens create --user {user.name}`")  # fmt: skip


@users.command("set")
def set_user(
    name: str,
    role: Annotated[str | None, typer.Option(help="New role.")] = None,
    disabled: Annotated[bool | None, typer.Option("--disabled/--enabled")] = None,
    json: JsonOpt = False,
) -> None:
    """Change a user's role, or disable them (their tokens stop working)."""
    with client_session() as client:
        user = client.update_user(name, role=role, disabled=disabled)
    if json:
        print_json(user)
    else:
        state = "disabled" if user.disabled else "enabled"
        console.print(f"{user.name}: {user.role.value}, {state}")


@users.command("list")
def list_users(json: JsonOpt = False) -> None:
    """List users."""
    with client_session() as client:
        found = client.list_users()
    if json:
        print_json(found)
        return
    table = Table()
    for column in ("user", "role", "state", "created"):
        table.add_column(column)
    for user in found:
        created = f"{user.created_at:%Y-%m-%d %H:%M}" if user.created_at else "-"
        state = "disabled" if user.disabled else "active"
        table.add_row(user.name, user.role.value, state, created)
    console.print(table)


@tokens.command("create")
def create_token(
    user: Annotated[str | None, typer.Option(help="For this user (admins); default you.")] = None,
    expires: Annotated[
        str | None,
        typer.Option(help="Lifetime, e.g. 30d or 12h; default MODELHUB_TOKEN_DEFAULT_TTL."),
    ] = None,
    scope: Annotated[str, typer.Option(help="read or write.")] = "write",
    description: Annotated[str, typer.Option(help="What the token is for.")] = "",
    json: JsonOpt = False,
) -> None:
    """Create a token. It is shown once: store it now."""
    with client_session() as client:
        info, token = client.create_token(user, expires, scope, description)
    if json:
        print_json({"token": token, "info": info.model_dump(mode="json")})
        return
    until = f"until {info.expires_at:%Y-%m-%d %H:%M} UTC" if info.expires_at else "no expiry"
    console.print(f"token {info.id} for {info.principal} ({', '.join(info.scopes)}; {until}):")
    print(token)
    console.print("[dim]shown once; send it as Authorization: Bearer <token> or MODELHUB_TOKEN[/]")


@tokens.command("list")
def list_tokens(
    user: Annotated[str | None, typer.Option(help="Only this user's tokens.")] = None,
    json: JsonOpt = False,
) -> None:
    """List tokens (never their secrets)."""
    with client_session() as client:
        found = client.list_tokens(user)
    if json:
        print_json(found)
        return
    table = Table()
    table.add_column("id", no_wrap=True)
    for column in ("user", "scopes", "created", "expires", "state", "description"):
        table.add_column(column)
    for token in found:
        state = "revoked" if token.revoked_at else "active"
        table.add_row(
            token.id,
            token.principal,
            ", ".join(token.scopes),
            f"{token.created_at:%Y-%m-%d %H:%M}",
            f"{token.expires_at:%Y-%m-%d %H:%M}" if token.expires_at else "never",
            state,
            token.description,
        )
    console.print(table)


@tokens.command("revoke")
def revoke_token(token_id: str, json: JsonOpt = False) -> None:
    """Revoke a token by its id."""
    with client_session() as client:
        token = client.revoke_token(token_id)
    if json:
        print_json(token)
    else:
        console.print(f"revoked token {token.id} of {token.principal}")


@audit.command("list")
def audit_list(
    actor: Annotated[str | None, typer.Option(help="Only this actor.")] = None,
    action: Annotated[str | None, typer.Option(help="e.g. models.register")] = None,
    target: Annotated[str | None, typer.Option(help="Only this target.")] = None,
    since: Annotated[str | None, typer.Option(help="Only this recent, e.g. 1d or 2h.")] = None,
    limit: Annotated[int, typer.Option(help="At most this many, newest first.")] = 100,
    json: JsonOpt = False,
) -> None:
    """List audit events, newest first."""
    with client_session() as client:
        events = client.audit_events(actor, action, target, since, limit)
    if json:
        print_json(events)
        return
    table = Table()
    for column in ("id", "time (UTC)", "actor", "action", "target", "details"):
        table.add_column(column)
    for event in events:
        details = ", ".join(f"{k}={v}" for k, v in event.details.items())
        table.add_row(
            str(event.id), f"{event.at:%Y-%m-%d %H:%M:%S}", event.actor, event.action,
            event.target, details,
        )  # fmt: skip
    console.print(table)


@audit.command("verify")
def audit_verify(
    expect_head: Annotated[
        str | None,
        typer.Option(help="A head hash recorded earlier: the chain must still contain it."),
    ] = None,
    json: JsonOpt = False,
) -> None:
    """Check the hash chain and its head; exit 8 naming what was tampered with.

    Prints the head (newest event id and hash): keep it somewhere the database's
    writers cannot reach and pass it back with --expect-head.
    """
    with client_session() as client:
        verdict = client.audit_verify(expect_head)
    if json:
        print_json(verdict)
    elif verdict.intact:
        console.print(
            f"audit log intact: {verdict.events} events match their hash chain\n"
            f"head: {verdict.head_id} {verdict.head_hash}",
            highlight=False,
        )
    if not verdict.intact:
        from modelhub.errors import IntegrityError

        problems = verdict.problems
        more = f" (and {len(problems) - 1} more problems)" if len(problems) > 1 else ""
        raise IntegrityError(
            f"audit log tampered with: {problems[0]}{more}",
            verdict.model_dump(mode="json"),
        )
