"""End-to-end demo on the embedded defaults (SQLite + a local artifact folder).

Starts `modelhub server`, registers real model files of several formats through the
CLI, lists and searches them, walks one through its stages, and prints where to
look. With a terminal attached it keeps the server up until Ctrl-C; otherwise (CI,
--no-wait) it stops the server it started and exits.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from modelhub.samples import minilm_folder, write_mlp_onnx, write_mlp_safetensors, write_mlp_torch

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / ".demo"


def free_port(preferred: int = 8400) -> int:
    for port in (preferred, 0):
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return int(sock.getsockname()[1])
    raise RuntimeError("no free port on 127.0.0.1")


def wait_ready(url: str, proc: subprocess.Popen[bytes], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server exited early with code {proc.returncode}")
        try:
            if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"server at {url} did not become ready in {timeout:.0f}s")


def step(title: str) -> None:
    print(f"\n\033[1;36m== {title}\033[0m", flush=True)


@contextmanager
def running_server(
    home: Path, port: int, env: dict[str, str], log_path: Path
) -> Iterator[subprocess.Popen[bytes]]:
    """`modelhub server` on 127.0.0.1:`port` over `home`, ready when entered; stopped
    (SIGINT, then kill after 15 s) when left, however the block ends."""
    url = f"http://127.0.0.1:{port}"
    step(f"starting modelhub server on {url} (home {home})")
    with open(log_path, "wb") as log:
        server = subprocess.Popen(
            [sys.executable, "-m", "modelhub", "server", "--port", str(port)],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            wait_ready(url, server)
            yield server
        finally:
            server.send_signal(signal.SIGINT)
            try:
                server.wait(15)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()


def cli(env: dict[str, str], *args: str, check: bool = True, quiet: bool = False) -> int:
    print(f"$ modelhub {' '.join(args)}", flush=True)
    output = subprocess.DEVNULL if quiet else None
    code = subprocess.call([sys.executable, "-m", "modelhub", *args], env=env, stdout=output)
    if check and code != 0:
        raise SystemExit(f"demo step failed: modelhub {' '.join(args)} (exit {code})")
    return code


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--no-wait", action="store_true", help="stop the server at the end")
    options = parser.parse_args()

    shutil.rmtree(DEMO, ignore_errors=True)
    files = DEMO / "files"
    files.mkdir(parents=True)
    home = DEMO / "home"
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("MODELHUB_")}
    env |= {"MODELHUB_HOME": str(home), "COLUMNS": "120"}
    # Replicas hand their traffic roll-ups over every 5 s instead of every minute, so
    # the demo's monitor step need not wait for the minute to end.
    env |= {"MODELHUB_MONITORING_ROLLUP_SECONDS": "5"}

    try:
        with running_server(home, port, env, DEMO / "server.log") as server:
            client_env = env | {"MODELHUB_URL": url}
            run_tour(client_env, files, home)
            step("where to look")
            print(f"  server    {url}")
            print(f"  dashboard {url}/ (sign in with {home / 'admin.token'})")
            print(f"  API docs  {url}/docs")
            print(f"  metrics   {url}/metrics")
            print(f"  CLI       MODELHUB_URL={url} .venv/bin/modelhub models list")
            print(f"  home      {home} (SQLite metadata + content-addressed artifacts)")
            if not options.no_wait and sys.stdin.isatty():
                print("\nserver running; press Ctrl-C to stop it", flush=True)
                server.wait()
    except KeyboardInterrupt:
        pass
    print("demo finished; server stopped")


INTENTS = {
    "greeting": ["hello there", "hi", "good morning", "hey, how are you?", "hiya", "howdy"],
    "farewell": ["goodbye", "bye", "see you later", "take care", "so long", "see ya"],
    "weather": ["will it rain today", "is it sunny", "how cold is it", "weather tomorrow?"],
}
INTENTS_PIPELINE = """\
name: persona-intents-head
type: pre_training
trainer: text_classifier
datasets: [persona-intents-data]
validation_split: 0.25
max_epochs: 15
hyperparameters: {learning_rate: 0.01}
checkpoint: {keep_last: 2, keep_best: {metric: val_loss, mode: min}}
resources: {cpus: 1, memory: 2GiB}
result_model: {name: persona-intents-text, description: Intents learned from conversations}
"""

# Chat features of three personas: a mood that two data-parallel workers learn, and
# that three federated clients (one per persona, its rows never pooled) learn together.
MOOD_DDP_PIPELINE = """\
name: persona-mood-ddp
type: pre_training
trainer: tabular_classifier
datasets: [persona-chats]
max_epochs: 3
hyperparameters: {label: mood, batch_size: 32, hidden: [16], learning_rate: 0.01}
distributed: {workers: 2, backend: gloo}
resources: {cpus: 1, memory: 1GiB}
result_model: {name: persona-mood, description: "Mood from chat features, two DDP workers"}
"""

# The mood pipeline again, with a search block: `modelhub tune` runs a small Optuna study.
MOOD_TUNE_PIPELINE = """\
name: persona-mood-tuned
type: pre_training
trainer: tabular_classifier
datasets: [persona-chats]
max_epochs: 3
hyperparameters: {label: mood, batch_size: 32, hidden: [16], learning_rate: 0.01}
search:
  metric: val_loss
  seed: 7
  startup_trials: 2
  params:
    learning_rate: {type: float, low: 1.0e-3, high: 0.3, log: true}
    batch_size: {type: categorical, choices: [16, 64]}
