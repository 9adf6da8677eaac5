"""The models CLI, run as a user runs it, once on the local home and once over a server."""

from __future__ import annotations

import hashlib
from pathlib import Path

from modelhub.samples import minilm_folder, write_mlp_onnx, write_mlp_safetensors, write_mlp_torch
from tests.integration.conftest import Cli, clean_env

VERSION_KEYS = {
    "name", "version", "label", "type", "framework", "architecture", "parameters", "size",
    "precision", "digest", "signature", "stage", "approval", "aliases", "created_at", "created_by",
}  # fmt: skip


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def total(cli: Cli) -> int:
    return int(cli.json("models", "list", "--all-versions", "--archived")["total"])


def test_register_show_and_list(cli: Cli, tmp_path: Path) -> None:
    weights = write_mlp_safetensors(tmp_path / "weights.safetensors")
    v1 = cli.json(
        "models", "register", str(weights), "--name", "persona-intents", "--type",
        "classification", "--description", "Intent classifier", "--license", "apache-2.0",
        "--tag", "team=personas", "--label", "1.2.0",
    )  # fmt: skip
    assert set(v1) >= VERSION_KEYS
    assert v1["name"] == "persona-intents" and v1["version"] == 1 and v1["label"] == "1.2.0"
    assert v1["framework"] == "safetensors" and v1["architecture"] == "mlp"
    assert v1["parameters"] == 16 * 32 + 32 + 32 * 4 + 4
    assert v1["precision"] == "fp32" and v1["digest"] == sha256(weights)
    assert v1["size"] == weights.stat().st_size
    assert (v1["stage"], v1["approval"], v1["aliases"]) == ("development", "pending", ["latest"])

    onnx_file = write_mlp_onnx(tmp_path / "weights.onnx")
    v2 = cli.json("models", "register", str(onnx_file), "--name", "persona-intents")
    assert v2["version"] == 2 and v2["type"] == "classification" and v2["framework"] == "onnx"
    assert [s["name"] for s in v2["signature"]["inputs"]] == ["features"]
    pt = write_mlp_torch(tmp_path / "other.pt")
    cli.json("models", "register", str(pt), "--name", "other", "--type", "custom")

    assert cli.json("models", "show", "persona-intents@1")["digest"] == v1["digest"]
    assert cli.json("models", "show", "persona-intents@latest")["version"] == 2
    assert cli.json("models", "show", "persona-intents")["version"] == 2
    assert [v["version"] for v in cli.json("models", "versions", "persona-intents")] == [1, 2]

    def names(*filters: str) -> list[tuple[str, int]]:
        items = cli.json("models", "list", *filters)["items"]
        return [(v["name"], v["version"]) for v in items]

    assert names() == [("other", 1), ("persona-intents", 2)]
    assert names("--type", "custom") == [("other", 1)]
    assert names("--tag", "team=personas") == [("persona-intents", 2)]
    assert names("--framework", "safetensors") == [("persona-intents", 1)]
    assert names("--search", "INTENT") == [("persona-intents", 2)]
    assert names("--stage", "production") == []
    human = cli.run("models", "list").stdout
    assert "persona-intents" in human and "other" in human


def test_stages_aliases_and_approval_gate(cli: Cli, tmp_path: Path) -> None:
    weights = write_mlp_safetensors(tmp_path / "w.safetensors")
    cli.run("models", "register", str(weights), "--name", "ada", "--type", "classification")
    cli.run("models", "alias", "ada", "champion", "1")
    assert cli.json("models", "show", "ada@champion")["aliases"] == ["champion", "latest"]
    cli.run("models", "stage", "ada", "1", "staging")

    refused = cli.run("models", "stage", "ada", "1", "production", ok=False)
    assert refused.returncode == 5
    assert refused.stderr.strip() == (
        "error: a version must be approved before production (approval is pending)"
    )
    assert cli.json("models", "show", "ada@1")["stage"] == "staging"

    own = cli.run("models", "approve", "ada", "1", "--note", "accuracy 0.94", ok=False)
    assert own.returncode == 6 and "nobody approves a version they created" in own.stderr
    forced = cli.json("models", "stage", "ada", "1", "production", "--force")
    assert (forced["stage"], forced["approval"]) == ("production", "pending")
    assert cli.json("models", "show", "ada@production")["version"] == 1

    illegal = cli.run("models", "stage", "ada", "1", "development", ok=False)
    assert (
        illegal.returncode == 5 and "cannot move from production to development" in illegal.stderr
    )
    cli.run("models", "alias", "ada", "champion", "--remove")
    assert cli.run("models", "show", "ada@champion", ok=False).returncode == 3


