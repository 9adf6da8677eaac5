"""A persona learns, before and after: `make persona-demo`.

Starts `modelhub server` on the embedded defaults (SQLite + a local artifact folder,
under .demo-persona/), trains an intent classifier on greetings, farewells and weather,
creates a persona on it, and then plays three batches of what people tell it:

1. people start ordering things; the persona answers "greeting" and is corrected;
2. people start asking for refunds; corrected again;
3. a poisoned batch: the orders and refunds sent again with their labels swapped.

After each batch it runs a learning cycle (`personas learn`) and waits for its
decision. At the end it prints a table: each cycle's held-out accuracy of the serving
version and of the candidate, the regression check on the held-out data the serving
version was promoted on, and the decision. Fixed seeds throughout; it stops the server
it started. About a minute on 2 cores.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import sys
import time
from pathlib import Path
from typing import Any

from modelhub.client import Client, InteractionIn, PersonaRequest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from demo import free_port, running_server, step  # scripts/demo.py's helpers

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / ".demo-persona"
SEED = 17
NAMES = ["ana", "ben", "carla", "dev", "eli", "fay", "gus", "hal", "ivy", "jo"]
PLACES = ["paris", "leeds", "oslo", "rome", "lima", "cairo", "perth", "quito", "dakar", "kyiv"]
ITEMS = [
    "a pizza", "two coffees", "a phone case", "some groceries", "a pair of shoes",
    "a birthday cake", "three books", "a large salad", "concert tickets", "some flowers",
]  # fmt: skip
TEMPLATES = {
    "greeting": (["hello {}", "hi {}", "good morning {}", "hey {}, how are you",
                  "nice to meet you {}", "greetings {}"], NAMES),
    "farewell": (["goodbye {}", "bye {}", "see you later {}", "take care {}",
                  "good night {}", "catch you tomorrow {}"], NAMES),
    "weather": (["will it rain in {}", "is it sunny in {}", "how cold is it in {}",
                 "weather in {} tomorrow?", "is it windy in {}", "do i need an umbrella in {}"],
                PLACES),
    "order": (["i'd like to order {}", "can you order {} for me", "please get me {} delivered",
               "add {} to my basket and buy it", "i want to buy {}", "place an order for {}"],
              ITEMS),
    "refund": (["i want a refund for {}", "can i return {} and get my money back",
                "please refund {}", "give me my money back for {}",
                "{} arrived broken, refund please", "how do i get a refund on {}"], ITEMS),
}  # fmt: skip
POLICY = """
triggers: {new_labels: null}
holdout: 0.2
margin: 0.05
tolerance: 0.02
alpha: 0.05
min_heldout: 10
epochs: 10
seed: 7
hyperparameters: {learning_rate: 0.01}
"""


def phrases(intent: str, count: int, seed: int) -> list[str]:
    templates, fillers = TEMPLATES[intent]
    every = [t.format(f) for t in templates for f in fillers]
    random.Random(seed).shuffle(every)
    return every[:count]


def said(id: str, text: str, label: str, version: int, answer: str) -> dict[str, Any]:
    """An interaction: what the persona answered and the person's feedback on it."""
    right = answer == label
    return {
        "id": id, "message": text, "response": answer, "version": version,
        "feedback": {"thumbs": "up"} if right else {"correction": label},
    }  # fmt: skip


def wait(what: str, check: Any, timeout: float = 240) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.3)
    raise SystemExit(f"demo: {what} did not happen within {timeout:.0f}s")


def learn(client: Client, number: int) -> dict[str, Any]:
    client.learn("ada")

    def ended() -> dict[str, Any] | None:
        cycles = client.persona_history("ada")
        done = cycles[number - 1] if len(cycles) >= number else None
        return done.model_dump(mode="json") if done and done.finished_at else None

    cycle: dict[str, Any] = wait(f"cycle {number}", ended)
    print(f"  cycle {number}: {cycle['decision']}", flush=True)
    return cycle


def send(client: Client, batch: list[dict[str, Any]]) -> None:
    client.add_interactions("ada", [InteractionIn.model_validate(item) for item in batch])


def row(name: str, cycle: dict[str, Any]) -> str:
    e = cycle["evaluation"] or {}
    r = e.get("regression") or {}
    trusted = (
        f"{r['serving_accuracy']:.2f} -> {r['candidate_accuracy']:.2f} (n={r['heldout']}, "
        f"p={r['p_value']:.2g})"
        if r.get("heldout")
        else "none yet"
    )
    return (
        f"| {name} | v{cycle['serving_version']} -> v{cycle['candidate_version']} | "
        f"{e.get('heldout', 0)} | {e.get('serving_accuracy', 0):.2f} | "
        f"{e.get('candidate_accuracy', 0):.2f} | {e.get('p_value', 1):.2g} | {trusted} | "
        f"{cycle['status']}"
        + (f" ({e['rejected_by']} check)" if e.get("rejected_by") else "")
        + " |"
    )


