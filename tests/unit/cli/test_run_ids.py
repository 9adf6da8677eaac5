"""A run id typed on the command line is bounded before any client or store sees it.

In local mode the id went straight to the store: 2**63 was an OverflowError from sqlite3.
"""

from __future__ import annotations

import warnings

import click
import pytest

with warnings.catch_warnings():  # typer still imports click's deprecated get_binary_stream
    warnings.simplefilter("ignore", DeprecationWarning)
    import typer

    from modelhub.cli.main import app


@pytest.mark.parametrize("command", ["show", "logs", "cancel", "resume", "watch"])
@pytest.mark.parametrize("run_id", [str(2**63), "9" * 5000, "0"])
def test_a_run_id_outside_1_to_2_63_is_a_usage_error(command: str, run_id: str) -> None:
    cli = typer.main.get_command(app)
    with pytest.raises(click.BadParameter, match=r"not in the range|not a valid integer"):
        cli.main(["runs", command, run_id], prog_name="modelhub", standalone_mode=False)