def test_download_single_file_and_folder(cli: Cli, tmp_path: Path) -> None:
    weights = write_mlp_safetensors(tmp_path / "w.safetensors")
    cli.run("models", "register", str(weights), "--name", "w", "--type", "custom")
    got = cli.json("models", "download", "w@1", "-o", str(tmp_path / "out"))
    assert got["files"] == [str((tmp_path / "out" / "w.safetensors").resolve())]
    assert sha256(tmp_path / "out" / "w.safetensors") == sha256(weights)

    folder = minilm_folder()
    version = cli.json(
        "models", "register", str(folder), "--name", "minilm", "--type", "embedding_model"
    )
    assert version["framework"] == "huggingface" and version["architecture"] == "BertModel"
    assert version["context_length"] == 512
    cli.run("models", "download", "minilm@latest", "-o", str(tmp_path / "minilm"))
    for source in folder.rglob("*"):
        if source.is_file():
            copy = tmp_path / "minilm" / source.relative_to(folder)
            assert sha256(copy) == sha256(source), source


def test_archive_and_delete(cli: Cli, tmp_path: Path) -> None:
    for seed in (1, 2):
        weights = write_mlp_safetensors(tmp_path / f"w{seed}.safetensors", seed=seed)
        cli.run("models", "register", str(weights), "--name", "old", "--type", "custom")
    cli.run("models", "archive", "old@1")
    assert [v["version"] for v in cli.json("models", "list", "--all-versions")["items"]] == [2]
    cli.run("models", "archive", "old")
    assert cli.json("models", "list")["total"] == 0
    assert cli.json("models", "list", "--archived")["total"] == 1
    cli.run("models", "archive", "old", "--restore")
    cli.run("models", "delete", "old@1", "--yes")
    assert [v["version"] for v in cli.json("models", "versions", "old")] == [2]
    cli.run("models", "delete", "old", "--yes")
    missing = cli.run("models", "show", "old", ok=False)
    assert missing.returncode == 3 and missing.stderr.strip() == "error: model 'old' does not exist"


