"""`modelhub engines list` and the engine line of `pipelines create`, in this process on a
local home (the real CLI, client and services)."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from modelhub.cli.main import app
from modelhub.client.local import LocalClient
from modelhub.settings import Settings
from tests.integration.training_engine import tabular_spec, write_blobs


def invoke(home: Path, *args: str) -> str:
    env = {
        "MODELHUB_HOME": str(home),
        "MODELHUB_URL": None,
        "MODELHUB_TOKEN": None,
        "MODELHUB_TRAIN_CPUS": "2",
        "MODELHUB_TRAIN_MEMORY": "4GiB",
        "MODELHUB_TRAIN_GPUS": "0",
        "COLUMNS": "220",
    }
    result = CliRunner().invoke(app, list(args), env=env)
    assert result.exit_code == 0, result.output
    return result.stdout


def test_engines_list_and_where_a_new_pipeline_would_run(tmp_path: Path) -> None:
    home = tmp_path / "home"
    with LocalClient(Settings(home=home), actor="dana") as client:
        client.register_dataset(write_blobs(tmp_path / "blobs.csv"), "blobs")
    listed = json.loads(invoke(home, "engines", "list", "--json"))
    assert [(e["name"], e["status"], e["capacity"]["cpus"]) for e in listed] == [
        ("local", "online", 2.0)
    ]
    table = invoke(home, "engines", "list")
    assert "local" in table and "2 cpus, 0 gpus, 4.0 GB" in table

    spec = tmp_path / "pipeline.yaml"
    spec.write_text(tabular_spec("gang", distributed="{workers: 2}"))
    created = invoke(home, "pipelines", "create", str(spec))
    assert "engine: local, 2 workers; estimated start: now" in created
