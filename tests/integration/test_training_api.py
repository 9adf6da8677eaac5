"""Training over a real server: pipelines, runs, their live event stream, and the CLI on top."""

from __future__ import annotations

import json
import random
import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from modelhub import Client
from modelhub.domain.records import Dataset
from modelhub.domain.runs import RunStatus
from tests.integration.conftest import Cli, ServerProcess, make_server, running

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def write_blobs(path: Path, rows: int = 200) -> Path:
    """Two well-separated blobs: a tabular classifier learns them in two epochs."""
    rng = random.Random(0)
    lines = ["a,b,label"]
    for i in range(rows):
        c = i % 2
        lines.append(f"{rng.gauss(c * 3, 1):.3f},{rng.gauss(-c * 3, 1):.3f},{c}")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")
    return path


def spec(name: str, result: str, max_epochs: int = 2, batch_size: int = 16, extra: str = "") -> str:
    return (
        f"name: {name}\ntype: pre_training\ntrainer: tabular_classifier\ndatasets: [blobs]\n"
        f"max_epochs: {max_epochs}\nhyperparameters: {{batch_size: {batch_size}{extra}}}\n"
        f"checkpoint: {{every_steps: 10, keep_last: 2}}\nresult_model: {{name: {result}}}\n"
    )


def read_stream(
    http: httpx.Client, run_id: int, **kwargs: Any
) -> list[tuple[str | None, str, Any]]:
    """The whole event stream of a run, read to its end: (id, event, data) per message."""
    response = http.get(f"/api/v1/runs/{run_id}/events", timeout=120, **kwargs)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/event-stream")
    messages = []
    for block in response.text.split("\n\n"):
        fields = dict(line.split(": ", 1) for line in block.splitlines() if line[:1] != ":")
        if fields:
            messages.append((fields.get("id"), fields["event"], json.loads(fields["data"])))
    return messages


