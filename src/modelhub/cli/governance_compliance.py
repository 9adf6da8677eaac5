"""`modelhub governance check|ethics`: compliance checks and the ethics review of a version."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from modelhub.cli.context import client_session
from modelhub.cli.governance_app import app
from modelhub.cli.render import console, print_json
from modelhub.errors import InvalidInput

if TYPE_CHECKING:
    from modelhub.client.contract import ModelhubClient
    from modelhub.domain.governance import Assessment

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]
RefArg = Annotated[str, typer.Argument(help="MODEL@VERSION (or MODEL@ALIAS, MODEL for latest)")]
MAX_ETHICS_FILE_BYTES = 1_000_000


def _resolve(client: ModelhubClient, ref: str) -> tuple[str, int]:
    name, _, selector = ref.partition("@")
    if selector.isdigit():
        return name, int(selector)
    found = client.get(ref)
    return found.name, found.version


@app.command()
def check(ref: RefArg, json: JsonOpt = False) -> None:
    """Run the compliance checks on a version now: each pass or fail with its reason."""
    with client_session() as client:
        name, version = _resolve(client, ref)
        result = client.compliance_check(name, version)
    if json:
        print_json(result)
    else:
        print_checks(result)


@app.command()
def ethics(
    ref: RefArg,
    file: Annotated[Path, typer.Option("--file", help="The ethics review, as YAML.")],
    json: JsonOpt = False,
) -> None:
    """Record your ethics review of a version (you need models.approve)."""
    if not file.is_file():
        raise InvalidInput(f"no such file: {file}", {"path": str(file)})
    if file.stat().st_size > MAX_ETHICS_FILE_BYTES:
        raise InvalidInput(
            f"{file} is larger than {MAX_ETHICS_FILE_BYTES:,} bytes", {"path": str(file)}
        )
    try:
        text = file.read_text("utf-8")
    except UnicodeDecodeError:
        raise InvalidInput(f"{file} is not UTF-8 text", {"path": str(file)}) from None
    with client_session() as client:
        name, version = _resolve(client, ref)
        result = client.ethics_review(name, version, text)
    if json:
        print_json(result)
    else:
        colour = "green" if result.passed else "red"
        console.print(
            f"[{colour}]{result.summary}[/] for {result.model}@{result.version} "
            f"(assessment {result.id}, policy version {result.policy_version})"
        )


def print_checks(result: Assessment) -> None:
    table = Table(title=f"compliance of {result.model}@{result.version}")
    table.add_column("check")
    table.add_column("result")
    table.add_column("reason", overflow="fold")
    colours = {"pass": "green", "fail": "red"}
    for check in result.figures.get("checks", []):
        status = str(check["status"])
        table.add_row(check["name"], f"[{colours.get(status, 'dim')}]{status}[/]", check["reason"])
    console.print(table)
    colour = "green" if result.passed else "red"
    console.print(
        f"[{colour}]{result.summary}[/] (assessment {result.id}, "
        f"policy version {result.policy_version})"
    )
