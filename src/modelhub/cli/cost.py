"""`modelhub cost ...`: what was spent, grouped, and the monthly budgets that watch it."""

from __future__ import annotations

from typing import Annotated

import typer

from modelhub.cli.context import client_session
from modelhub.cli.cost_view import budgets_table, report_table
from modelhub.cli.render import console, print_json

app = typer.Typer(help="What models, runs and deployments cost; budgets.", no_args_is_help=True)
budget = typer.Typer(help="Monthly budgets per tag, user or model.", no_args_is_help=True)
app.add_typer(budget, name="budget")

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]


@app.command()
def report(
    since: Annotated[str, typer.Option(help="How far back: 30d, 24h, 90m.")] = "30d",
    by: Annotated[str, typer.Option(help="model, deployment, run, user or tag:KEY.")] = "model",
    json: JsonOpt = False,
) -> None:
    """Measured cost (CPU, GPU, replicas, storage) in the window, one row per group."""
    with client_session() as client:
        found = client.cost_report(since, by)
    if json:
        print_json(found)
    else:
        console.print(report_table(found))


@budget.command("set")
def set_budget(
    monthly: Annotated[float, typer.Option(help="Amount per calendar month (price currency).")],
    tag: Annotated[str | None, typer.Option(help="A tag KEY=VALUE of models.")] = None,
    user: Annotated[str | None, typer.Option(help="A user (what they ran, serve and own).")] = None,
    model: Annotated[str | None, typer.Option(help="A model.")] = None,
    json: JsonOpt = False,
) -> None:
    """Set a monthly budget (admins only); alerts fire at 80 % and 100 % of it."""
    from modelhub.domain.cost import BudgetRequest

    with client_session() as client:
        created = client.set_budget(BudgetRequest(monthly=monthly, tag=tag, user=user, model=model))
    if json:
        print_json(created)
    else:
        console.print(
            f"budget {created.id}: {created.label} {created.monthly:g} {created.currency}/month"
        )


@budget.command("list")
def list_budgets(json: JsonOpt = False) -> None:
    """Every budget with this month's spend and the thresholds already alerted."""
    with client_session() as client:
        found = client.list_budgets()
    if json:
        print_json(found)
    elif found:
        console.print(budgets_table(found))
    else:
        console.print("no budgets")


@budget.command("remove")
def remove_budget(
    budget_id: Annotated[int, typer.Argument(help="The budget's id.", metavar="ID", min=1)],
    json: JsonOpt = False,
) -> None:
    """Remove a budget (admins only)."""
    with client_session() as client:
        removed = client.remove_budget(budget_id)
    if json:
        print_json(removed)
    else:
        console.print(f"removed budget {removed.id} ({removed.label})")