resources: {cpus: 1, memory: 1GiB}
result_model: {name: persona-mood-tuned, description: "Mood, the best of a tuning study"}
"""

MOOD_FEDERATED_PIPELINE = """\
name: persona-mood-fl
type: federated_learning
trainer: tabular_classifier
datasets: [{name: persona-chats, partition_by: persona_id}]
hyperparameters: {label: mood, batch_size: 16, hidden: [16], learning_rate: 0.01}
federated: {clients: 3, rounds: 3, strategy: fedavg, min_fit_clients: 2}
resources: {cpus: 2, memory: 3GiB}
result_model: {name: persona-mood-fl, description: "Mood learned by each persona's client"}
"""


def write_persona_chats(path: Path, rows: int = 600) -> Path:
    import numpy as np

    rng = np.random.default_rng(7)
    lines = ["persona_id,length,sentiment,mood"]
    for i in range(rows):
        mood = i % 2
        persona = ("ada", "bo", "cy")[i % 3]
        length, sentiment = rng.normal(mood * 3, 1), rng.normal(-mood * 3, 1)
        lines.append(f"{persona},{length:.4f},{sentiment:.4f},{mood}")
    path.write_text("\n".join(lines) + "\n")
    return path


def wait_for_history(env: dict[str, str], model: str, requests: int, timeout: float = 30) -> None:
    """Until the model's requests reached the server's history (replicas hand over
    each roll-up period: MONITORING_ROLLUP_SECONDS, 5 s in this demo)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        shown = subprocess.run(
            [sys.executable, "-m", "modelhub", "monitor", model, "--since", "1h", "--json"],
            env=env,
            capture_output=True,
            text=True,
        )
        if shown.returncode == 0:
            performance = json.loads(shown.stdout).get("performance") or {}
            if performance.get("requests", 0) >= requests:
                return
        time.sleep(0.5)
    raise SystemExit(f"no requests of {model} reached the history within {timeout:.0f} s")


DASHBOARD_PAGES = (
    "/models",
    "/models/persona-intents",
    "/training",
    "/deployments",
    "/monitoring",
    "/governance",
    "/audit",
)


def show_dashboard(url: str, token: str) -> None:
    """Sign in as a browser does (the token into a cookie) and open each tab once."""
    with httpx.Client(base_url=url, timeout=30) as browser:
        signed_in = browser.post("/signin", data={"token": token, "next": "/models"})
        if signed_in.status_code != 303:
            raise SystemExit(f"demo step failed: sign-in answered {signed_in.status_code}")
        for path in DASHBOARD_PAGES:
            page = browser.get(path)
            if page.status_code != 200:
                raise SystemExit(f"demo step failed: GET {path} answered {page.status_code}")
            title = page.text.split("<title>", 1)[1].split("</title>", 1)[0]
            timing = page.headers.get("server-timing", "")
            print(f"  {path:<28} {title:<36} {len(page.content) / 1000:5.1f} KB  {timing}")
    print(f"  open {url}/ in a browser and sign in with the admin token")


def cli_head(env: dict[str, str], lines: int, *args: str) -> None:
    """Run a command and print only its first lines (for long output)."""
    print(f"$ modelhub {' '.join(args)}  # first {lines} lines", flush=True)
    shown = subprocess.run(
        [sys.executable, "-m", "modelhub", *args], env=env, capture_output=True, text=True
    )
    if shown.returncode != 0:
        raise SystemExit(f"demo step failed: modelhub {' '.join(args)}\n{shown.stderr}")
    print("\n".join(shown.stdout.splitlines()[:lines]) + "\n  ...", flush=True)


