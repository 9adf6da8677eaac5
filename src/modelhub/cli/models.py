"""`modelhub models ...`: parse, call the client, render."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from modelhub.cli.context import client_session, total_size, transfer_progress
from modelhub.cli.render import console, print_json, version_details, versions_table
from modelhub.domain.names import parse_tags
from modelhub.domain.queries import VersionQuery

app = typer.Typer(help="Register, find, promote and retire models.", no_args_is_help=True)

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]


@app.command()
def register(
    path: Annotated[Path, typer.Argument(help="A model file or folder.")],
    name: Annotated[str, typer.Option("--name", "-n", help="Model name.")],
    type: Annotated[str | None, typer.Option("--type", "-t", help="Model type.")] = None,
    framework: Annotated[str | None, typer.Option(help="Declare the framework.")] = None,
    description: Annotated[str, typer.Option(help="What the model is for.")] = "",
    license: Annotated[str | None, typer.Option(help="License, e.g. apache-2.0.")] = None,
    tag: Annotated[list[str] | None, typer.Option(help="key=value, repeatable.")] = None,
    label: Annotated[str | None, typer.Option(help="Semantic version label.")] = None,
    trust: Annotated[bool, typer.Option(help="Accept a pickle-based file (admin).")] = False,
    card: Annotated[Path | None, typer.Option(help="Markdown model card file.")] = None,
    json: JsonOpt = False,
) -> None:
    """Register a file or folder as the next version of a model."""
    from modelhub.services.registry import RegisterRequest

    tags = parse_tags(tag or [])
    model_card = card.read_text() if card else None
    with (
        client_session() as client,
        transfer_progress(f"register {path.name}", _size(path), not json) as progress,
    ):
        request = RegisterRequest(
            name=name,
            type=type,
            framework=framework,
            description=description,
            license=license,
            tags=tags,
            label=label,
            trust=trust,
            model_card=model_card,
        )
        version = client.register(request, path, progress)
    if json:
        print_json(version)
    else:
        console.print(
            f"registered [bold]{version.name}[/] version {version.version} "
            f"({version.framework.value}, sha256:{version.digest[:12]})"
        )


def _size(path: Path) -> int:
    return total_size(path) if path.exists() else 0


@app.command("list")
def list_models(
    type: Annotated[str | None, typer.Option(help="Only this model type.")] = None,
    tag: Annotated[list[str] | None, typer.Option(help="key=value, repeatable.")] = None,
    stage: Annotated[str | None, typer.Option(help="Only versions in this stage.")] = None,
    framework: Annotated[str | None, typer.Option(help="Only this framework.")] = None,
    search: Annotated[str | None, typer.Option(help="Text in name or description.")] = None,
    all_versions: Annotated[bool, typer.Option(help="Every version, not the newest.")] = False,
    archived: Annotated[bool, typer.Option(help="Include archived models.")] = False,
    limit: Annotated[int, typer.Option(help="At most this many rows.")] = 100,
    json: JsonOpt = False,
) -> None:
    """List models (the newest matching version of each) with filters."""
    with client_session() as client:
        query = VersionQuery(
            type=type,
            framework=framework,
            stage=stage,
            tags=parse_tags(tag or []),
            text=search,
            include_archived=archived,
            all_versions=all_versions,
            limit=limit,
        )
        page = client.search(query)
    if json:
        print_json({"items": [v.model_dump(mode="json") for v in page.items], "total": page.total})
    else:
        console.print(versions_table(page.items, title=f"{page.total} matching"))


@app.command()
def show(
    ref: Annotated[str, typer.Argument(help="NAME[@VERSION|@latest|@STAGE|@ALIAS]")],
    json: JsonOpt = False,
) -> None:
    """Show one version in full."""
    with client_session() as client:
        version = client.get(ref)
    if json:
        print_json(version)
    else:
        console.print(version_details(version))
        if version.model_card:
            console.print(version.model_card)


@app.command()
def versions(name: str, json: JsonOpt = False) -> None:
    """List every version of a model."""
    with client_session() as client:
        found = client.versions(name)
    if json:
        print_json(found)
    else:
        console.print(versions_table(found, title=name))


@app.command()
def alias(
    name: str,
    alias: str,
    version: Annotated[int | None, typer.Argument(help="Version; omit with --remove.")] = None,
    remove: Annotated[bool, typer.Option(help="Remove the alias.")] = False,
    json: JsonOpt = False,
) -> None:
    """Point an alias (champion, candidate ...) at a version, or remove it."""
    with client_session() as client:
        if remove:
            client.remove_alias(name, alias)
            _done(json, {"removed": f"{name}@{alias}"}, f"removed alias {alias} of {name}")
            return
        if version is None:
            raise typer.BadParameter("give the version the alias should name", param_hint="VERSION")
        found = client.set_alias(name, alias, version)
    _done(json, found, f"{name}@{alias} -> version {found.version}")


@app.command()
def stage(
    name: str,
    version: int,
    target: str,
    force: Annotated[bool, typer.Option(help="Skip the approval gate (admins).")] = False,
    json: JsonOpt = False,
) -> None:
    """Move a version: development -> staging -> production -> deprecated."""
    with client_session() as client:
        found = client.set_stage(name, version, target, force=force)
    _done(json, found, f"{name} version {version} is now in {found.stage.value}")


@app.command()
def approve(
    name: str,
    version: int,
    note: Annotated[str | None, typer.Option(help="Why.")] = None,
    json: JsonOpt = False,
) -> None:
    """Approve a version as one reviewer under the governance policy."""
    with client_session() as client:
        found = client.approve(name, version, note)
    done = found.approval.value == "approved"
    _done(
        json,
        found,
        f"{name} version {version} approved"
        if done
        else f"your approval of {name} version {version} is recorded; it is still "
        f"{found.approval.value} (modelhub governance status {name}@{version})",
    )


@app.command()
def reject(
    name: str,
    version: int,
    note: Annotated[str | None, typer.Option(help="Why.")] = None,
    json: JsonOpt = False,
) -> None:
    """Reject a version."""
    with client_session() as client:
        found = client.reject(name, version, note)
    _done(json, found, f"{name} version {version} rejected")


@app.command()
def download(
    ref: str,
    output: Annotated[Path, typer.Option("--output", "-o", help="Folder to write into.")],
    json: JsonOpt = False,
) -> None:
    """Download a version's files, verified against their digests."""
    with client_session() as client:
        version = client.get(ref)
        with transfer_progress(f"download {ref}", version.size, not json) as progress:
            _, written = client.download(f"{version.name}@{version.version}", output, progress)
    paths = [str(p) for p in written]
    _done(json, {"version": version.version, "files": paths}, "\n".join(paths))


