"""`modelhub governance policy|request|approve|reject|status`: the policy and the reviews."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from modelhub.cli.context import client_session
from modelhub.cli.governance_app import app
from modelhub.cli.options import read_text_file
from modelhub.cli.render import console, print_json

if TYPE_CHECKING:
    from modelhub.domain.governance import PolicyVersion
    from modelhub.domain.governance_status import GovernanceStatus

policy = typer.Typer(help="The versioned governance policy in force.", no_args_is_help=True)
app.add_typer(policy, name="policy")

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]
RefArg = Annotated[str, typer.Argument(help="NAME@VERSION, e.g. persona-intents@3.")]
NoteOpt = Annotated[str | None, typer.Option(help="Why (kept with the decision).")]
MAX_POLICY_BYTES = 256 * 1024


def _ref(text: str) -> tuple[str, int]:
    from modelhub.errors import InvalidInput

    name, _, selector = text.partition("@")
    if not name or not selector.isdigit() or int(selector) < 1:
        raise InvalidInput(f"name a version as NAME@VERSION (e.g. intents@3), not {text!r}")
    return name, int(selector)


@policy.command("show")
def show_policy(
    version: Annotated[
        int | None, typer.Option(help="A past version (0 is the default that ships).", min=0)
    ] = None,
    json: JsonOpt = False,
) -> None:
    """Print the policy in force (or one version of it) as its YAML text."""
    with client_session() as client:
        found = client.show_policy(version)
    if json:
        print_json(found)
    else:
        console.print(f"# policy version {found.version}, set by {found.created_by}")
        console.out(found.text, highlight=False)


@policy.command("set")
def set_policy(
    path: Annotated[Path, typer.Argument(help="The policy YAML file.", metavar="POLICY.yaml")],
    json: JsonOpt = False,
) -> None:
    """Make a YAML file the policy in force (admins); versioned and audited."""
    text = read_text_file(path, MAX_POLICY_BYTES, "policy")
    with client_session() as client:
        stored = client.set_policy(text)
    if json:
        print_json(stored)
    else:
        console.print(f"policy version {stored.version} is in force ({stored.digest[:12]})")


@policy.command("history")
def policy_history(json: JsonOpt = False) -> None:
    """Every policy version, newest first: version, digest, who set it, when."""
    with client_session() as client:
        found = client.policy_history()
    if json:
        print_json(found)
    else:
        console.print(_history_table(found))


def _history_table(versions: list[PolicyVersion]) -> object:
    from rich.table import Table

    table = Table(title="governance policy")
    for column in ("version", "digest", "by", "at"):
        table.add_column(column)
    for v in versions:
        table.add_row(str(v.version), v.digest[:12], v.created_by, v.created_at.isoformat())
    return table


@app.command("request")
def request_review(
    ref: RefArg,
    reviewers: Annotated[
        str | None, typer.Option(help="Who to ask, comma-separated: alice,bob.")
    ] = None,
    json: JsonOpt = False,
) -> None:
    """Open (or re-open) a version's review; the reviewers hear of it by webhook."""
    name, version = _ref(ref)
    named = [r.strip() for r in (reviewers or "").split(",") if r.strip()]
    with client_session() as client:
        opened = client.request_review(name, version, named)
    if json:
        print_json(opened)
    else:
        who = ", ".join(opened.reviewers) or "any reviewer the policy allows"
        console.print(f"review request {opened.id} for {ref} is open; asked: {who}")


@app.command()
def approve(ref: RefArg, note: NoteOpt = None, json: JsonOpt = False) -> None:
    """Approve a version as one reviewer under the policy."""
    _decide(ref, True, note, json)


@app.command()
def reject(ref: RefArg, note: NoteOpt = None, json: JsonOpt = False) -> None:
    """Reject a version; this closes its review request as rejected."""
    _decide(ref, False, note, json)


def _decide(ref: str, approve: bool, note: str | None, json: bool) -> None:
    name, version = _ref(ref)
    with client_session() as client:
        found = client.review(name, version, approve, note)
    if json:
        print_json(found)
    else:
        verb = "approval" if approve else "rejection"
        console.print(f"your {verb} of {ref} is recorded; its approval is {found.approval.value}")


@app.command()
def status(
    ref: RefArg,
    stage: Annotated[str, typer.Option(help="staging or production.")] = "production",
    json: JsonOpt = False,
) -> None:
    """What the policy needs before a stage, what is done and exactly what is missing."""
    name, version = _ref(ref)
    with client_session() as client:
        found = client.governance_status(name, version, stage)
    if json:
        print_json(found)
    else:
        _print_status(found)


def _print_status(found: GovernanceStatus) -> None:
    from rich.table import Table

    ref = f"{found.model}@{found.version}"
    verdict = "ready" if found.ready else "NOT ready"
    console.print(
        f"{ref} is {verdict} for {found.stage.value} under policy version {found.policy_version}"
        + (f" (rules: {', '.join(found.rules)})" if found.rules else "")
    )
    table = Table()
    for column in ("requirement", "state", "why"):
        table.add_column(column)
    for item in found.requirements:
        table.add_row(item.kind.value, "met" if item.met else "missing", item.reason)
    if found.requirements:
        console.print(table)
    else:
        console.print("the policy requires nothing for this stage")
    if found.request is not None:
        request = found.request
        console.print(
            f"request {request.id}: {request.state.value}, opened by {request.requested_by}"
            + (f", reviewers {', '.join(request.reviewers)}" if request.reviewers else "")
        )
        for d in found.decisions:
            verb = "approved" if d.approve else "rejected"
            console.print(f"  {d.reviewer} ({d.role}) {verb}" + (f": {d.note}" if d.note else ""))