def wait_for(check: Callable[[], bool], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


@pytest.fixture(scope="module")
def trainer(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """One run at a time, so a second run waits in the queue while a first one trains."""
    srv = make_server(
        tmp_path_factory.mktemp("training"),
        MODELHUB_TRAIN_WARM_WORKERS="1",
        MODELHUB_TRAIN_MAX_RUNNING="1",
    )
    with running(srv):
        yield srv


@pytest.fixture(scope="module")
def dataset(trainer: ServerProcess, tmp_path_factory: pytest.TempPathFactory) -> Dataset:
    csv = write_blobs(tmp_path_factory.mktemp("data") / "blobs.csv")
    with Client(trainer.url, token=trainer.token) as client:
        return client.register_dataset(csv, "blobs")


def test_a_run_streams_its_events_to_the_end(trainer: ServerProcess, dataset: Dataset) -> None:
    with trainer.http() as http:
        created = http.post("/api/v1/pipelines", json={"spec": spec("blobs-mlp", "blobs-clf")})
        assert created.status_code == 201, created.text
        assert (created.json()["pipeline"]["name"], created.json()["pipeline"]["version"]) == (
            "blobs-mlp",
            1,
        )
        estimate = created.json()["estimate"]
        assert estimate["device_class"].startswith("cpu") and estimate["currency"] == "USD"
        assert estimate["memory_bytes"] > 0 and estimate["cost"] >= 0
        started = http.post("/api/v1/pipelines/blobs-mlp/runs", json={"priority": "high"})
        assert started.status_code == 201, started.text
        run_id = started.json()["id"]
        assert (started.json()["status"], started.json()["priority"]) == ("queued", "high")

        messages = read_stream(http, run_id)
        statuses = [data["data"]["status"] for _, kind, data in messages if kind == "status"]
        assert statuses == ["queued", "running", "finishing", "completed"]
        kinds = {kind for _, kind, _ in messages}
        assert {"progress", "metrics", "checkpoint", "log"} <= kinds
        ids = [int(i) for i, _, _ in messages if i is not None]
        assert ids == sorted(ids) and len(ids) == len(set(ids))
        assert messages[-1][1] == "status" and messages[-1][2]["data"]["result_version"] == 1
        logs = "".join(data["text"] for _, kind, data in messages if kind == "log")
        assert "--- attempt 1 of" in logs

        run = http.get(f"/api/v1/runs/{run_id}").json()
        assert (run["status"], run["progress"], run["result_version"]) == ("completed", 100.0, 1)
        val = http.get(f"/api/v1/runs/{run_id}/metrics", params={"name": "val_accuracy"}).json()
        assert [p["name"] for p in val] == ["val_accuracy"] * 2
        assert http.get(f"/api/v1/runs/{run_id}/checkpoints").json()
        assert http.get(f"/api/v1/runs/{run_id}/alerts").json() == []
        listed = http.get("/api/v1/runs", params={"pipeline": "blobs-mlp", "status": "completed"})
        assert [r["id"] for r in listed.json()] == [run_id]
        assert http.get("/api/v1/runs", params={"status": "bogus"}).status_code == 400

        log = http.get(f"/api/v1/runs/{run_id}/logs")
        assert log.headers["content-type"].startswith("text/plain")
        assert log.text == logs and int(log.headers["x-next-offset"]) == len(log.content)
        rest = http.get(f"/api/v1/runs/{run_id}/logs", params={"offset": len(log.content)})
        assert rest.content == b"" and rest.headers["x-next-offset"] == str(len(log.content))

        # Resuming the stream: only what came after the given event, then the end.
        second_last = ids[-2]
        tail = {"log_offset": len(log.content)}
        resumed = read_stream(
            http, run_id, headers={"last-event-id": str(second_last)}, params=tail
        )
        assert resumed == [messages[-1]]
        assert read_stream(http, run_id, params={"after": second_last, **tail}) == [messages[-1]]

    with Client(trainer.url, token=trainer.token) as client:
        version = client.get("blobs-clf@1")
        assert version.lineage.source_run == str(run_id)
        assert version.lineage.pipeline == "blobs-mlp@1"
        assert version.lineage.datasets == [dataset.digest]
        assert version.lineage.dataset_versions == ["blobs@1"]
        assert version.lineage.hyperparameters == {"batch_size": 16, "max_epochs": 2}
        assert version.metrics["val_accuracy"] == val[-1]["value"]
        streamed = list(client.run_events(run_id))
        assert [e.kind for e in streamed if e.kind != "log"] == [m[1] for m in messages if m[0]]

    # What the server wrote is its own: the home and a run folder closed to other
    # users, the database, the run's log and the workers' log readable by it only.
    home = trainer.home
    assert home.stat().st_mode & 0o777 == 0o700
    assert (home / "runs" / str(run_id)).stat().st_mode & 0o777 == 0o700
    for written in ("modelhub.db", f"runs/{run_id}/logs.txt", "runs/workers.log", "admin.token"):
        assert (home / written).stat().st_mode & 0o077 == 0, written


def test_cancel_and_resume(trainer: ServerProcess, dataset: Dataset) -> None:
    with Client(trainer.url, token=trainer.token) as client:
        client.create_pipeline(spec("slow", "slow-clf", max_epochs=1000, batch_size=1))
        client.create_pipeline(spec("quick", "quick-clf"))
        slow = client.start_run("slow")
        wait_for(lambda: client.get_run(slow.id).status is RunStatus.RUNNING)
        quick = client.start_run("quick")
        assert client.get_run(quick.id).status is RunStatus.QUEUED  # one run at a time

        assert client.cancel_run(quick.id).status is RunStatus.CANCELLED
        stopping = client.cancel_run(slow.id)
        assert stopping.status is RunStatus.RUNNING and stopping.cancel_requested
        statuses = [e.data["status"] for e in client.run_events(slow.id) if e.kind == "status"]
        assert statuses[-2:] == ["cancelling", "cancelled"]
        assert client.get_run(slow.id).status is RunStatus.CANCELLED

        resumed = client.resume_run(quick.id)
        assert resumed.status is RunStatus.QUEUED and not resumed.cancel_requested
        statuses = [e.data["status"] for e in client.run_events(quick.id) if e.kind == "status"]
        assert statuses == ["queued", "cancelled", "queued", "running", "finishing", "completed"]
        assert client.get_run(quick.id).result_version == 1

    with trainer.http() as http:
        again = http.post(f"/api/v1/runs/{quick.id}/resume")
        assert again.status_code == 409
        assert again.json()["error"]["code"] == "illegal_transition"
        assert again.json()["error"]["message"].startswith(
            f"run {quick.id} is completed; it cannot become queued"
        )
        cancel = http.post(f"/api/v1/runs/{quick.id}/cancel")
        assert cancel.status_code == 409 and "nothing to cancel" in cancel.text


def test_specs_report_every_problem(
    trainer: ServerProcess, dataset: Dataset, tmp_path: Path
) -> None:
    broken = "name: x\ntype: pre_training\ntrainer: tabular_classifer\nmax_epochs: 0\n"
    script = (
        "name: scripted\ntype: pre_training\ntrainer: script\ndatasets: [blobs, nope@2]\n"
        "script: {path: train.py}\nresult_model: {name: scripted}\n"
    )
    on_server = tmp_path / "pipeline.yaml"
    on_server.write_text(spec("from-a-file", "x"))
    with trainer.http() as http:
        bad = http.post("/api/v1/pipelines", json={"spec": broken})
        assert bad.status_code == 400
        error = bad.json()["error"]
        fields = {e["field"] for e in error["details"]["errors"]}
        assert {"trainer", "max_epochs", "datasets", "result_model"} <= fields
        assert error["message"].startswith(f"pipeline spec has {len(error['details']['errors'])}")

        missing = http.post("/api/v1/pipelines", json={"spec": script}).json()["error"]
        assert missing["message"].splitlines()[0] == "pipeline spec has 2 problems:"
        assert [e["field"] for e in missing["details"]["errors"]] == ["datasets[1]", "script.path"]
        assert "train.py was not sent" in missing["message"]

        files = {"train.py": "def train(ctx):\n    raise NotImplementedError\n"}
        fixed = script.replace(", nope@2", "")
        created = http.post("/api/v1/pipelines", json={"spec": fixed, "files": files})
        assert created.status_code == 201 and created.json()["pipeline"]["script_digest"]

        # A spec is YAML text, never a file name the server would go and read.
        named = http.post("/api/v1/pipelines", json={"spec": str(on_server)})
        assert named.status_code == 400 and "a pipeline spec is a mapping" in named.text


def test_the_engines_this_server_offers(trainer: ServerProcess) -> None:
    with Client(trainer.url, token=trainer.token) as client:
        engines = client.list_engines()
    assert [(e.name, e.kind, e.status) for e in engines] == [("local", "local", "online")]
    assert engines[0].capacity.cpus > 0 and engines[0].capacity.nodes == 1
    with httpx.Client(base_url=trainer.url) as anonymous:
        assert anonymous.get("/api/v1/engines").status_code == 401


def test_unknown_runs_and_pipelines(trainer: ServerProcess) -> None:
    with trainer.http() as http:
        for method, path in [
            ("GET", "/api/v1/runs/999999"),
            ("GET", "/api/v1/runs/999999/events"),
            ("GET", "/api/v1/runs/999999/logs"),
            ("POST", "/api/v1/runs/999999/cancel"),
            ("POST", "/api/v1/runs/999999/resume"),
            ("GET", "/api/v1/pipelines/nope"),
            ("POST", "/api/v1/pipelines/nope/runs"),
        ]:
            response = http.request(method, path, json={} if method == "POST" else None)
            assert response.status_code == 404, (method, path)
            assert response.json()["error"]["code"] == "not_found"
        assert "run 999999 does not exist" in http.get("/api/v1/runs/999999/events").text
        garbled = http.get("/api/v1/runs/1/events", headers={"last-event-id": "x"})
        assert garbled.status_code == 400


# -- the CLI, on the local home (scheduler in the CLI process) and over the server ------


def write_pipeline(folder: Path, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "pipeline.yaml").write_text(text)
    return folder / "pipeline.yaml"


def test_cli_trains_and_follows_runs(cli: Cli, tmp_path: Path) -> None:
    cli.json("datasets", "register", str(write_blobs(tmp_path / "blobs.csv")), "--name", "blobs")
    pipeline = write_pipeline(tmp_path / "pipelines", spec("blobs-mlp", "blobs-clf"))
    created = cli.run("pipelines", "create", str(pipeline)).stdout
    assert "estimate:" in created and "on cpu-" in created and "USD" in created

    run = cli.json("train", str(pipeline))
    assert (run["status"], run["result_version"]) == ("completed", 1)
    run_id = str(run["id"])
    shown = cli.json("runs", "show", run_id)
    assert shown["run"]["result_version"] == 1 and shown["checkpoints"]
    assert [r["id"] for r in cli.json("runs", "list", "--pipeline", "blobs-mlp")] == [run["id"]]
    assert cli.json("pipelines", "show", "blobs-mlp")["version"] == 2
    assert "--- attempt 1 of" in cli.run("runs", "logs", run_id).stdout

    plot = tmp_path / "plots" / "new" / "loss.png"
    cli.run("runs", "plot", run_id, "-o", str(plot))
    assert plot.read_bytes()[:8] == PNG_MAGIC

    events = [
        json.loads(line) for line in cli.run("runs", "watch", run_id, "--json").stdout.splitlines()
    ]
    assert events[-1]["kind"] == "status" and events[-1]["data"]["status"] == "completed"
    assert "completed" in cli.run("runs", "watch", run_id).stdout

    started = cli.run("pipelines", "start", "blobs-mlp", "--priority", "low").stdout
    queued_only = "a modelhub server on this home will run it"
    assert (queued_only in started) == (cli.mode == "local")
    match = re.search(r"run (\d+) of blobs-mlp", started)
    assert match is not None
    cli.run("runs", "cancel", match[1])
    watched = cli.run("runs", "watch", match[1], ok=False)
    assert watched.returncode == 1 and f"run {match[1]} was cancelled" in watched.stderr
    resumed = cli.run("runs", "resume", match[1]).stdout
    assert "resumed" in resumed and (queued_only in resumed) == (cli.mode == "local")

    again = cli.run("runs", "resume", run_id, ok=False)
    assert again.returncode == 5
    assert again.stderr.startswith(f"error: run {run_id} is completed; it cannot become queued")


def test_cli_reports_bad_specs_and_failed_runs(cli: Cli, tmp_path: Path) -> None:
    cli.json("datasets", "register", str(write_blobs(tmp_path / "blobs.csv")), "--name", "blobs")
    broken = write_pipeline(tmp_path / "broken", "name: x\ntype: pre_training\nmax_epochs: 0\n")
    result = cli.run("pipelines", "create", str(broken), ok=False)
    assert result.returncode == 2
    lines = result.stderr.splitlines()
    assert lines[0].startswith("error: pipeline spec has ") and len(lines) >= 4

    mislabelled = spec("mislabelled", "m", extra=", label: nope")
    failed = cli.run("train", str(write_pipeline(tmp_path / "bad", mislabelled)), ok=False)
    assert failed.returncode == 2, failed.stderr
    assert re.search(r"error: run \d+ failed: label column 'nope' is not in", failed.stderr)
