"""A persona learns on a real server: its intent classifier, trained on three intents,
meets a shifted distribution (people start ordering, then asking for refunds), is
corrected, and after two learning cycles answers the held-out interactions at least
10 points better; the first new version reaches its alias through an automated canary
on a real deployment. A poisoned cycle (flipped labels) is caught by the evaluation
and never promoted. Bad input is refused whole, and the server keeps running.

One server for the module (fixed seeds everywhere: the data, the split by hash of the
interaction id, the training seed). The cycles start by themselves (the
`new_labels` trigger, the server's loop every 0.3 s) except the poisoned one, which
`modelhub personas learn` starts.
"""

from __future__ import annotations

import json
import random
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from modelhub.client import Client, Feedback, InteractionIn, PersonaRequest, RegisterRequest
from modelhub.errors import InvalidInput, NotFound
from tests.integration.conftest import Cli, ServerProcess, clean_env, make_server, running
from tests.integration.serving_helpers import deploy, settled, wait_for
from tests.unit.training.test_text_classifier import INTENTS

ITEMS = [
    "a pizza", "two coffees", "a phone case", "some groceries", "a pair of shoes",
    "a birthday cake", "three books", "a large salad", "concert tickets", "some flowers",
]  # fmt: skip
ORDER = [
    "i'd like to order {}", "can you order {} for me", "please get me {} delivered",
    "add {} to my basket and buy it", "i want to buy {}", "place an order for {}",
]  # fmt: skip
REFUND = [
    "i want a refund for {}", "can i return {} and get my money back", "please refund {}",
    "give me my money back for {}", "{} arrived broken, refund please",
    "how do i get a refund on {}",
]  # fmt: skip
POLICY = """
triggers: {new_labels: 40}
holdout: 0.2
margin: 0.05
alpha: 0.05
min_heldout: 10
epochs: 10
seed: 7
hyperparameters: {learning_rate: 0.01}
canary: {percent: 50, min_requests: 40, max_duration: 10m}
"""
SEED = 17


def phrases(templates: list[str], count: int, seed: int) -> list[str]:
    every = [t.format(item) for t in templates for item in ITEMS]
    random.Random(seed).shuffle(every)
    return every[:count]


def interaction(id: str, text: str, label: str, version: int, right: bool) -> dict[str, Any]:
    """What the hub reports: the answer given, and the person's feedback on it (a thumbs
    up when it was right, a correction when it was not)."""
    feedback: dict[str, Any] = {"thumbs": "up"} if right else {"correction": label}
    return {
        "id": id,
        "message": text,
        "response": label if right else "greeting",
        "version": version,
        "request_id": f"req-{id}",
        "feedback": feedback,
    }


def base(prefix: str, per_intent: int, version: int) -> list[dict[str, Any]]:
    return [
        interaction(f"{prefix}-{label}-{i}", text, label, version, right=True)
        for label, texts in INTENTS.items()
        for i, text in enumerate(texts[:per_intent])
    ]


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    root = tmp_path_factory.mktemp("personas")
    server = make_server(
        root,
        MODELHUB_TRAIN_WARM_WORKERS="1",
        MODELHUB_TRAIN_WARM_IMPORTS="sentence_transformers",
        MODELHUB_SERVE_WARM_SPARES="1",
        MODELHUB_PERSONA_INTERVAL_SECONDS="0.3",
        MODELHUB_SERVE_USAGE_SECONDS="0.3",
        MODELHUB_SERVE_HEALTH_SECONDS="0.2",
        MODELHUB_CANARY_INTERVAL_SECONDS="0.3",
        MODELHUB_MONITORING_ROLLUP_SECONDS="1",
    )
    with running(server):
        yield server


@pytest.fixture(scope="module")
def http(srv: ServerProcess) -> Iterator[httpx.Client]:
    with srv.http(timeout=60) as client:
        yield client


