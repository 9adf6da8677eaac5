"""`engine: ray` at `pipelines create`: refused, with the other spec problems, where Ray
is not installed or no cluster is set; accepted where both are."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from modelhub.domain.auth import Caller, Role
from modelhub.errors import InvalidInput
from modelhub.services import Services, build_services
from modelhub.settings import Settings

ADMIN = Caller(name="alice", role=Role.ADMIN)
SPEC = """
name: ray-check
type: pre_training
trainer: tabular_classifier
datasets: [blobs]
engine: ray
result_model: {name: ray-check-model}
"""


def _problems(refused: InvalidInput) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for error in refused.details["errors"]:
        found.setdefault(error["field"], []).append(error["message"])
    return found


def _with_blobs(services: Services, tmp_path: Path) -> None:
    data = tmp_path / "blobs.csv"
    data.write_text("a,b,label\n" + "".join(f"{i},{-i},{i % 2}\n" for i in range(20)))
    services.datasets.register(ADMIN, data, "blobs")


def test_engine_ray_without_a_cluster_is_refused_with_the_other_problems(
    services: Services,
) -> None:
    with pytest.raises(InvalidInput) as refused:
        services.training.create_pipeline(ADMIN, SPEC)
    problems = _problems(refused.value)
    assert "datasets[0]" in problems  # blobs was never registered: reported alongside
    (engine,) = problems["engine"]
    assert "MODELHUB_TRAIN_RAY_ADDRESS" in engine and "ray://head:10001" in engine
    assert services.training.list_pipelines(ADMIN) == []


def test_engine_ray_with_ray_and_a_cluster_set_is_accepted(tmp_path: Path) -> None:
    with socket.socket() as probe:  # a port nothing listens on: the cluster is down now
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    address = f"ray://127.0.0.1:{closed}"
    services = build_services(Settings(home=tmp_path / "home", train_ray_address=address))
    try:
        _with_blobs(services, tmp_path)
        created = services.training.create_pipeline(ADMIN, SPEC)
        assert created.pipeline.spec["engine"] == "ray"
    finally:
        services.close()


PROBE = """
import json, sys
from pathlib import Path
from modelhub.domain.auth import Caller, Role
from modelhub.errors import InvalidInput
from modelhub.services import build_services
from modelhub.settings import Settings

home = Path(sys.argv[1])
services = build_services(Settings(home=home, train_ray_address="127.0.0.1:6379"))
admin = Caller(name="alice", role=Role.ADMIN)
data = home.parent / "blobs.csv"
data.write_text("a,b,label\\n" + "".join(f"{i},{-i},{i % 2}\\n" for i in range(20)))
services.datasets.register(admin, data, "blobs")
try:
    services.training.create_pipeline(admin, sys.stdin.read())
except InvalidInput as exc:
    stored = [p.name for p in services.training.list_pipelines(admin)]
    print(json.dumps({"errors": exc.details["errors"], "stored": stored}))
"""


def test_engine_ray_without_the_extra_names_the_extra_to_install(tmp_path: Path) -> None:
    shadow = tmp_path / "shadow" / "ray"
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text('raise ImportError("No module named ray (test)")\n')
    answer = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(PROBE), str(tmp_path / "home")],
        input=SPEC,
        capture_output=True,
        text=True,
        env={"PYTHONPATH": str(shadow.parent), "PATH": "/usr/bin:/bin"},
        timeout=120,
        check=True,
    )
    refused = json.loads(answer.stdout)
    assert refused["stored"] == []
    (error,) = refused["errors"]
    assert error["field"] == "engine"
    assert "pip install 'modelhub[ray]'" in error["message"]
