"""Replica processes as the supervisor starts them: warm spares and the endpoint socket.

Real processes on loopback; no server around them."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest

from modelhub.serving.host import ServedModel, ServedVersion
from modelhub.serving.launcher import ReplicaLauncher, ReplicaSettings
from modelhub.serving.replicas import ReplicaGroup
from tests.unit.serving.builders import FEATURES


@pytest.fixture
def launcher(tmp_path: Path) -> Iterator[ReplicaLauncher]:
    launcher = ReplicaLauncher(ReplicaSettings(workdir=tmp_path, warm_spares=1, ready_timeout=60))
    yield launcher
    launcher.close()


def test_spares_never_exceed_the_setting_however_often_they_are_refilled(
    launcher: ReplicaLauncher,
) -> None:
    # A group of three replicas refills once per replica launched, before any spare
    # it asked for has even started: those starting count, or each call adds one.
    for _ in range(3):
        launcher.fill()
    launcher.settle()
    assert len(launcher.spares()) == 1
    assert len(list(launcher.spares_dir.glob("*.log"))) == 1


def _tabular_body() -> dict[str, object]:
    width = len(FEATURES)
    return {
        "inputs": [
            {"name": "input", "shape": [1, width], "datatype": "FP32", "data": [0.0] * width}
        ]
    }


def test_a_spare_still_importing_is_taken_and_refilled_once_its_replica_is_ready(
    tmp_path: Path, tabular_folder: Path
) -> None:
    # Just after the server started its spare is still importing torch and friends:
    # the first deployment takes it rather than starting a process of its own.
    settings = ReplicaSettings(
        workdir=tmp_path,
        warm_spares=1,
        ready_timeout=60,
        warm_imports=("torch", "onnxruntime", "sentence_transformers"),
    )
    launcher = ReplicaLauncher(settings)
    models = [ServedModel("m", (ServedVersion(1, tabular_folder, 100),), preload=True)]
    group = ReplicaGroup("m", models, launcher)
    try:
        launcher.fill()
        launcher.settle()
        [spare] = launcher.spares()
        group.start(1)
        assert [replica.pid for replica in group.replicas] == [spare]
        reply = httpx.post(f"{group.endpoint}/v2/models/m/infer", json=_tabular_body(), timeout=10)
        assert reply.status_code == 200, reply.text
        launcher.settle()  # the spare it took is replaced once the replica is ready
        assert len(launcher.spares()) == 1 and launcher.spares() != [spare]
    finally:
        group.stop()
        launcher.close()


def _refused(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(2)
        return probe.connect_ex(("127.0.0.1", port)) != 0


def test_the_endpoint_refuses_connections_until_a_replica_can_answer_them(
    launcher: ReplicaLauncher, tabular_folder: Path
) -> None:
    models = [ServedModel("m", (ServedVersion(1, tabular_folder, 100),), preload=True)]
    group = ReplicaGroup("m", models, launcher)
    try:
        # Bound, so the port is ours, but nobody would answer: refuse, never hold.
        assert _refused(group.port)
        group.start(1)
        reply = httpx.post(f"{group.endpoint}/v2/models/m/infer", json=_tabular_body(), timeout=10)
        assert reply.status_code == 200, reply.text
        assert np.asarray(reply.json()["outputs"][0]["data"]).size > 0
    finally:
        group.stop()