@pytest.fixture(scope="module")
def intents_v1(
    srv: ServerProcess, http: httpx.Client, tmp_path_factory: pytest.TempPathFactory
) -> int:
    """persona-intents@1: a text classifier of greeting, farewell and weather."""
    folder = tmp_path_factory.mktemp("intents")
    data = folder / "intents.jsonl"
    data.write_text(
        "".join(
            json.dumps({"text": t, "label": label}) + "\n"
            for label, texts in INTENTS.items()
            for t in texts
        )
    )
    spec = (
        "name: intents-v1\ntype: pre_training\ntrainer: text_classifier\n"
        "datasets: [base-intents]\nmax_epochs: 10\nseed: 3\n"
        "result_model: {name: persona-intents, type: classification}\n"
    )
    with Client(srv.url, srv.token) as client:
        client.register_dataset(data, "base-intents")
        client.create_pipeline(spec)
        run = client.start_run("intents-v1")
        done = wait_for(
            lambda: (r := client.get_run(run.id)).status.value in ("completed", "failed") and r,
            timeout=120,
            interval=0.2,
        )
    assert done.status.value == "completed", done.error
    assert done.result_version is not None
    return done.result_version


def modelhub(srv: ServerProcess, *args: str) -> subprocess.CompletedProcess[str]:
    env = clean_env(MODELHUB_URL=srv.url, MODELHUB_TOKEN=srv.token)
    return Cli("server", env, Path.cwd()).run(*args, ok=False)


def post(http: httpx.Client, persona: str, batch: list[dict[str, Any]]) -> httpx.Response:
    return http.post(f"/api/v1/personas/{persona}/interactions", json={"interactions": batch})


def cycle(http: httpx.Client, persona: str, number: int, timeout: float = 120) -> dict[str, Any]:
    """Cycle `number` once it has ended (promoted, rejected, rolled back, failed, skipped)."""

    def ended() -> dict[str, Any] | None:
        found = http.get(f"/api/v1/personas/{persona}/history").json()
        if len(found) >= number and found[number - 1]["finished_at"] is not None:
            done: dict[str, Any] = found[number - 1]
            return done
        return None

    found: dict[str, Any] = wait_for(ended, timeout=timeout, interval=0.2)
    return found


def in_canary(http: httpx.Client, persona: str, number: int) -> dict[str, Any]:
    def canary() -> dict[str, Any] | None:
        found = http.get(f"/api/v1/personas/{persona}/history").json()
        if len(found) >= number and found[number - 1]["status"] in ("canary", "rejected", "failed"):
            return dict(found[number - 1])
        return None

    found: dict[str, Any] = wait_for(canary, timeout=120, interval=0.2)
    return found


def send(endpoint: str, name: str, texts: list[str]) -> dict[int, int]:
    statuses: dict[int, int] = {}
    with httpx.Client(timeout=30) as client:
        for text in texts:
            body = {"inputs": [{"name": "text", "shape": [1], "datatype": "BYTES", "data": [text]}]}
            status = client.post(f"{endpoint}/v2/models/{name}/infer", json=body).status_code
            statuses[status] = statuses.get(status, 0) + 1
    return statuses


def metric(text: str, name: str) -> float:
    for line in text.splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"{name} not on /metrics")


