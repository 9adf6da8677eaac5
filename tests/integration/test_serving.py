"""Deployments served by real replica processes, over real HTTP on loopback: the
protocol, bad input, a failing model, rollouts under load, canaries, kill -9, damaged
artifacts, the production gate, usage records and a server restart."""

from __future__ import annotations

import json
import os
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from modelhub.client import Client, DeployRequest, RegisterRequest
from tests.integration.conftest import ServerProcess, make_server, running
from tests.integration.serving_helpers import (
    Load,
    body_bytes,
    deploy,
    oip_body,
    reference_logits,
    settled,
    wait_for,
    write_model_a,
    write_raising_onnx,
)
from tests.stores import stores_of

MAX_BODY = 64 * 1024


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    import torch

    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("serving-models")
    return {
        "a1": write_model_a(root / "a1", seed=0),
        "a2": write_model_a(root / "a2", seed=1),
        "raising": write_raising_onnx(root / "raising" / "model.onnx").parent,
    }


@pytest.fixture(scope="module")
def srv(
    tmp_path_factory: pytest.TempPathFactory, models: dict[str, Path]
) -> Iterator[ServerProcess]:
    server = make_server(
        tmp_path_factory.mktemp("serving"),
        MODELHUB_SERVE_USAGE_SECONDS="0.3",
        MODELHUB_SERVE_HEALTH_SECONDS="0.2",
        MODELHUB_SERVE_MAX_BODY_BYTES=str(MAX_BODY),
        MODELHUB_SERVE_DRAIN_SECONDS="10",
    )
    with running(server):
        with Client(server.url, server.token) as client:
            client.register(RegisterRequest(name="intents", type="classification"), models["a1"])
            client.register(RegisterRequest(name="intents"), models["a2"])
            client.register(RegisterRequest(name="lookup", type="custom"), models["raising"])
        yield server


@pytest.fixture
def http(srv: ServerProcess) -> Iterator[httpx.Client]:
    with srv.http(timeout=60) as client:
        yield client


def _stop(http: httpx.Client, name: str) -> None:
    response = http.post(f"/api/v1/deployments/{name}/stop")
    assert response.status_code == 200, response.text


def test_a_deployment_answers_the_open_inference_protocol(
    http: httpx.Client, models: dict[str, Path]
) -> None:
    deployment = deploy(http, model="intents@1", environment="staging", name="oip")
    assert deployment["status"] == "running", deployment
    assert len(deployment["health"]) == 1 and deployment["health"][0]["ready"]
    endpoint = deployment["endpoint"]
    rows = np.random.default_rng(3).normal(size=(3, 32)).astype(np.float32)
    expected = reference_logits(models["a1"], rows)

    direct = httpx.post(f"{endpoint}/v2/models/oip/infer", json=oip_body(rows))
    through_platform = http.post("/v2/models/oip/infer", json=oip_body(rows))
    for reply in (direct, through_platform):
        assert reply.status_code == 200, reply.text
        outputs = {o["name"]: o for o in reply.json()["outputs"]}
        assert reply.json()["model_version"] == "1"
        assert outputs["logits"]["shape"] == [3, 10]
        got = np.array(outputs["logits"]["data"], np.float32).reshape(3, 10)
        np.testing.assert_allclose(got, expected, atol=1e-5)
        assert outputs["label"]["data"] == [f"c{i}" for i in expected.argmax(axis=1)]

    pinned = httpx.post(f"{endpoint}/v2/models/oip/versions/1/infer", json=oip_body(rows[:1]))
    assert pinned.status_code == 200
    metadata = httpx.get(f"{endpoint}/v2/models/oip").json()
    assert metadata["inputs"] == [{"name": "input", "datatype": "FP32", "shape": [-1, 32]}]
    assert httpx.get(f"{endpoint}/v2/models/oip/ready").json() == {"name": "oip", "ready": True}
    assert httpx.get(f"{endpoint}/v2/health/live").status_code == 200
    assert httpx.get(f"{endpoint}/v2/health/ready").json() == {"ready": True}
    assert http.get("/v2/models/oip").json()["name"] == "oip"
    # The platform route also finds a deployment by its model's name.
    assert http.post("/v2/models/intents/infer", json=oip_body(rows[:1])).status_code == 200
    metrics = httpx.get(f"{endpoint}/metrics").text
    labels = 'deployment="oip",le="1",model="intents",version="1"'
    assert f"modelhub_inference_batch_rows_bucket{{{labels}}}" in metrics
    assert "modelhub_inference_requests_total" in metrics
    _stop(http, "oip")
    with pytest.raises(httpx.ConnectError):
        httpx.post(f"{endpoint}/v2/models/oip/infer", json=oip_body(rows))


