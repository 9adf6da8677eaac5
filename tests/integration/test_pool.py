"""The shared model pool on a real server: deployments placed on two pool replicas,
loaded on demand and evicted least-recently-used under a small budget, answering on
both routes, counted, rolled out and back; bad placements refused with nothing
written; kill -9 of a pool replica costs at most 503s, then everything answers."""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from modelhub.client import Client, RegisterRequest
from modelhub.client.local import LocalClient
from modelhub.settings import Settings
from tests.integration.conftest import ServerProcess, make_server, running
from tests.integration.serving_helpers import deploy, settled, wait_for

WIDTH = 1000  # outputs per model: 4 x 1000 float weights, 16 KB of ONNX
BUDGET = "40KiB"  # two small models per pool replica


def write_linear_onnx(folder: Path, seed: int, width: int = WIDTH) -> tuple[Path, np.ndarray]:
    """y = x @ W: an ONNX graph with a (4, width) weight; returns the folder and W."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    weights = np.random.default_rng(seed).normal(size=(4, width)).astype(np.float32)
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["y"])],
        "linear",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", width])],
        initializer=[numpy_helper.from_array(weights, "w")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    folder.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(folder / "model.onnx"))
    return folder, weights


ROW = np.array([[1.0, 2.0, 3.0, 4.0]], np.float32)
BODY = {"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP32", "data": ROW[0].tolist()}]}


def _first(reply: httpx.Response) -> float:
    assert reply.status_code == 200, reply.text
    return float(reply.json()["outputs"][0]["data"][0])


@pytest.fixture(scope="module")
def weights(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("pool-models")
    found: dict[str, Any] = {}
    for i in range(2):
        found[f"tiny{i}"] = write_linear_onnx(root / f"tiny{i}", seed=i)
    found["tiny0-v2"] = write_linear_onnx(root / "tiny0-v2", seed=100)
    found["big"] = write_linear_onnx(root / "big", seed=9, width=5000)  # 80 KB > 40 KiB
    return found


@pytest.fixture(scope="module")
def srv(
    tmp_path_factory: pytest.TempPathFactory, weights: dict[str, Any]
) -> Iterator[ServerProcess]:
    server = make_server(
        tmp_path_factory.mktemp("pool"),
        MODELHUB_POOL_REPLICAS="2",
        MODELHUB_POOL_MEMORY=BUDGET,
        MODELHUB_SERVE_USAGE_SECONDS="0.3",
        MODELHUB_SERVE_HEALTH_SECONDS="0.2",
    )
    with running(server):
        with Client(server.url, server.token) as client:
            for i in range(2):
                client.register(
                    RegisterRequest(name=f"tiny{i}", type="custom"), weights[f"tiny{i}"][0]
                )
            client.register(RegisterRequest(name="tiny0"), weights["tiny0-v2"][0])
            client.register(RegisterRequest(name="big", type="custom"), weights["big"][0])
        yield server


@pytest.fixture
def http(srv: ServerProcess) -> Iterator[httpx.Client]:
    with srv.http(timeout=60) as client:
        yield client


def _expected(weights: dict[str, Any], key: str) -> float:
    return float((ROW @ weights[key][1])[0, 0])


def test_deployments_share_the_pool_load_on_demand_and_are_evicted_lru(
    srv: ServerProcess, http: httpx.Client, weights: dict[str, Any]
) -> None:
    # Five deployments of two models: each deployment is its own loaded model.
    placed = [deploy(http, model=f"tiny{i % 2}@1", name=f"p{i}", pool="shared") for i in range(5)]
    assert {d["status"] for d in placed} == {"running"}
    assert {d["pool"] for d in placed} == {"shared"}
    assert {d["replicas"] for d in placed} == {0}
    endpoint = placed[0]["endpoint"]
    assert {d["endpoint"] for d in placed} == {endpoint}  # one endpoint, named paths
    for i in range(5):
        expected = _expected(weights, f"tiny{i % 2}")
        direct = httpx.post(f"{endpoint}/v2/models/p{i}/infer", json=BODY, timeout=30)
        platform = http.post(f"/v2/models/p{i}/infer", json=BODY)
        assert _first(direct) == pytest.approx(expected, rel=1e-5)
        assert _first(platform) == pytest.approx(expected, rel=1e-5)

    pool = http.get("/api/v1/pools/shared").json()
    assert pool["deployments"] == 5 and pool["running"]
    assert len(pool["replicas"]) == 2
    # Ten requests over five 16 KB models on replicas that keep 40 KiB: some evicted,
    # no replica above its budget, and each replica's loaded models are pool ones.
    assert pool["evictions"] >= 1, pool
    for replica in pool["replicas"]:
        assert replica["memory_bytes"] <= 40 * 1024, replica
        assert all(m.split("@")[0] in {f"p{i}" for i in range(5)} for m in replica["loaded"])
    assert pool["requests"] >= 10 and pool["loads"] >= 5
    assert 0 <= pool["hit_rate"] < 1
    assert [p["name"] for p in http.get("/api/v1/pools").json()] == ["shared"]

    def counted() -> dict[str, Any] | None:
        usage = http.get("/api/v1/deployments/p3").json()["usage"]
        return usage[0] if usage and usage[0]["requests"] >= 2 else None

    assert wait_for(counted, timeout=20)["version"] == 1  # usage counted per deployment

    # A canary on the pool, then a rollback: the deployment keeps its name and route.
    reply = http.post("/api/v1/deployments/p0/update", json={"version": "2", "canary": 50})
    assert reply.status_code == 202, reply.text
    assert settled(http, "p0")["traffic"] == [
        {"version": 1, "percent": 50},
        {"version": 2, "percent": 50},
    ]
    answers = {_first(http.post("/v2/models/p0/infer", json=BODY)) for _ in range(40)}
    assert len(answers) == 2
    assert http.post("/api/v1/deployments/p0/rollback").status_code == 202

    def rolled_back() -> bool:
        found = http.get("/api/v1/deployments/p0").json()["deployment"]
        return bool(found["traffic"] == [{"version": 1, "percent": 100}])

    wait_for(rolled_back, timeout=30)
    only = [_first(http.post("/v2/models/p0/infer", json=BODY)) for _ in range(10)]
    assert only == [pytest.approx(_expected(weights, "tiny0"), rel=1e-5)] * 10

    # Stopped: gone from the pool, the others still answer there.
    assert http.post("/api/v1/deployments/p4/stop").status_code == 200
    gone = httpx.post(f"{endpoint}/v2/models/p4/infer", json=BODY, timeout=30)
    assert gone.status_code == 404
    assert _first(httpx.post(f"{endpoint}/v2/models/p3/infer", json=BODY, timeout=30))
    assert http.get("/api/v1/pools/shared").json()["deployments"] == 4

    # The local client reads the same records (no replicas of its own to report).
    with LocalClient(Settings(home=srv.home), actor="ada") as local:
        seen = local.get_pool("shared")
    assert seen.deployments == 4 and not seen.running


def test_bad_placements_are_refused_and_write_nothing(http: httpx.Client) -> None:
    def refused(body: dict[str, Any], status: int) -> dict[str, Any]:
        reply = http.post("/api/v1/deployments", json=body)
        assert reply.status_code == status, reply.text
        error: dict[str, Any] = reply.json()["error"]
        assert http.get(f"/api/v1/deployments/{body['name']}").status_code == 404
        return error

    too_big = refused({"model": "big@1", "name": "big-one", "pool": "shared"}, 400)
    assert "too large for pool 'shared'" in too_big["message"]
    assert too_big["details"]["budget"] == 40 * 1024
    nowhere = refused({"model": "tiny1@1", "name": "nowhere", "pool": "elsewhere"}, 404)
    assert "no pool named 'elsewhere'" in nowhere["message"]
    both = refused({"model": "tiny1@1", "name": "both", "pool": "shared", "replicas": 2}, 400)
    assert "no replicas of its own" in both["message"]
    limited = refused(
        {"model": "tiny1@1", "name": "limited", "pool": "shared", "resources": {"cpus": 1}}, 400
    )
    assert limited["details"]["field"] == "resources"
    long = refused({"model": "tiny1@1", "name": "long", "pool": "x" * 65}, 400)
    assert "pool" in long["message"]
    assert http.get("/api/v1/pools/elsewhere").status_code == 404
    assert http.get("/api/v1/pools/..%2F..%2Fetc").status_code == 404

    placed = deploy(http, model="tiny1@1", name="fixed", pool="shared")
    assert placed["status"] == "running"
    scaled = http.post("/api/v1/deployments/fixed/scale", json={"replicas": 3})
    assert scaled.status_code == 400 and "pool_replicas" in scaled.json()["error"]["message"]
    assert http.post("/api/v1/deployments/fixed/stop").status_code == 200


def test_the_platform_route_keeps_a_deployment_on_one_replica(http: httpx.Client) -> None:
    deploy(http, model="tiny1@1", name="homed", pool="shared")
    for _ in range(12):
        assert _first(http.post("/v2/models/homed/infer", json=BODY))
    holders = [
        r for r in http.get("/api/v1/pools/shared").json()["replicas"] if "homed@1" in r["loaded"]
    ]
    assert len(holders) == 1, holders
    assert http.post("/api/v1/deployments/homed/stop").status_code == 200


def test_a_pool_replica_killed_costs_at_most_503s_then_all_answer(http: httpx.Client) -> None:
    names = [f"k{i}" for i in range(3)]
    for i, name in enumerate(names):
        deploy(http, model=f"tiny{i % 2}@1", name=name, pool="shared")
    statuses: list[int] = []
    stop = threading.Event()

    def hammer() -> None:
        with httpx.Client(base_url=str(http.base_url), headers=dict(http.headers)) as c:
            i = 0
            while not stop.is_set():
                try:
                    reply = c.post(f"/v2/models/{names[i % 3]}/infer", json=BODY, timeout=30)
                    statuses.append(reply.status_code)
                except httpx.HTTPError:
                    statuses.append(-1)
                i += 1

    before = http.get("/api/v1/pools/shared").json()
    victim = before["replicas"][0]["pid"]
    workers = [threading.Thread(target=hammer, daemon=True) for _ in range(3)]
    for worker in workers:
        worker.start()
    try:
        wait_for(lambda: len(statuses) > 50, timeout=30)
        os.kill(victim, signal.SIGKILL)

        def healed() -> bool:
            pool = http.get("/api/v1/pools/shared").json()
            pids = [r["pid"] for r in pool["replicas"] if r["ready"]]
            return len(pids) == 2 and victim not in pids and pool["restarts"] >= 1

        wait_for(healed, timeout=60)
        after_heal = len(statuses)
        wait_for(lambda: len(statuses) > after_heal + 60, timeout=30)
    finally:
        stop.set()
        for worker in workers:
            worker.join(timeout=30)
    assert set(statuses) <= {200, 503}, sorted(set(statuses))
    assert statuses[-30:] == [200] * 30
    assert statuses.count(503) < 20, statuses.count(503)
    for name in names:
        assert _first(http.post(f"/v2/models/{name}/infer", json=BODY))
        assert http.post(f"/api/v1/deployments/{name}/stop").status_code == 200