def test_a_persona_learns_from_corrections_through_a_canary_and_refuses_poison(
    srv: ServerProcess, http: httpx.Client, intents_v1: int, tmp_path: Path
) -> None:
    policy = tmp_path / "learn.yaml"
    policy.write_text(POLICY)
    made = modelhub(
        srv, "personas", "create", "ada", "--model", "persona-intents",
        "--chat-model", "persona-intents", "--policy", str(policy), "--json",
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    assert json.loads(made.stdout)["alias"] == "ada"
    dry = modelhub(srv, "personas", "learn", "ada", "--dry-run", "--json")
    assert dry.returncode == 0, dry.stderr
    assert json.loads(dry.stdout)["triggers"]["fired"] is None
    assert http.get("/api/v1/personas/ada/history").json() == []  # the dry run changed nothing
    deploy(http, model="persona-intents@ada", name="ada-intents")

    # Cycle 1, started by the loop: people begin to order; the classifier knows nothing of it.
    orders = phrases(ORDER, 60, SEED)
    batch = base("b1", 10, intents_v1) + [
        interaction(f"b1-order-{i}", text, "order", intents_v1, right=False)
        for i, text in enumerate(orders)
    ]
    for i in range(5):  # personal data on the way in: blanked before it is stored
        batch[30 + i]["message"] += f" and mail me at ana{i}@example.com"
    reply = post(http, "ada", batch)
    assert reply.status_code == 200, reply.text
    report = reply.json()
    assert (report["added"], report["duplicates"], report["scrubbed"]) == (90, 0, {"email": 5})

    first = in_canary(http, "ada", 1)
    assert first["status"] == "canary", first["decision"]
    assert first["trigger"] == "new_labels"
    split = settled(http, "ada-intents")
    assert len(split["traffic"]) == 2 and split["rollout"]["analysis"]["mode"] == "auto"
    endpoint = split["endpoint"]
    texts = [t for texts in INTENTS.values() for t in texts] + orders
    assert send(endpoint, "ada-intents", (texts * 2)[:130]) == {200: 130}
    first = cycle(http, "ada", 1)
    assert first["status"] == "promoted", first["decision"]
    steps = [(s["step"], s["outcome"]) for s in first["steps"]]
    assert steps[:2] == [("data", "built"), ("chat", "waiting")]
    assert ("evaluate", "better") in steps and ("governance", "passed") in steps
    assert ("canary", "started") in steps and ("canary", "promote") in steps
    v2 = first["candidate_version"]
    assert http.get("/api/v1/models/persona-intents/versions/ada").json()["version"] == v2
    live = wait_for(
        lambda: (
            (d := http.get("/api/v1/deployments/ada-intents").json()["deployment"])["status"]
            == "running"
            and d
        )
    )
    assert live["traffic"] == [{"version": v2, "percent": 100}]
    start = first["evaluation"]["serving_accuracy"]
    assert first["evaluation"]["candidate_accuracy"] > start
    assert first["evaluation"]["p_value"] < 0.05
    assert http.post("/api/v1/deployments/ada-intents/stop").status_code == 200

    # Cycle 2, by the loop again: refunds arrive; no deployment now, so the alias moves.
    refunds = phrases(REFUND, 60, SEED + 1)
    batch = base("b2", 5, v2) + [
        interaction(f"b2-refund-{i}", text, "refund", v2, right=False)
        for i, text in enumerate(refunds)
    ]
    assert post(http, "ada", batch).status_code == 200
    second = cycle(http, "ada", 2)
    assert second["status"] == "promoted", second["decision"]
    assert ("canary", "skipped") in [(s["step"], s["outcome"]) for s in second["steps"]]
    evaluation = second["evaluation"]
    assert evaluation["candidate_accuracy"] >= start + 0.10, (start, evaluation)
    assert evaluation["candidate_only_right"] > evaluation["serving_only_right"]
    v3 = second["candidate_version"]

    # A poisoned cycle: the orders and refunds people sent before, sent again twice with
    # their labels swapped. It is started by hand (`personas learn`).
    manual = POLICY.replace("new_labels: 40", "new_labels: null")
    assert http.put("/api/v1/personas/ada/policy", json={"policy": manual}).status_code == 200
    poison = [
        interaction(f"p{copy}-{label}-{i}", text, label, v3, right=False)
        for copy in (1, 2)
        for label, texts in (("refund", orders), ("order", refunds))
        for i, text in enumerate(texts)
    ]
    assert post(http, "ada", poison).json()["added"] == 240
    plan = modelhub(srv, "personas", "learn", "ada", "--dry-run", "--json")
    assert json.loads(plan.stdout)["triggers"]["fired"] is None  # no trigger: by hand
    started = modelhub(srv, "personas", "learn", "ada", "--json")
    assert started.returncode == 0, started.stderr
    assert json.loads(started.stdout)["trigger"] == "manual"
    third = cycle(http, "ada", 3)
    assert third["status"] == "rejected", third["decision"]
    evaluation = third["evaluation"]
    # caught by the regression check on the held-out rows v3 was promoted on (cycles 1-2),
    # which no poisoned row is among: significantly worse there, not a chance shortfall
    assert evaluation["rejected_by"] == "regression", evaluation["regression"]
    regression = evaluation["regression"]
    assert regression["regressed"] and regression["p_value"] < evaluation["alpha"]
    assert regression["heldout"] == second["evaluation"]["heldout"]
    assert regression["serving_accuracy"] - regression["candidate_accuracy"] > 0.10
    assert third["decision"].startswith("rejected by the regression check")
    data = next(s for s in third["steps"] if s["step"] == "data")
    # every poisoned label contradicts an earlier one, but for the 5 orders x 2 copies
    # whose first copy carried an e-mail address (stored scrubbed: another message)
    assert data["details"]["contradicting"] == 230
    assert second["evaluation"]["regression"]["regressed"] is False
    assert http.get("/api/v1/models/persona-intents/versions/ada").json()["version"] == v3

    figures = {  # shown with -s; copied into the lane's figures
        f"cycle {c['number']}": {k: c["evaluation"][k] for k in ("heldout", "serving_accuracy",
                                 "candidate_accuracy", "candidate_only_right",
                                 "serving_only_right", "p_value", "regression")}
                                 | {"status": c["status"]}
        for c in (first, second, third)
    }  # fmt: skip
    print(json.dumps(figures))
    shown = modelhub(srv, "personas", "show", "ada", "--json")
    view = json.loads(shown.stdout)
    assert view["serving_version"] == v3 and view["last_cycle"]["number"] == 3
    assert view["counts"]["scrubbed"] == 5 and view["cycles_by_status"] == {
        "promoted": 2,
        "rejected": 1,
    }
    history = modelhub(srv, "personas", "history", "ada")
    assert history.returncode == 0 and "rejected" in history.stdout
    audit = http.get("/api/v1/audit", params={"target": "ada", "limit": 1000}).json()
    actions = {event["action"] for event in audit}
    assert {"personas.create", "personas.interactions", "personas.cycle_promoted"} <= actions
    text = http.get("/metrics").text
    assert metric(text, "modelhub_persona_scrubbed_total") == 5
    assert metric(text, 'modelhub_persona_cycles{status="rejected"}') == 1


def test_bad_input_is_refused_whole_and_the_server_keeps_running(
    srv: ServerProcess, http: httpx.Client, intents_v1: int
) -> None:
    made = http.post("/api/v1/personas", json={"name": "bea", "model": "persona-intents"})
    assert made.status_code == 201, made.text
    good = {"id": "g1", "message": "hi", "version": intents_v1, "feedback": {"label": "greeting"}}

    def refused(batch: Any, status: int, words: str, persona: str = "bea") -> None:
        reply = http.post(f"/api/v1/personas/{persona}/interactions", json=batch)
        assert reply.status_code == status, reply.text
        assert words in reply.json()["error"]["message"], reply.json()

    refused({"interactions": [good]}, 404, "persona 'nobody'", persona="nobody")
    refused({"interactions": [good, {**good, "id": "g2", "version": 99}]}, 404, "@99 does not")
    refused({"interactions": [good, {**good, "id": "g3", "feedback": {"thumbs": "sideways"}}]},
            400, "thumbs")  # fmt: skip
    refused({"interactions": [{**good, "feedback": {"rating": 7}}]}, 400, "rating")
    refused({"interactions": [{**good, "feedback": {"stars": 5}}]}, 400, "stars")
    refused({"interactions": [{**good, "version": 2**64}]}, 400, "version")
    refused({"interactions": [{**good, "model": "other"}]}, 400, "not one of persona bea")
    refused({"interactions": [{**good, "id": str(i)} for i in range(1001)]}, 400, "1000")
    deep = b'{"interactions": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    reply = http.post("/api/v1/personas/bea/interactions", content=deep)
    assert reply.status_code == 400 and "nested" in reply.json()["error"]["message"]
    assert http.get("/api/v1/personas/bea").json()["counts"]["interactions"] == 0  # nothing half

    once = post(http, "bea", [good, good])
    assert (once.json()["added"], once.json()["duplicates"]) == (1, 1)
    again = post(http, "bea", [good]).json()
    assert (again["added"], again["duplicates"]) == (0, 1)
    assert http.get("/api/v1/personas/bea").json()["counts"]["duplicates"] == 2

    for policy, words in (
        ("triggers: {whenever: 3}", "unknown trigger 'whenever'"),
        ("margin: 1.5", "margin"),
        ("holdout: 0.9", "holdout"),
        ("triggers: {schedule: soon}", "schedule"),
        ("- a list", "mapping"),
    ):
        reply = http.put("/api/v1/personas/bea/policy", json={"policy": policy})
        assert reply.status_code == 400 and words in reply.json()["error"]["message"], reply.text
    assert (
        http.post("/api/v1/personas", json={"name": "bea", "model": "persona-intents"}).status_code
        == 409
    )
    missing = http.post("/api/v1/personas", json={"name": "cy", "model": "no-such-model"})
    assert missing.status_code == 404
    http.post("/api/v1/auth/users", json={"name": "dev", "role": "developer"})
    token = http.post("/api/v1/auth/tokens", json={"user": "dev"}).json()["token"]
    other = http.post(
        "/api/v1/personas/bea/interactions",
        json={"interactions": [{**good, "id": "dev-1"}]},
        headers={"authorization": f"Bearer {token}"},
    )
    assert other.status_code == 403 and "only personas they own" in other.text
    assert http.get("/healthz").status_code == 200


def test_both_clients_keep_the_persona_contract(
    srv: ServerProcess, intents_v1: int, tmp_path: Path
) -> None:
    from modelhub.client.local import LocalClient
    from modelhub.settings import Settings

    with Client(srv.url, srv.token) as remote:
        made = remote.create_persona(PersonaRequest("cleo", "persona-intents", alias="cleo"))
        assert made.alias == "cleo"
        report = remote.add_interactions(
            "cleo", [InteractionIn(id="x", message="call +44 20 7946 0958", version=intents_v1)]
        )
        assert report.scrubbed == {"phone": 1} and report.labelled == 0
        with pytest.raises(NotFound):
            remote.show_persona("nobody")
        with pytest.raises(InvalidInput, match="unknown trigger"):
            remote.set_persona_policy("cleo", "triggers: {often: true}")
        assert remote.learn_plan("cleo").would.startswith("skip")
        assert "cleo" in [p.name for p in remote.list_personas()]

    from tests.integration.test_canary_analysis import write_table_onnx

    home = tmp_path / "local-home"
    with LocalClient(Settings(home=home), actor="dana") as local:
        with pytest.raises(NotFound):
            local.create_persona(PersonaRequest("dana", "nothing-here"))
        local.register(
            RegisterRequest(name="lookup", type="custom"),
            write_table_onnx(tmp_path / "v1" / "model.onnx", 4),
        )
        made = local.create_persona(PersonaRequest("dana", "lookup"))
        assert (made.alias, made.owner) == ("dana", "dana")
        batch = [
            InteractionIn(id=str(i), message=f"mail {i}@example.org", version=1,
                          feedback=Feedback(label="a" if i % 2 else "b"))
            for i in range(6)
        ]  # fmt: skip
        report = local.add_interactions("dana", [*batch, batch[0]])
        assert (report.added, report.duplicates, report.scrubbed) == (6, 1, {"email": 6})
        view = local.show_persona("dana")
        assert (view.serving_version, view.counts.labelled, view.counts.duplicates) == (1, 6, 1)
        plan = local.learn_plan("dana")
        assert plan.would.startswith("skip") and local.persona_history("dana") == []
        skipped = local.learn("dana")  # too few held out: recorded, nothing trained
        assert skipped.status.value == "skipped" and "held-out" in (skipped.decision or "")
        assert [c.number for c in local.persona_history("dana")] == [1]
        with pytest.raises(InvalidInput, match="margin"):
            local.set_persona_policy("dana", "margin: 2")
        local.set_persona_policy("dana", "triggers: {new_labels: null, schedule: 1s}")
        assert local.learn_plan("dana").triggers.needed is None
        due = wait_for(lambda: local.learn_plan("dana").triggers.schedule_due, timeout=10)
        assert due and local.learn_plan("dana").triggers.fired is None  # no labels since
        local.add_interactions("dana", [InteractionIn(id="n", message="x", version=1,
                                                       feedback=Feedback(label="a"))])  # fmt: skip
        assert local.learn_plan("dana").triggers.fired == "schedule"
        local.delete_persona("dana")
        assert local.list_personas() == []


CHAT_POLICY = """
triggers: {new_labels: null}
holdout: 0.3
min_heldout: 6
chat_min_pairs: 10
seed: 7
chat_hyperparameters: {beta: 0.1, learning_rate: 0.003, steps: 20, batch_size: 8}
canary: {percent: 50, min_requests: 15, max_duration: 10m}
"""
CHAT_MIN_SIDE = 20  # requests each version needs before the degradation tests run


def test_the_chat_model_learns_what_people_prefer_from_its_interactions(
    srv: ServerProcess, http: httpx.Client, intents_v1: int, tmp_path: Path
) -> None:
    """The chat model's part of a cycle on its own: a tiny char LM answers prompts through
    its serving runtime, a fixed simulated rater (tests/integration/
    test_preference_learning.py: how often an answer says "a") rates the answers, the
    cycle tunes the LM by DPO on the train-side pairs and, on held-out prompts never
    trained on, the candidate prefers the rater's choice more often than the serving
    version (Wilcoxon signed-rank test of the log-likelihood margins); the chat model
    is deployed, so the candidate goes through an automated canary on live requests
    before the persona's alias on the chat model moves. Seeded throughout."""
    import torch

    from tests.integration.governance_data import train
    from tests.integration.test_preference_learning import SMALL, WORDS, generate, reward

    rng = random.Random(SEED)
    lines = [" ".join(rng.choice(WORDS) for _ in range(8)) + "." for _ in range(300)]
    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text("".join(json.dumps({"text": line}) + "\n" for line in lines))
    prompts = sorted({f"{rng.choice(WORDS)} {rng.choice(WORDS)} " for _ in range(60)})[:30]
    with Client(srv.url, srv.token) as client:
        client.register_dataset(corpus, "chat-corpus")
        train(
            client,
            "name: chat-lm\ntype: pre_training\ntrainer: char_lm\ndatasets: [chat-corpus]\n"
            f"hyperparameters: {SMALL[:-1]}, steps: 100}}\nresult_model: {{name: persona-chat}}\n",
        )
        client.download("persona-chat@1", tmp_path / "v1")
        threads = torch.get_num_threads()
        torch.set_num_threads(1)  # a tiny model generates fastest on one thread
        try:
            answers = generate(tmp_path / "v1", prompts, range(4))
        finally:
            torch.set_num_threads(threads)
        policy = tmp_path / "chat.yaml"
        policy.write_text(CHAT_POLICY)
        made = modelhub(
            srv, "personas", "create", "eve", "--model", "persona-intents",
            "--chat-model", "persona-chat", "--policy", str(policy),
        )  # fmt: skip
        assert made.returncode == 0, made.stderr
        batch = [
            {"id": f"c-{p}-{k}", "message": prompt, "response": text, "model": "persona-chat",
             "version": 1, "feedback": {"rating": min(5, 1 + reward(text))}}
            for p, prompt in enumerate(prompts)
            for k, text in enumerate(answers[prompt])
        ]  # fmt: skip
        assert post(http, "eve", batch).json()["added"] == len(batch)
        deploy(http, model="persona-chat@1", name="eve-chat")
        plan = client.learn_plan("eve")
        assert plan.chat_pairs >= 10 and "tune persona-chat" in plan.would
        started = client.learn("eve")
        assert started.chat is not None and started.chat.status.value == "training"
        assert not started.intent  # no intent labels: only the chat model learns
    canary = in_canary(http, "eve", 1)
    assert canary["status"] == "canary", canary["decision"]
    split = settled(http, "eve-chat")
    assert len(split["traffic"]) == 2 and split["rollout"]["analysis"]["mode"] == "auto"
    # Each live request goes to either version at 50 %, and the analysis needs 20 on each
    # side: a fixed 50 would leave one side short about one run in eight. Traffic flows,
    # ten at a time, until the canary is decided.
    served: list[int] = []

    def decided_under_traffic() -> dict[str, Any] | None:
        start = 10 * len(served) % len(prompts)
        statuses = send(split["endpoint"], "eve-chat", (prompts * 2)[start : start + 10])
        served.append(sum(statuses.values()))
        assert statuses == {200: served[-1]}, statuses
        found = http.get("/api/v1/personas/eve/history").json()
        return found[0] if found and found[0]["finished_at"] is not None else None

    done: dict[str, Any] = wait_for(decided_under_traffic, timeout=180, interval=0.05)
    assert sum(served) >= 2 * CHAT_MIN_SIDE, served
    chat = done["chat"]
    assert done["status"] == "promoted" == chat["status"], (done["decision"], chat)
    assert chat["deployment"] == "eve-chat" and chat["decision"].startswith("promoted: ")
    assert [s["outcome"] for s in done["steps"] if s["step"] == "chat"] == [
        "started", "better", "canary", "promoted",
    ]  # fmt: skip
    evaluation = chat["evaluation"]
    assert evaluation["pairs"] == chat["heldout_pairs"] >= 6
    assert evaluation["p_value"] < evaluation["alpha"]
    assert evaluation["candidate_accuracy"] > evaluation["serving_accuracy"]
    assert evaluation["candidate_margin"] > evaluation["serving_margin"]
    v2 = chat["candidate_version"]
    assert http.get("/api/v1/models/persona-chat/versions/eve").json()["version"] == v2
    live = http.get("/api/v1/deployments/eve-chat").json()["deployment"]
    assert live["traffic"] == [{"version": v2, "percent": 100}]
    assert http.post("/api/v1/deployments/eve-chat/stop").status_code == 200
    with Client(srv.url, srv.token) as client:
        assert client.get(f"persona-chat@{v2}").lineage.base_version == "persona-chat@1"
    print(json.dumps({"chat": evaluation}))