@app.command()
def archive(
    ref: str,
    restore: Annotated[bool, typer.Option(help="Make it active again.")] = False,
    json: JsonOpt = False,
) -> None:
    """Archive a model or one version (hidden from lists, kept on disk)."""
    with client_session() as client:
        target = client.archive(ref, restore=restore)
    _done(
        json,
        {"archived": target, "restored": restore},
        f"{'restored' if restore else 'archived'} {target}",
    )


@app.command()
def delete(
    ref: str,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask.")] = False,
    json: JsonOpt = False,
) -> None:
    """Delete a model or one version; files nothing else uses are removed."""
    if not yes and sys.stdin.isatty() and not typer.confirm(f"delete {ref}?"):
        raise typer.Abort()
    with client_session() as client:
        target = client.delete(ref)
    _done(json, {"deleted": target}, f"deleted {target}")


@app.command()
def gc(
    grace: Annotated[int | None, typer.Option(help="Keep blobs younger than this (s).")] = None,
    json: JsonOpt = False,
) -> None:
    """Remove stored files that no version references."""
    with client_session() as client:
        report = client.gc(grace)
    _done(json, report, f"removed {report['blobs_deleted']} blobs, {report['bytes_freed']} bytes")


def _done(json: bool, data: object, message: str) -> None:
    if json:
        print_json(data)
    else:
        console.print(message)


@app.command()
def update(
    name: str,
    description: Annotated[str | None, typer.Option(help="New description.")] = None,
    license: Annotated[str | None, typer.Option(help="New license.")] = None,
    tag: Annotated[list[str] | None, typer.Option(help="key=value to set, repeatable.")] = None,
    json: JsonOpt = False,
) -> None:
    """Change a model's description, license or tags."""
    with client_session() as client:
        model = client.update_model(
            name, description=description, license=license, tags=parse_tags(tag or []) or None
        )
    _done(json, model, f"updated {model.name}")


@app.command("import")
def import_model(
    path: Annotated[Path, typer.Argument(help="An MLflow model folder, HF folder or .onnx.")],
    from_format: Annotated[
        str, typer.Option("--from", help="The layout: mlflow, huggingface or onnx.")
    ],
    name: Annotated[
        str | None, typer.Option("--name", "-n", help="Model name (default: the folder's).")
    ] = None,
    type: Annotated[str | None, typer.Option("--type", "-t", help="Model type.")] = None,
    description: Annotated[str, typer.Option(help="What the model is for.")] = "",
    license: Annotated[str | None, typer.Option(help="License (default: the card's).")] = None,
    tag: Annotated[list[str] | None, typer.Option(help="key=value, repeatable.")] = None,
    label: Annotated[str | None, typer.Option(help="Semantic version label.")] = None,
    trust: Annotated[bool, typer.Option(help="Accept a pickle-based model (admin).")] = False,
    json: JsonOpt = False,
) -> None:
    """Import a model saved by another platform, keeping its signature, requirements,
    license and card."""
    from modelhub.services.interop import ImportRequest

    request = ImportRequest(
        from_format=from_format,
        name=name,
        type=type,
        description=description,
        license=license,
        tags=parse_tags(tag or []),
        label=label,
        trust=trust,
    )
    with (
        client_session() as client,
        transfer_progress(f"import {path.name}", _size(path), not json) as progress,
    ):
        version = client.import_model(request, path, progress)
    if json:
        print_json(version)
    else:
        console.print(
            f"imported [bold]{version.name}[/] version {version.version} from {from_format} "
            f"({version.framework.value}, sha256:{version.digest[:12]})"
        )


@app.command("export")
def export_model(
    ref: Annotated[str, typer.Argument(help="NAME@VERSION (or an alias).")],
    to: Annotated[str, typer.Option("--to", help="mlflow, huggingface or onnx.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="A new or empty folder.")],
    json: JsonOpt = False,
) -> None:
    """Write a version as an MLflow model, a Hugging Face folder or ONNX."""
    with client_session() as client:
        result = client.export_model(ref, to, output)
    _done(
        json,
        result,
        f"exported {result.name}@{result.version} as {result.format} to {output} "
        f"({len(result.files)} files)",
    )