def write_explain_sample(path: Path, rows: int = 60) -> Path:
    """Texts to explain the intents model on: the policy asks for at least 50 rows."""
    texts = [t for examples in INTENTS.values() for t in examples]
    openers = ["", "ok ", "so ", "well "]
    sample = [openers[i // len(texts) % len(openers)] + texts[i % len(texts)] for i in range(rows)]
    path.write_text("".join(json.dumps({"text": t}) + "\n" for t in sample))
    return path


def reviewer_env(env: dict[str, str], user: str) -> dict[str, str]:
    """The environment of a second person: a data scientist who may review."""
    cli(env, "auth", "users", "add", user, "--role", "data_scientist")
    made = subprocess.run(
        [sys.executable, "-m", "modelhub", "auth", "tokens", "create", "--user", user,
         "--expires", "1d", "--description", "demo reviewer", "--json"],
        env=env, capture_output=True, text=True, check=True,
    )  # fmt: skip
    return env | {"MODELHUB_TOKEN": json.loads(made.stdout)["token"]}


def write_intents(path: Path) -> Path:
    rows = [{"text": t, "label": label} for label, texts in INTENTS.items() for t in texts]
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def texts_body(*texts: str) -> str:
    """An Open Inference Protocol request carrying text (BYTES) rows."""
    tensor = {"name": "text", "shape": [len(texts)], "datatype": "BYTES", "data": list(texts)}
    return json.dumps({"inputs": [tensor]})


def run_tour(env: dict[str, str], files: Path, home: Path) -> None:
    step("first start: the server made an admin and saved its token")
    print(f"  {home / 'admin.token'} (mode 0600); the CLI finds it there, or set MODELHUB_TOKEN")
    cli(env, "auth", "whoami")
    cli(env, "auth", "users", "add", "ada-dev", "--role", "developer")

    step("registering real model files of four formats")
    safetensors = write_mlp_safetensors(files / "intents.safetensors", seed=1)
    onnx_file = write_mlp_onnx(files / "intents.onnx", seed=2)
    torch_file = write_mlp_torch(files / "intents.pt", seed=3)
    cli(
        env,
        "models", "register", str(safetensors), "--name", "persona-intents",
        "--type", "classification", "--description", "Intent classifier for the Ada persona",
        "--license", "apache-2.0", "--tag", "team=personas", "--label", "1.0.0",
    )  # fmt: skip
    cli(env, "models", "register", str(onnx_file), "--name", "persona-intents", "--label", "1.1.0")
    cli(
        env, "models", "register", str(torch_file), "--name", "persona-intents-pt",
        "--type", "classification", "--tag", "team=research",
    )  # fmt: skip
    cli(
        env, "models", "register", str(minilm_folder()), "--name", "minilm-embeddings",
        "--type", "embedding_model", "--description", "all-MiniLM-L6-v2 sentence embeddings",
        "--tag", "team=personas", "--license", "apache-2.0",
    )  # fmt: skip

    step("listing and searching")
    cli(env, "models", "list")
    cli(env, "models", "list", "--tag", "team=personas", "--framework", "onnx")
    cli(env, "models", "list", "--search", "minilm")
    cli(env, "models", "show", "minilm-embeddings@latest")

    step("moving persona-intents version 2 through its stages")
    cli(env, "models", "alias", "persona-intents", "champion", "2")
    cli(env, "models", "stage", "persona-intents", "2", "staging")
    print("(production needs an approval first; this refusal is expected:)")
    cli(env, "models", "stage", "persona-intents", "2", "production", check=False)
    print("(nobody approves their own version; this refusal is expected too:)")
    cli(env, "models", "approve", "persona-intents", "2", "--note", "eval 0.94", check=False)
    print("(an admin may move it past the gate instead; the audit log records the override)")
    cli(env, "models", "stage", "persona-intents", "2", "production", "--force")
    cli(env, "models", "show", "persona-intents@production")
    cli(env, "models", "download", "persona-intents@champion", "-o", str(files / "download"))
    cli(env, "models", "versions", "persona-intents")

    step("teaching the persona its intents: a dataset, a pipeline, a training run")
    dataset = write_intents(files / "intents.jsonl")
    cli(env, "datasets", "register", str(dataset), "--name", "persona-intents-data")
    pipeline = files / "pipeline.yaml"
    pipeline.write_text(INTENTS_PIPELINE)
    cli(env, "pipelines", "create", str(pipeline))
    cli(env, "train", str(pipeline))
    cli(env, "runs", "show", "1")
    cli(env, "runs", "plot", "1", "-o", str(files / "loss.png"))

    step("when one process is not enough: data-parallel workers, federated clients")
    chats = write_persona_chats(files / "persona-chats.csv")
    cli(env, "datasets", "register", str(chats), "--name", "persona-chats")
    for name, text in (
        ("mood-ddp.yaml", MOOD_DDP_PIPELINE),
        ("mood-fl.yaml", MOOD_FEDERATED_PIPELINE),
    ):
        spec = files / name
        spec.write_text(text)
        cli(env, "train", str(spec))
    cli(env, "models", "lineage", "persona-mood-fl@1")
    cli(env, "engines", "list")
    cli(env, "models", "show", "persona-intents-text@latest")

    step("faster models: an int8 copy measured against its source, a study, other platforms")
    cli(env, "optimize", "persona-mood@1", "--to", "int8", check=False)
    tuned = files / "mood-tune.yaml"
    tuned.write_text(MOOD_TUNE_PIPELINE)
    cli(env, "tune", str(tuned), "--trials", "4", "--wait")
    cli(env, "tune", "status", "persona-mood-tuned", "--chart", str(files / "study.svg"))
    exported = files / "persona-mood-mlflow"
    cli(env, "models", "export", "persona-mood@1", "--to", "mlflow", "-o", str(exported))
    cli(env, "models", "import", str(exported), "--from", "mlflow", "--name", "mood-from-mlflow")

    step("governance: what production needs, the evidence, a review, lineage, card, report")
    trained = "persona-intents-text@1"
    cli_head(env, 12, "governance", "policy", "show")
    cli(env, "governance", "status", trained)
    sample = write_explain_sample(files / "explain-sample.jsonl")
    cli(env, "governance", "explain", trained, "--data", str(sample), "--row", "0",
        "-o", str(files / "importance.png"))  # fmt: skip
    print("(the trained model has no license or intended use yet: some checks fail, as expected)")
    cli(env, "governance", "check", trained, check=False)
    grace = reviewer_env(env, "grace-ds")
    cli(env, "governance", "request", trained, "--reviewers", "grace-ds")
    print("(the admin trained it, and nobody approves their own version: refused, as expected)")
    cli(env, "governance", "approve", trained, "--note", "looks fine", check=False)
    cli(grace, "governance", "approve", trained, "--note", "explanation reviewed: greetings lead")
    cli(env, "governance", "status", trained, check=False)
    cli(env, "models", "lineage", trained, "--format", "mermaid")
    card = files / "README.md"
    cli(env, "models", "card", trained, "-o", str(card))
    print("\n".join(card.read_text().splitlines()[:14]) + "\n  ...")
    cli(env, "governance", "report", trained, "-o", str(files / "governance-report.md"))

    step("serving the persona: deploy its models, then call them")
    cli(env, "deploy", "persona-intents-text@latest", "--env", "staging")
    greetings = texts_body("hi, nice to meet you", "will it rain?")
    cli(env, "predict", "persona-intents-text", "--input", greetings)
    cli(env, "deploy", "minilm-embeddings", "--name", "embedder", "--replicas", "2")
    cli(env, "predict", "embedder", "--input", texts_body("personas answer through models"))
    cli(env, "deployments", "list")
    cli(env, "deployments", "show", "persona-intents-text-staging")

    step("watching the persona: its traffic, health and recommendations")
    for question in ("hello!", "is it sunny", "goodbye", "how cold is it", "hey there"):
        cli(env, "predict", "persona-intents-text", "--input", texts_body(question), quiet=True)
    wait_for_history(env, "persona-intents-text", requests=6)  # with the one above
    cli(env, "monitor", "persona-intents-text", "--since", "1h")
    cli(env, "monitor", "persona-intents-text", "--report", str(files / "report.html"))
    cli(env, "monitor", "--platform")

    step("the audit log: who did what, hash-chained")
    cli(env, "audit", "list", "--limit", "6")
    cli(env, "audit", "verify")

    step("the dashboard: the same platform in a browser")
    show_dashboard(env["MODELHUB_URL"], (home / "admin.token").read_text().strip())


if __name__ == "__main__":
    main()