def bad_files(tmp_path: Path) -> dict[str, Path]:
    good = write_mlp_safetensors(tmp_path / "good.safetensors")
    data = good.read_bytes()
    truncated = tmp_path / "truncated.safetensors"
    truncated.write_bytes(data[: len(data) // 2])
    corrupt = tmp_path / "corrupt.safetensors"
    corrupt.write_bytes(b"\xff" * 8 + data[8:])
    fake_onnx = tmp_path / "model.onnx"
    fake_onnx.write_text("this is not a model\n")
    return {"truncated": truncated, "corrupt": corrupt, "fake_onnx": fake_onnx, "good": good}


BAD_REGISTRATIONS = [
    ("truncated", ["--name", "m", "--type", "custom"], "truncated.safetensors"),
    ("corrupt", ["--name", "m", "--type", "custom"], "corrupt.safetensors"),
    ("fake_onnx", ["--name", "m", "--type", "custom"], "is not a valid ONNX model"),
    ("good", ["--name", "m", "--type", "robot"], "unknown type 'robot'"),
    ("good", ["--name", "m", "--type", "custom", "--framework", "jax"], "unknown framework"),
    ("good", ["--name", "bad name!", "--type", "custom"], "invalid model name"),
    ("good", ["--name", "../escape", "--type", "custom"], "invalid model name"),
    ("good", ["--name", "/abs", "--type", "custom"], "invalid model name"),
    ("good", ["--name", "m"], "a new model needs a type"),
    ("good", ["--name", "m", "--type", "custom", "--label", "v1"], "invalid version label"),
    ("good", ["--name", "m", "--type", "custom", "--tag", "novalue"], "invalid tag"),
]


def test_bad_input_is_one_clear_line_and_changes_nothing(cli: Cli, tmp_path: Path) -> None:
    files = bad_files(tmp_path)
    for case, args, message in BAD_REGISTRATIONS:
        result = cli.run("models", "register", str(files[case]), *args, ok=False)
        assert result.returncode == 2, (case, args, result.stderr)
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: "), lines
        assert message in lines[0], (message, lines)
    assert total(cli) == 0


def test_missing_file_and_type_clash(cli: Cli, tmp_path: Path) -> None:
    missing = cli.run("models", "register", str(tmp_path / "nope.safetensors"), "--name", "m",
                      "--type", "custom", ok=False)  # fmt: skip
    assert missing.returncode == 2 and "no such file or directory" in missing.stderr
    weights = write_mlp_safetensors(tmp_path / "w.safetensors")
    cli.run("models", "register", str(weights), "--name", "m", "--type", "custom")
    clash = cli.run(
        "models", "register", str(weights), "--name", "m", "--type", "generation", ok=False
    )
    assert clash.returncode == 2 and "is of type custom, not generation" in clash.stderr
    assert total(cli) == 1


def test_pickle_is_refused_without_trust(cli: Cli, tmp_path: Path) -> None:
    import pickle

    class Payload:
        def __reduce__(self) -> tuple[object, tuple[str]]:
            import os

            return (os.system, ("echo pwned",))

    evil = tmp_path / "model.pkl"
    evil.write_bytes(pickle.dumps(Payload()))
    refused = cli.run(
        "models", "register", str(evil), "--name", "evil", "--type", "custom", ok=False
    )
    assert refused.returncode == 7 and "pickle" in refused.stderr
    assert total(cli) == 0
    trusted = cli.json(
        "models", "register", str(evil), "--name", "evil", "--type", "custom", "--trust"
    )
    assert trusted["trusted"] is True


def test_environment_problems_are_one_line_too(tmp_path: Path) -> None:
    home = clean_env(MODELHUB_HOME=str(tmp_path / "home"))
    # Real processes: what a user's shell sees when the environment is wrong.
    local = Cli("local", home, tmp_path, subprocess=True)
    weights = write_mlp_safetensors(tmp_path / "w.safetensors")
    card = local.run("models", "register", str(weights), "--name", "m", "--type", "custom",
                     "--card", str(tmp_path / "missing.md"), ok=False)  # fmt: skip
    assert card.returncode == 2 and card.stderr.strip().startswith("error: No such file")
    local.run("models", "register", str(weights), "--name", "m", "--type", "custom")
    blocked = local.run("models", "download", "m@1", "-o", "/dev/null/x", ok=False)
    assert (
        blocked.returncode == 2 and blocked.stderr.strip() == "error: Not a directory: /dev/null/x"
    )
    down = Cli(
        "local",
        home | {"MODELHUB_DATABASE_URL": "postgresql://postgres@127.0.0.1:9/x"},
        tmp_path,
        subprocess=True,
    )
    unreachable = down.run("models", "list", ok=False)
    assert unreachable.returncode == 9
    lines = unreachable.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: cannot open the metadata database")


def test_update_model_metadata(cli: Cli, tmp_path: Path) -> None:
    weights = write_mlp_safetensors(tmp_path / "w.safetensors")
    cli.run("models", "register", str(weights), "--name", "m", "--type", "custom", "--tag", "a=1")
    updated = cli.json("models", "update", "m", "--description", "now described", "--license",
                       "mit", "--tag", "b=2")  # fmt: skip
    assert updated["description"] == "now described" and updated["license"] == "mit"
    assert updated["tags"] == {"a": "1", "b": "2"}
    assert cli.json("models", "list", "--search", "now desc")["total"] == 1


def test_datasets_register_list_show(cli: Cli, tmp_path: Path) -> None:
    data = tmp_path / "intents.jsonl"
    data.write_text('{"text": "hello", "label": "greet"}\n{"text": "bye", "label": "leave"}\n')
    first = cli.json("datasets", "register", str(data), "--name", "intents")
    assert (first["version"], first["rows"], first["format"]) == (1, 2, "jsonl")
    assert first["columns"] == {"text": "string", "label": "string"}
    assert first["digest"] == sha256(data)
    assert cli.json("datasets", "register", str(data), "--name", "intents")["version"] == 2
    assert [d["version"] for d in cli.json("datasets", "list")] == [1, 2]
    assert cli.json("datasets", "show", "intents@1")["digest"] == first["digest"]
    assert cli.json("datasets", "show", "intents")["version"] == 2

    bad = tmp_path / "broken.jsonl"
    bad.write_text('{"text": "ok", "label": "x"}\n{"text": "oops"\n')
    refused = cli.run("datasets", "register", str(bad), "--name", "broken", ok=False)
    assert refused.returncode == 2
    assert refused.stderr.strip().startswith("error: broken.jsonl line 2: not valid JSON")
    missing = cli.run("datasets", "show", "broken", ok=False)
    assert missing.returncode == 3 and "dataset 'broken' does not exist" in missing.stderr
