"""`modelhub personas ...`: personas, their interactions and their learning cycles."""

from __future__ import annotations

import json as jsonlib
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from modelhub.cli.context import client_session
from modelhub.cli.options import read_text_file
from modelhub.cli.render import console, print_json
from modelhub.errors import InvalidInput

if TYPE_CHECKING:
    from modelhub.domain.personas import Cycle, LearnPlan, PersonaView

app = typer.Typer(
    help="Personas: the models they call, what people tell them, and how they learn.",
    no_args_is_help=True,
)

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]
NameArg = Annotated[str, typer.Argument(help="The persona's name.")]
MAX_POLICY_BYTES = 100_000
MAX_BATCH_BYTES = 16 * 1024 * 1024


@app.command()
def create(
    name: NameArg,
    model: Annotated[str, typer.Option("--model", help="Its intent classifier (a model name).")],
    chat_model: Annotated[
        str | None, typer.Option("--chat-model", help="Its chat model (a model name).")
    ] = None,
    alias: Annotated[
        str | None, typer.Option(help="The alias it calls the model by (default: its name).")
    ] = None,
    policy: Annotated[
        Path | None, typer.Option("--policy", help="Learning policy YAML (docs/personas.md).")
    ] = None,
    json: JsonOpt = False,
) -> None:
    """Create a persona calling MODEL@ALIAS."""
    from modelhub.services.personas import PersonaRequest

    text = read_text_file(policy, MAX_POLICY_BYTES, "policy") if policy else None
    with client_session() as client:
        created = client.create_persona(PersonaRequest(name, model, chat_model, alias, text))
    if json:
        print_json(created)
    else:
        console.print(f"persona [bold]{created.name}[/] calls {created.model}@{created.alias}")


@app.command("list")
def list_personas(json: JsonOpt = False) -> None:
    """Every persona."""
    with client_session() as client:
        found = client.list_personas()
    if json:
        print_json(found)
        return
    table = Table("name", "model", "chat model", "owner")
    for p in found:
        table.add_row(p.name, f"{p.model}@{p.alias}", p.chat_model or "-", p.owner)
    console.print(table)


@app.command()
def show(name: NameArg, json: JsonOpt = False) -> None:
    """Models in use, interactions collected, last learning cycle and its outcome."""
    with client_session() as client:
        view = client.show_persona(name)
    if json:
        print_json(view)
    else:
        print_view(view)


def print_view(view: PersonaView) -> None:
    p, c = view.persona, view.counts
    serving = f"@{view.serving_version}" if view.serving_version else " (no version)"
    console.print(f"persona [bold]{p.name}[/] (owner {p.owner})")
    console.print(f"  intents: {p.model}@{p.alias} -> {p.model}{serving}")
    console.print(f"  chat:    {p.chat_model or '-'}")
    console.print(
        f"  interactions: {c.interactions:,} ({c.labelled:,} labelled, {c.held_out:,} held "
        f"out, {c.new_labelled:,} new since the last cycle); {c.duplicates:,} duplicates "
        f"skipped, {c.scrubbed:,} personal values blanked"
    )
    last = view.last_cycle
    if last is None:
        console.print("  no learning cycle yet")
    else:
        console.print(
            f"  last cycle: #{last.number} ({last.trigger}) {last.status.value}"
            + (f": {last.decision}" if last.decision else "")
        )


@app.command()
def interactions(
    name: NameArg,
    file: Annotated[Path, typer.Argument(help='A JSON file: {"interactions": [...]} or a list.')],
    json: JsonOpt = False,
) -> None:
    """Send a batch of interactions (as POST /api/v1/personas/NAME/interactions)."""
    from pydantic import TypeAdapter, ValidationError

    from modelhub.domain.personas import InteractionIn

    text = read_text_file(file, MAX_BATCH_BYTES, "file")
    try:
        data = jsonlib.loads(text)
    except (ValueError, RecursionError) as exc:
        raise InvalidInput(f"{file} is not JSON: {exc}", {"field": "file"}) from None
    items = data.get("interactions") if isinstance(data, dict) else data
    try:
        batch = TypeAdapter(list[InteractionIn]).validate_python(items)
    except ValidationError as exc:
        error = exc.errors()[0]
        where = ".".join(str(part) for part in error["loc"])
        raise InvalidInput(f"interactions.{where}: {error['msg']}", {"field": where}) from None
    with client_session() as client:
        report = client.add_interactions(name, batch)
    if json:
        print_json(report)
    else:
        console.print(
            f"{report.added} added, {report.duplicates} duplicates skipped, "
            f"{sum(report.scrubbed.values())} personal values blanked"
        )


@app.command()
def learn(
    name: NameArg,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Say what a cycle would do; change nothing.")
    ] = False,
    json: JsonOpt = False,
) -> None:
    """Run one learning cycle now (it also runs by itself by policy)."""
    with client_session() as client:
        found: LearnPlan | Cycle = client.learn_plan(name) if dry_run else client.learn(name)
    if json:
        print_json(found)
        return
    from modelhub.domain.personas import LearnPlan

    if isinstance(found, LearnPlan):
        t = found.triggers
        console.print(
            f"would {found.would}\n  new labelled: {t.new_labels} (needed {t.needed}), "
            f"drift: {t.drift}, schedule due: {t.schedule_due}, fires now: {t.fired}\n"
            f"  train rows {found.train_rows}, held-out rows {found.heldout_rows}, classes "
            f"{', '.join(found.classes)}; chat pairs {found.chat_pairs}"
        )
    else:
        console.print(f"cycle #{found.number} {found.status.value}" + (
            f": {found.decision}" if found.decision else ""
        ))  # fmt: skip


@app.command()
def history(name: NameArg, json: JsonOpt = False) -> None:
    """Every cycle: data, run, evaluation, governance, canary, decision."""
    with client_session() as client:
        cycles = client.persona_history(name)
    if json:
        print_json(cycles)
        return
    table = Table(
        "#", "trigger", "status", "data", "run", "serving", "candidate", "accuracy", "decision"
    )
    for c in cycles:
        e = c.evaluation
        accuracy = f"{e.serving_accuracy:.2f} -> {e.candidate_accuracy:.2f}" if e else "-"
        table.add_row(
            str(c.number), c.trigger, c.status.value, c.dataset or "-",
            str(c.run_id or "-"), str(c.serving_version or "-"),
            str(c.candidate_version or "-"), accuracy, c.decision or "-",
        )  # fmt: skip
    console.print(table)


@app.command()
def policy(
    name: NameArg,
    file: Annotated[Path, typer.Argument(help="Learning policy YAML.")],
    json: JsonOpt = False,
) -> None:
    """Replace a persona's learning policy."""
    text = read_text_file(file, MAX_POLICY_BYTES, "policy")
    with client_session() as client:
        changed = client.set_persona_policy(name, text)
    if json:
        print_json(changed)
    else:
        console.print(f"policy of {changed.name} replaced")


@app.command()
def delete(name: NameArg) -> None:
    """Delete a persona, its interactions and cycles (its models stay)."""
    with client_session() as client:
        client.delete_persona(name)
    console.print(f"persona {name} deleted")
