"""The `modelhub governance` command group; each part's module adds its commands to it."""

from __future__ import annotations

import typer

app = typer.Typer(
    help="Govern what reaches production: the policy, reviews, bias, explanations, "
    "ethics, compliance and the auditor's report.",
    no_args_is_help=True,
)
