"""`modelhub models lineage|card`: a version's lineage graph and its generated model card."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from modelhub.cli.context import client_session
from modelhub.cli.models import app
from modelhub.cli.render import console, print_json


@app.command()
def lineage(
    ref: Annotated[str, typer.Argument(help="NAME@VERSION (or NAME@alias).")],
    format: Annotated[
        str, typer.Option("--format", "-f", help="text, json or mermaid (graph LR).")
    ] = "text",
) -> None:
    """Where a version came from and what came of it: datasets, run, pipeline, base
    versions upstream; versions made from it and deployments serving it downstream."""
    from modelhub.governance.lineage_graph import FORMATS, render

    if format not in FORMATS:
        raise typer.BadParameter(f"use one of {', '.join(FORMATS)}", param_hint="--format")
    with client_session() as client:
        version = client.get(ref)
        graph = client.lineage(version.name, version.version)
    sys.stdout.write(render(graph, format))


@app.command()
def card(
    ref: Annotated[str, typer.Argument(help="NAME@VERSION (or NAME@alias).")],
    path: Annotated[
        Path | None, typer.Argument(help="Attach this Markdown file instead of generating.")
    ] = None,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write the card here (README.md).")
    ] = None,
    save: Annotated[
        bool, typer.Option("--save", help="Also store it as the version's model card.")
    ] = False,
    json: Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")] = False,
) -> None:
    """A Hugging Face style model card (README.md with YAML front matter) generated from
    the registry and the reviews; `--save` stores it with the version, so that
    `models download` exports it. With PATH, attach that file as the card instead."""
    if path is not None:
        _attach(ref, path, json)
        return
    with client_session() as client:
        version = client.get(ref)
        document = client.model_card(version.name, version.version)
        if save:
            client.set_model_card(f"{version.name}@{version.version}", document.text)
    if output is not None:
        output.write_text(document.text, encoding="utf-8")
    if json:
        print_json(document)
    elif output is not None:
        saved = " and stored with the version" if save else ""
        console.print(f"model card of {version.name}@{version.version} written to {output}{saved}")
    else:
        sys.stdout.write(document.text)


def _attach(ref: str, path: Path, json: bool) -> None:
    if not path.is_file():
        raise typer.BadParameter(f"no such file: {path}", param_hint="PATH")
    with client_session() as client:
        found = client.set_model_card(ref, path.read_text())
    if json:
        print_json(found)
    else:
        console.print(f"model card attached to {found.name} version {found.version}")
