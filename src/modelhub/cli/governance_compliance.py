"""`modelhub governance check|ethics`: compliance checks and the ethics review of a version."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from modelhub.cli.context import client_session
from modelhub.cli.drift import resolve_version
from modelhub.cli.governance_app import app
from modelhub.cli.options import read_text_file
from modelhub.cli.render import console, print_json

if TYPE_CHECKING:
    from modelhub.domain.governance import Assessment

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]
RefArg = Annotated[str, typer.Argument(help="MODEL@VERSION (or MODEL@ALIAS, MODEL for latest)")]
MAX_ETHICS_FILE_BYTES = 1_000_000


@app.command()
def check(ref: RefArg, json: JsonOpt = False) -> None:
    """Run the compliance checks on a version now: each pass or fail with its reason."""
    with client_session() as client:
        name, version = resolve_version(client, ref)
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
    text = read_text_file(file, MAX_ETHICS_FILE_BYTES, "ethics")
    with client_session() as client:
        name, version = resolve_version(client, ref)
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
