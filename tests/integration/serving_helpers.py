"""Model folders, deployment waits and a load generator for the serving tests."""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np

FEATURES_A = [f"f{i}" for i in range(32)]
CLASSES_A = [f"c{i}" for i in range(10)]


def write_model_a(folder: Path, seed: int = 0) -> Path:
    """The benchmark's model A (32 -> 64 -> 10 MLP) as the tabular trainer writes it."""
    import torch

    from modelhub.networks import tabular

    folder.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    model = tabular.build_model(32, [64], 10)
    tabular.write_output(
        folder, model, FEATURES_A, "label", list(CLASSES_A), [64], np.zeros(32), np.ones(32)
    )
    return folder


def reference_logits(folder: Path, rows: np.ndarray) -> np.ndarray:
    import torch

    from modelhub.training.trainers import tabular

    predictor = tabular.load(folder)
    with torch.no_grad():
        return np.asarray(predictor.model(torch.from_numpy(rows.astype(np.float32))).numpy())


def write_raising_onnx(path: Path) -> Path:
    """An ONNX graph that gathers from a 10-element table by the request's index: an index
    past the table makes ONNX Runtime raise, so one request can make the model fail."""
    import onnx
    from onnx import TensorProto, helper

    table = helper.make_tensor("table", TensorProto.FLOAT, [10], [float(i) for i in range(10)])
    graph = helper.make_graph(
        [helper.make_node("Gather", ["table", "index"], ["value"], axis=0)],
        "gather",
        [helper.make_tensor_value_info("index", TensorProto.INT64, ["n"])],
        [helper.make_tensor_value_info("value", TensorProto.FLOAT, ["n"])],
        initializer=[table],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(path))
    return path


def oip_body(rows: np.ndarray, name: str = "input") -> dict[str, Any]:
    return {
        "inputs": [
            {
                "name": name,
                "shape": list(rows.shape),
                "datatype": "FP32",
                "data": rows.astype(np.float32).ravel().tolist(),
            }
        ]
    }


def settled(http: httpx.Client, name: str, timeout: float = 90.0) -> dict[str, Any]:
    """The deployment once it is no longer deploying (or loading an update)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found: dict[str, Any] = http.get(f"/api/v1/deployments/{name}").json()["deployment"]
        status = found["status"]
        if status in ("running", "failed", "stopped"):
            return found
        if status == "updating" and len(found["traffic"]) == 2:
            return found
        time.sleep(0.05)
    raise AssertionError(f"deployment {name} did not settle: {found}")


def deploy(http: httpx.Client, **body: Any) -> dict[str, Any]:
    response = http.post("/api/v1/deployments", json=body)
    assert response.status_code == 202, response.text
    return settled(http, response.json()["name"])


def wait_for(check: Any, timeout: float = 30.0, interval: float = 0.1) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"condition not met in {timeout}s")


@dataclass
class Load:
    """Threads that POST the same body over keep-alive connections until stopped."""

    url: str
    body: bytes
    threads: int = 4
    ok: int = 0
    failed: int = 0
    versions: Counter[str] = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _workers: list[threading.Thread] = field(default_factory=list)

    def __enter__(self) -> Load:
        for _ in range(self.threads):
            worker = threading.Thread(target=self._run, daemon=True)
            worker.start()
            self._workers.append(worker)
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for worker in self._workers:
            worker.join(timeout=30)

    @property
    def total(self) -> int:
        return self.ok + self.failed

    def _run(self) -> None:
        headers = {"content-type": "application/json"}
        with httpx.Client(timeout=30, trust_env=False) as client:
            while not self._stop.is_set():
                try:
                    reply = client.post(self.url, content=self.body, headers=headers)
                    good = reply.status_code == 200
                    version = reply.json().get("model_version") if good else None
                    problem = None if good else f"{reply.status_code} {reply.text[:200]}"
                except httpx.HTTPError as exc:
                    good, version, problem = False, None, f"{type(exc).__name__}: {exc}"
                with self._lock:
                    if good:
                        self.ok += 1
                        self.versions[str(version)] += 1
                    else:
                        self.failed += 1
                        self.failures.append(str(problem))


def body_bytes(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload).encode()
