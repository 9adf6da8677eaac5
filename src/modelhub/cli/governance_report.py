"""`modelhub governance report`: the auditor's report of one version, as Markdown."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from modelhub.cli.context import client_session
from modelhub.cli.governance_app import app
from modelhub.cli.render import console, print_json


@app.command()
def report(
    ref: Annotated[str, typer.Argument(help="NAME@VERSION (or NAME@alias).")],
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write the report here.")
    ] = None,
    json: Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")] = False,
) -> None:
    """Everything governance knows about a version, for an auditor: the version, the
    policy in force and what it requires, every assessment and decision, the lineage
    and the audit events."""
    with client_session() as client:
        version = client.get(ref)
        document = client.governance_report(version.name, version.version)
    if output is not None:
        output.write_text(document.text, encoding="utf-8")
    if json:
        print_json(document)
    elif output is not None:
        console.print(f"report on {version.name}@{version.version} written to {output}")
    else:
        sys.stdout.write(document.text)
