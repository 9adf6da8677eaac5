"""`modelhub monitor`: the first word is a command of the group or a model name.

Run in this process on a local home (the real CLI, client and services); the options
may come before or after the name, and `reference` is a command, not a model.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from click.testing import Result
from typer.testing import CliRunner

from modelhub.cli.main import app
from modelhub.client.local import LocalClient
from modelhub.errors import InvalidInput, NotFound, Unavailable
from modelhub.services.registry import RegisterRequest
from modelhub.settings import Settings
from tests.unit.inspect.builders import save_numpy_safetensors


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    root = tmp_path_factory.mktemp("monitor-cli")
    weights = save_numpy_safetensors(root / "model.safetensors", {"w": np.ones((2, 2), np.float32)})
    with LocalClient(Settings(home=root / "home"), actor="dana") as client:
        client.register(RegisterRequest(name="intents", type="classification"), weights)
    yield root / "home"


def run(home: Path, *args: str) -> Result:
    env = {"MODELHUB_HOME": str(home), "MODELHUB_URL": None, "MODELHUB_TOKEN": None}
    return CliRunner().invoke(app, ["monitor", *args], env=env)


def report_of(result: Result) -> dict[str, object]:
    assert result.exit_code == 0, result.output
    data: dict[str, object] = json.loads(result.stdout)
    return data


def test_a_model_name_right_after_monitor_is_its_report(home: Path) -> None:
    report = report_of(run(home, "intents", "--json"))
    assert report["model"] == "intents" and report["since"] == "24h"
    assert report_of(run(home, "show", "intents", "--json"))["model"] == "intents"


def test_options_may_come_before_the_name(home: Path) -> None:
    report = report_of(run(home, "--since", "2h", "--version", "1", "intents", "--json"))
    assert (report["since"], report["version"]) == ("2h", 1)


def test_reference_is_the_command_and_show_reaches_a_model_of_that_name(home: Path) -> None:
    as_command = run(home, "reference", "intents@1", "--data", str(home / "x.csv"))
    assert isinstance(as_command.exception, Unavailable)
    assert "drift references" in as_command.exception.message
    as_model = run(home, "show", "reference", "--json")
    assert isinstance(as_model.exception, NotFound)
    assert "reference" in as_model.exception.message


def test_platform_takes_no_model_and_a_model_report_needs_one(home: Path) -> None:
    platform = run(home, "--platform", "--json")
    assert platform.exception is None, platform.output
    figures = json.loads(platform.output)
    assert figures["platform"]["engine"] == "all" and figures["platform"]["runs_finished"] == 0
    table = run(home, "--platform")
    assert table.exception is None and "training" in table.output, table.output
    assert isinstance(run(home, "--platform", "intents").exception, InvalidInput)
    assert isinstance(run(home, "show").exception, InvalidInput)
    assert isinstance(run(home, "nope").exception, NotFound)


def test_monitor_alone_prints_its_usage(home: Path) -> None:
    result = run(home)
    assert "NAME | COMMAND" in result.output and "reference" in result.output


def test_the_tables_and_the_html_report(home: Path, tmp_path: Path) -> None:
    page = tmp_path / "report.html"
    result = run(home, "intents", "--report", str(page))
    assert result.exit_code == 0, result.output
    assert "health 100/100" in result.stdout and "recommendations" in result.stdout
    assert f"wrote {page}" in result.stdout.replace("\n", "")
    html = page.read_text()
    assert html.startswith("<!DOCTYPE html>") and "<h1>intents</h1>" in html
