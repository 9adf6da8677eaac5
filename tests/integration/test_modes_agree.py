"""The CLI says the same things on the local home and over a server."""

from __future__ import annotations

import re
from pathlib import Path

from modelhub.samples import write_mlp_onnx, write_mlp_safetensors
from tests.integration.conftest import Cli, ServerProcess, clean_env

VOLATILE = re.compile(r'"(created_at|updated_at|created_by)": "[^"]*"')


def script(cli: Cli, files: Path) -> list[str]:
    """A session a user might type; returns what each command printed."""
    weights = str(files / "w.safetensors")
    commands = [
        ["models", "register", weights, "--name", "ada", "--type", "classification",
         "--tag", "team=personas", "--label", "1.0.0", "--json"],
        ["models", "register", str(files / "w.onnx"), "--name", "ada", "--json"],
        ["models", "alias", "ada", "champion", "1", "--json"],
        ["models", "stage", "ada", "1", "staging", "--json"],
        ["models", "stage", "ada", "1", "production", "--json"],
        ["models", "approve", "ada", "1", "--note", "ok", "--json"],
        ["models", "stage", "ada", "1", "production", "--json"],
        ["models", "list", "--json"],
        ["models", "list", "--tag", "team=personas", "--stage", "production", "--json"],
        ["models", "show", "ada@champion", "--json"],
        ["models", "versions", "ada", "--json"],
        ["models", "show", "nobody", "--json"],
        ["models", "archive", "ada@2", "--json"],
        ["models", "list", "--all-versions", "--json"],
    ]  # fmt: skip
    outputs = []
    for command in commands:
        result = cli.run(*command, ok=False)
        outputs.append(
            f"exit={result.returncode}\n{VOLATILE.sub('…', result.stdout)}{result.stderr}"
        )
    return outputs


def test_local_and_server_modes_print_the_same(tmp_path: Path, server: ServerProcess) -> None:
    files = tmp_path / "files"
    files.mkdir()
    write_mlp_safetensors(files / "w.safetensors")
    write_mlp_onnx(files / "w.onnx")
    local = Cli("local", clean_env(MODELHUB_HOME=str(tmp_path / "home")), files)
    remote = Cli("server", clean_env(MODELHUB_URL=server.url, MODELHUB_TOKEN=server.token), files)
    local_out, remote_out = script(local, files), script(remote, files)
    for command, a, b in zip(local.calls, local_out, remote_out, strict=True):
        assert a == b, f"modelhub {' '.join(command)} differs:\nlocal:\n{a}\nserver:\n{b}"
    assert local.json("models", "list", "--all-versions")["total"] == 1
    assert remote.json("models", "list", "--all-versions")["total"] == 1