def test_bad_requests_get_errors_that_name_the_problem(http: httpx.Client) -> None:
    deployment = deploy(http, model="intents@1", name="strict")
    url = f"{deployment['endpoint']}/v2/models/strict/infer"

    def error(reply: httpx.Response, status: int) -> dict[str, Any]:
        assert reply.status_code == status, reply.text
        body: dict[str, Any] = reply.json()["error"]
        return body

    malformed = error(httpx.post(url, content=b'{"inputs": [', headers=_json()), 400)
    assert "JSON" in malformed["message"]
    shape = error(httpx.post(url, json=oip_body(np.zeros((1, 31)))), 400)
    assert "shape" in shape["details"]["field"]
    body = oip_body(np.zeros((1, 32)))
    body["inputs"][0]["datatype"] = "INT64"
    assert "datatype" in error(httpx.post(url, json=body), 400)["details"]["field"]
    body = oip_body(np.zeros((1, 32)), name="features")
    assert "features" in error(httpx.post(url, json=body), 400)["message"]
    assert "input" in error(httpx.post(url, json={"inputs": []}), 400)["message"]
    error(httpx.post(f"{deployment['endpoint']}/v2/models/nope/infer", json=body), 404)
    error(httpx.post(f"{deployment['endpoint']}/v2/models/strict/versions/9/infer", json=body), 404)
    error(http.post("/v2/models/nope/infer", json=body), 404)
    big = oip_body(np.zeros((MAX_BODY // 32, 32)))
    assert error(httpx.post(url, json=big), 413)["code"] == "payload_too_large"
    assert error(http.post("/v2/models/strict/infer", json=big), 413)["code"] == "payload_too_large"
    # After all that, the deployment still answers.
    assert httpx.post(url, json=oip_body(np.ones((2, 32)))).status_code == 200
    _stop(http, "strict")


def test_hostile_bodies_on_the_platform_routes_are_400s(http: httpx.Client) -> None:
    deep = b"[" * 30_000 + b"]" * 30_000  # under MAX_BODY, far past any recursion limit
    nested = b'{"model": "strict", "input": ' + b"[" * 65 + b"]" * 65 + b"}"
    for path in ("/v1/embeddings", "/v1/completions"):
        for raw in (deep, nested):
            reply = http.post(path, content=raw, headers=_json())
            assert reply.status_code == 400, reply.text
            assert reply.json()["error"]["details"]["field"] == "body"


def _json() -> dict[str, str]:
    return {"content-type": "application/json"}


def test_a_model_that_raises_fails_only_that_request(http: httpx.Client) -> None:
    deployment = deploy(http, model="lookup@1", name="lookup")
    url = f"{deployment['endpoint']}/v2/models/lookup/infer"

    def body(index: int) -> dict[str, Any]:
        return {"inputs": [{"name": "index", "shape": [1], "datatype": "INT64", "data": [index]}]}

    good = Load(url, body_bytes(body(3)), threads=3)
    with good:
        for _ in range(20):
            bad = httpx.post(url, json=body(99))
            assert bad.status_code == 500, bad.text
            assert bad.json()["error"]["code"] == "inference_failed"
        wait_for(lambda: good.ok > 20, timeout=30)
    assert good.failed == 0, good.failures[:3]
    assert httpx.post(url, json=body(4)).json()["outputs"][0]["data"] == [4.0]

    def errors_recorded() -> bool:
        usage = http.get("/api/v1/deployments/lookup").json()["usage"]
        return bool(usage) and usage[0]["errors"] == 20

    wait_for(errors_recorded, timeout=10)
    _stop(http, "lookup")


def test_a_rolling_update_and_a_rollback_under_load_fail_no_request(http: httpx.Client) -> None:
    deployment = deploy(http, model="intents@1", name="rolling", replicas=2)
    url = f"{deployment['endpoint']}/v2/models/rolling/infer"
    with Load(url, body_bytes(oip_body(np.ones((1, 32)))), threads=4) as load:
        wait_for(lambda: load.versions["1"] > 20, timeout=30)
        assert http.post("/api/v1/deployments/rolling/update", json={"version": "2"}).is_success
        updated = settled(http, "rolling")
        assert updated["status"] == "running" and updated["traffic"] == [
            {"version": 2, "percent": 100}
        ]
        assert updated["previous_version"] == 1
        wait_for(lambda: load.versions["2"] > 20, timeout=30)
        assert http.post("/api/v1/deployments/rolling/rollback").is_success
        rolled = settled(http, "rolling")
        assert rolled["traffic"] == [{"version": 1, "percent": 100}]
        ones_before_rollback = load.versions["1"]
        wait_for(lambda: load.versions["1"] > ones_before_rollback + 20, timeout=30)
    assert load.failed == 0, load.failures[:3]
    assert load.total > 100
    _stop(http, "rolling")


def test_a_canary_takes_its_share_then_is_promoted(http: httpx.Client) -> None:
    deployment = deploy(http, model="intents@1", name="canary")
    url = f"{deployment['endpoint']}/v2/models/canary/infer"
    reply = http.post("/api/v1/deployments/canary/update", json={"version": "2", "canary": 30})
    assert reply.status_code == 202, reply.text
    split = settled(http, "canary")
    assert split["status"] == "updating"
    assert split["traffic"] == [{"version": 1, "percent": 70}, {"version": 2, "percent": 30}]
    body = oip_body(np.ones((1, 32)))
    with httpx.Client() as client:
        versions = [client.post(url, json=body).json()["model_version"] for _ in range(400)]
    canary = versions.count("2")
    assert 80 < canary < 160, canary  # 120 expected; 4 standard deviations either side
    illegal = http.post("/api/v1/deployments/canary/update", json={"version": "1"})
    assert illegal.status_code == 409
    assert http.post("/api/v1/deployments/canary/promote").status_code == 202
    promoted = wait_for(
        lambda: (
            (d := http.get("/api/v1/deployments/canary").json()["deployment"])["status"]
            == "running"
            and d
        )
    )
    assert promoted["traffic"] == [{"version": 2, "percent": 100}]
    with httpx.Client() as client:
        assert {client.post(url, json=body).json()["model_version"] for _ in range(30)} == {"2"}
    _stop(http, "canary")


def test_a_replica_killed_under_load_is_restarted_and_few_requests_fail(
    http: httpx.Client,
) -> None:
    deployment = deploy(http, model="intents@1", name="sturdy", replicas=2)
    url = f"{deployment['endpoint']}/v2/models/sturdy/infer"
    victim = deployment["health"][0]["pid"]
    with Load(url, body_bytes(oip_body(np.ones((1, 32)))), threads=4) as load:
        wait_for(lambda: load.total > 100, timeout=30)
        os.kill(victim, signal.SIGKILL)

        def back_to_two() -> dict[str, Any] | None:
            found: dict[str, Any] = http.get("/api/v1/deployments/sturdy").json()["deployment"]
            ready = [h for h in found["health"] if h["ready"] and h["pid"] != victim]
            return found if len(ready) == 2 else None

        healed = wait_for(back_to_two, timeout=60)
        served_when_healed = load.total
        wait_for(lambda: load.total > served_when_healed + 100, timeout=30)
    assert healed["health"][0]["restarts"] >= 1
    assert load.total > 500
    assert load.failed / load.total < 0.01, (load.failed, load.total, load.failures[:3])
    _stop(http, "sturdy")


def test_a_damaged_artifact_fails_the_deployment_and_serves_nothing(
    srv: ServerProcess, http: httpx.Client, tmp_path: Path
) -> None:
    with Client(srv.url, srv.token) as client:
        version = client.register(
            RegisterRequest(name="damaged", type="classification"),
            write_model_a(tmp_path / "damaged", seed=7),
        )
    weights = next(f for f in version.files if f.path == "model.safetensors")
    blob = srv.home / "artifacts" / "blobs" / weights.digest[:2] / weights.digest
    data = bytearray(blob.read_bytes())
    data[-1] ^= 0xFF
    blob.chmod(0o644)
    blob.write_bytes(bytes(data))
    failed = deploy(http, model="damaged@1")
    assert failed["status"] == "failed"
    assert "integrity check" in failed["error"] and "corrupted" in failed["error"]
    assert failed["endpoint"] is None
    assert http.post("/v2/models/damaged/infer", json=oip_body(np.ones((1, 32)))).status_code in (
        404,
        503,
    )
    assert not (srv.home / "serving" / "models" / version.digest).exists()


def test_a_model_that_cannot_load_fails_alone(
    srv: ServerProcess, http: httpx.Client, tmp_path: Path
) -> None:
    healthy = deploy(http, model="intents@1", name="healthy")
    folder = write_model_a(tmp_path / "broken", seed=2)
    config = json.loads((folder / "config.json").read_text())
    config["hidden"] = [65]  # the weights hold 64: loading them fails
    (folder / "config.json").write_text(json.dumps(config))
    with Client(srv.url, srv.token) as client:
        client.register(RegisterRequest(name="broken", type="classification"), folder)
    broken = deploy(http, model="broken@1")
    assert broken["status"] == "failed"
    assert "failed to load" in broken["error"] and "broken" in broken["error"]
    reply = httpx.post(
        f"{healthy['endpoint']}/v2/models/healthy/infer", json=oip_body(np.ones((1, 32)))
    )
    assert reply.status_code == 200
    _stop(http, "healthy")


def test_production_serves_approved_versions_unless_an_admin_overrides(
    srv: ServerProcess, http: httpx.Client
) -> None:
    refused = http.post(
        "/api/v1/deployments", json={"model": "intents@1", "environment": "production"}
    )
    assert refused.status_code == 409, refused.text
    assert "not approved" in refused.json()["error"]["message"]
    overridden = http.post(
        "/api/v1/deployments",
        json={"model": "intents@1", "environment": "production", "override_approval": True},
    )
    assert overridden.status_code == 202, overridden.text
    assert overridden.json()["name"] == "intents" and overridden.json()["approval_override"]
    events = http.get("/api/v1/audit", params={"action": "deployments.create"}).json()
    assert any(e["details"].get("approval_override") == "pending" for e in events), events
    assert settled(http, "intents")["status"] == "running"
    _stop(http, "intents")
    with Client(srv.url, srv.token) as client:
        client.reject("intents", 2, "not good enough")
    rejected = http.post(
        "/api/v1/deployments",
        json={"model": "intents@2", "environment": "production", "override_approval": True},
    )
    assert rejected.status_code == 409
    assert "rejected" in rejected.json()["error"]["message"]


def test_usage_is_recorded_per_deployment_and_version(http: httpx.Client) -> None:
    deployment = deploy(http, model="intents@1", name="counted")
    url = f"{deployment['endpoint']}/v2/models/counted/infer"
    with httpx.Client() as client:
        for i in range(25):
            # No proxy is trusted by default: the header does not make 25 callers of one.
            forged = {"x-forwarded-for": f"203.0.113.{i}"}
            response = client.post(url, json=oip_body(np.ones((2, 32))), headers=forged)
            assert response.status_code == 200
        assert client.post(url, json={"inputs": []}).status_code == 400
    assert http.post("/v2/models/counted/infer", json=oip_body(np.ones((1, 32)))).is_success

    def recorded() -> dict[str, Any] | None:
        usage = http.get("/api/v1/deployments/counted").json()["usage"]
        return usage[0] if usage and usage[0]["requests"] == 27 else None

    usage = wait_for(recorded, timeout=10)
    assert usage["version"] == 1 and usage["errors"] == 1 and usage["rows"] == 51
    assert sum(usage["latency_buckets"]) == 27 and usage["latency_ms_sum"] > 0
    assert usage["active_callers"] == 2  # this test's host, and admin through the platform
    assert usage["last_used"] is not None
    metrics = http.get("/metrics").text
    labels = 'deployment="counted",model="intents",version="1"'
    assert f"modelhub_inference_requests_total{{{labels}}} 27.0" in metrics
    assert 'modelhub_deployment_replicas{deployment="counted"} 1.0' in metrics
    assert f"modelhub_inference_batch_rows_count{{{labels}}}" in metrics
    _stop(http, "counted")


def test_a_server_restart_brings_deployments_back_on_their_port(
    tmp_path: Path, models: dict[str, Path]
) -> None:
    server = make_server(tmp_path, MODELHUB_SERVE_HEALTH_SECONDS="0.2")
    with running(server):
        with Client(server.url, server.token) as client:
            client.register(RegisterRequest(name="again", type="classification"), models["a1"])
        with server.http(timeout=60) as http:
            first = deploy(http, model="again@1", name="again")
            assert first["status"] == "running", first
    url = f"{first['endpoint']}/v2/models/again/infer"
    with pytest.raises(httpx.ConnectError):
        httpx.post(url, json=oip_body(np.ones((1, 32))))
    with running(server), server.http(timeout=60) as http:

        def answers() -> bool:
            try:
                return httpx.post(url, json=oip_body(np.ones((1, 32)))).status_code == 200
            except httpx.ConnectError:
                return False

        wait_for(answers, timeout=60)
        back = http.get("/api/v1/deployments/again").json()["deployment"]
        assert back["status"] == "running" and back["endpoint"] == first["endpoint"]


def test_changes_recorded_with_no_server_are_carried_out_when_one_starts(
    tmp_path: Path, models: dict[str, Path]
) -> None:
    from modelhub.client.local import LocalClient
    from modelhub.settings import Settings

    server = make_server(tmp_path, MODELHUB_SERVE_HEALTH_SECONDS="0.2")
    local = LocalClient(Settings(home=server.home), actor="ada")
    try:
        local.register(RegisterRequest(name="offline", type="classification"), models["a1"])
        local.register(RegisterRequest(name="offline"), models["a2"])
        recorded = local.deploy(DeployRequest(ref="offline@1", name="offline"))
        assert recorded.status.value == "deploying"
        failed = local.deploy(DeployRequest(ref="offline@2", name="doomed", replicas=1))
        with stores_of(local.services) as stores:  # a replica that failed while no server ran
            stores.metadata.update_deployment("doomed", {"status": "failed", "error": "x"})
        assert local.stop_deployment(failed.name).status.value == "stopped"
    finally:
        local.close()
    with running(server), server.http(timeout=60) as http:
        served = settled(http, "offline")
        assert served["status"] == "running" and served["traffic"][0]["version"] == 1
        # An update recorded while no server runs is finished by the next server.
        assert http.post("/api/v1/deployments/offline/update", json={"version": "2"}).is_success
        assert settled(http, "offline")["traffic"] == [{"version": 2, "percent": 100}]
    local = LocalClient(Settings(home=server.home), actor="ada")
    try:
        changed = local.rollback_deployment("offline")
        assert changed.status.value == "updating" and changed.rollout is not None
    finally:
        local.close()
    with running(server), server.http(timeout=60) as http:
        back = settled(http, "offline")
        assert back["traffic"] == [{"version": 1, "percent": 100}] and back["rollout"] is None

        def serving() -> bool:  # health says when this server's replica answers
            health = http.get("/api/v1/deployments/offline").json()["deployment"]["health"]
            return any(h["ready"] for h in health)

        wait_for(serving, timeout=60)
        reply = httpx.post(
            f"{back['endpoint']}/v2/models/offline/infer", json=oip_body(np.ones((1, 32)))
        )
        assert reply.json()["model_version"] == "1"


def test_a_served_version_cannot_be_deleted(http: httpx.Client) -> None:
    deploy(http, model="intents@1", name="kept")
    refused = http.delete("/api/v1/models/intents/versions/1")
    assert refused.status_code == 409, refused.text
    assert "deployment kept" in refused.json()["error"]["message"]
    assert http.delete("/api/v1/models/intents").status_code == 409
    _stop(http, "kept")


def test_the_platform_route_fails_over_when_a_replica_dies(
    http: httpx.Client, models: dict[str, Path]
) -> None:
    deployment = deploy(http, model="intents@1", name="failover", replicas=2)
    body = oip_body(np.ones((1, 32)))
    expected = reference_logits(models["a1"], np.ones((1, 32), np.float32))

    def answers(replies: list[httpx.Response]) -> None:
        assert [r.status_code for r in replies] == [200] * len(replies), replies[0].text
        for reply in replies:
            assert reply.json()["model_version"] == "1"
            logits = {o["name"]: o for o in reply.json()["outputs"]}["logits"]["data"]
            np.testing.assert_allclose(logits, expected.ravel(), atol=1e-5)

    # Both replicas now hold pooled connections from the platform.
    answers([http.post("/v2/models/failover/infer", json=body) for _ in range(10)])
    os.kill(deployment["health"][0]["pid"], signal.SIGKILL)
    answers([http.post("/v2/models/failover/infer", json=body) for _ in range(40)])
    _stop(http, "failover")