def play(client: Client) -> None:
    step("v1: an intent classifier of greetings, farewells and weather")
    data = DEMO / "intents.jsonl"
    base = {intent: phrases(intent, 24, SEED) for intent in ("greeting", "farewell", "weather")}
    rows = [{"text": t, "label": label} for label, texts in base.items() for t in texts[12:]]
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    client.register_dataset(data, "base-intents")
    spec = (
        "name: intents-v1\ntype: pre_training\ntrainer: text_classifier\n"
        "datasets: [base-intents]\nmax_epochs: 10\nseed: 3\n"
        "hyperparameters: {learning_rate: 0.01}\n"
        "result_model: {name: persona-intents, type: classification}\n"
    )
    client.create_pipeline(spec)
    run = client.start_run("intents-v1")
    done = wait(
        "training v1",
        lambda: (r := client.get_run(run.id)).status.value in ("completed", "failed") and r,
    )
    if done.status.value != "completed":
        raise SystemExit(f"demo: v1 failed: {done.error}")
    print("  persona-intents@1 trained")

    step("the persona: ada, calling persona-intents@ada, learning when asked")
    client.create_persona(PersonaRequest("ada", "persona-intents", policy=POLICY))
    cycles = []

    step("batch 1: people start ordering; ada answers 'greeting' and is corrected")
    known = [said(f"b1-{label}-{i}", t, label, 1, label)
             for label, texts in base.items() for i, t in enumerate(texts[:10])]  # fmt: skip
    orders = phrases("order", 60, SEED)
    batch = known + [said(f"b1-order-{i}", t, "order", 1, "greeting") for i, t in enumerate(orders)]
    send(client, batch)
    cycles.append(("1: orders appear", learn(client, 1)))

    step("batch 2: people start asking for refunds; corrected again")
    v2 = cycles[-1][1]["candidate_version"]
    refunds = phrases("refund", 60, SEED + 1)
    batch = [said(f"b2-{label}-{i}", t, label, v2, label)
             for label, texts in base.items() for i, t in enumerate(texts[:5])]  # fmt: skip
    batch += [said(f"b2-refund-{i}", t, "refund", v2, "greeting") for i, t in enumerate(refunds)]
    send(client, batch)
    cycles.append(("2: refunds appear", learn(client, 2)))

    step("batch 3, poisoned: the orders and refunds again, twice, labels swapped")
    v3 = cycles[-1][1]["candidate_version"]
    poison = [
        said(f"p{copy}-{label}-{i}", t, label, v3, "greeting")
        for copy in (1, 2)
        for label, texts in (("refund", orders), ("order", refunds))
        for i, t in enumerate(texts)
    ]
    send(client, poison)
    cycles.append(("3: poisoned (labels swapped)", learn(client, 3)))

    step("before and after")
    serving = client.get("persona-intents@ada").version
    print(
        "| cycle | versions | held-out rows | serving acc. | candidate acc. | McNemar p "
        "(gain) | trusted rows: serving -> candidate (regression p) | decision |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for name, cycle in cycles:
        print(row(name, cycle))
    first, second = cycles[0][1]["evaluation"], cycles[1][1]["evaluation"]
    print(
        f"\nada answered {first['serving_accuracy']:.0%} of cycle 1's held-out interactions "
        f"right with v1; after two cycles v{cycles[1][1]['candidate_version']} answers "
        f"{second['candidate_accuracy']:.0%} of cycle 2's (larger) held-out set. "
        f"The poisoned candidate was not promoted: ada still calls persona-intents@{serving}."
    )


def main() -> None:
    started = time.monotonic()
    shutil.rmtree(DEMO, ignore_errors=True)
    DEMO.mkdir(parents=True)
    home = DEMO / "home"
    port = free_port(8410)
    url = f"http://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("MODELHUB_")}
    env |= {
        "MODELHUB_HOME": str(home),
        "MODELHUB_PERSONA_INTERVAL_SECONDS": "0.5",
        "MODELHUB_TRAIN_WARM_WORKERS": "1",
        "MODELHUB_TRAIN_WARM_IMPORTS": "sentence_transformers",  # 4 text classifier runs
    }
    with running_server(home, port, env, DEMO / "server.log"):
        token = (home / "admin.token").read_text().strip()
        with Client(url, token) as client:
            play(client)
    print(f"\npersona demo finished in {time.monotonic() - started:.0f}s; server stopped")


if __name__ == "__main__":
    main()
