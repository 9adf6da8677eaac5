"""`modelhub optimize` and `deploy --optimize` on a real server, over a tabular classifier
trained by the test: ONNX and int8 versions registered with their lineage and figures, a
result over the tolerance refused unless forced, bad inputs refused with nothing
registered, and a deployment serving the fastest variant within tolerance.

One server and one trained model serve the whole module (the lane's ~30 s budget).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest

from modelhub.client import Client
from modelhub.domain.optimisation import Method, OptimisationReport, Target
from modelhub.errors import InvalidInput, NotFound
from modelhub.services.deployments import DeployRequest
from modelhub.services.optimisation import OptimiseRequest
from modelhub.services.registry import RegisterRequest
from tests.integration.conftest import Cli, ServerProcess, clean_env, make_server, running
from tests.integration.governance_data import train
from tests.integration.serving_helpers import oip_body, settled, write_raising_onnx
from tests.integration.training_engine import write_blobs

CSRF_IN_PAGE = re.compile(r'"X-CSRF-Token": "([0-9a-f]{64})"')
MODEL = "blobs-opt"
ROWS = 300  # 60 validation rows at the default split of 0.2
SPEC = (
    "name: blobs-opt\ntype: pre_training\ntrainer: tabular_classifier\n"
    "datasets: [blobs]\nmax_epochs: 2\nseed: 3\n"
    "hyperparameters: {batch_size: 16, hidden: 16}\nresources: {cpus: 1, memory: 2GiB}\n"
    f"result_model: {{name: {MODEL}, type: classification}}\n"
)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    srv = make_server(tmp_path_factory.mktemp("optimise"))
    with running(srv):
        yield srv


@pytest.fixture(scope="module")
def client(server: ServerProcess) -> Iterator[Client]:
    with Client(server.url, token=server.token) as opened:
        yield opened


@pytest.fixture(scope="module")
def trained(client: Client, tmp_path_factory: pytest.TempPathFactory) -> str:
    data = write_blobs(tmp_path_factory.mktemp("blobs") / "blobs.csv", rows=ROWS, seed=5)
    client.register_dataset(data, "blobs")
    train(client, SPEC)
    return f"{MODEL}@1"


@pytest.fixture
def cli(server: ServerProcess, tmp_path: Path) -> Cli:
    return Cli("server", clean_env(MODELHUB_URL=server.url, MODELHUB_TOKEN=server.token), tmp_path)


def versions(client: Client) -> int:
    return len(client.versions(MODEL))


def test_onnx_export_through_the_cli_registers_a_measured_version(
    trained: str, cli: Cli, client: Client
) -> None:
    shown = cli.json("optimize", trained, "--to", "onnx")
    report = OptimisationReport.model_validate(shown)
    assert report.method is Method.ONNX and report.within_tolerance
    assert report.before.rows == report.after.rows == ROWS // 5
    assert "validation split of blobs@1 (seed 3, 20%)" in report.measured_on
    # The same fp32 network in another runtime: the same answers on every row.
    assert report.accuracy_drop == pytest.approx(0.0, abs=1e-9)
    # The split rebuilt is the trainer's own: the same accuracy it measured there.
    assert report.before.value == pytest.approx(client.get(trained).metrics["val_accuracy"])
    assert report.registered_version is not None
    made = client.get(f"{MODEL}@{report.registered_version}")
    assert made.lineage.optimised_from == trained
    assert made.lineage.optimisation["method"] == "onnx"
    assert made.lineage.source_run == client.get(trained).lineage.source_run
    assert made.metrics["p50_ms"] == report.after.p50_ms
    assert made.metrics["size_bytes"] == report.after.size_bytes
    assert made.metrics["accuracy_drop"] == report.accuracy_drop


def test_int8_through_the_api_is_a_quantised_version(trained: str, client: Client) -> None:
    report = client.optimize(OptimiseRequest(trained, Target.INT8, max_accuracy_drop=0.05))
    assert report.method is Method.INT8_DYNAMIC
    assert report.accuracy_drop == pytest.approx(report.before.value - report.after.value)
    assert report.accuracy_drop <= 0.05 and report.registered_version is not None
    made = client.get(f"{MODEL}@{report.registered_version}")
    assert made.quantization == "int8-dynamic"
    assert made.lineage.optimised_from == trained
    assert made.metrics["max_accuracy_drop"] == 0.05


def write_rows(path: Path, rows: np.ndarray, columns: str = "a,b") -> Path:
    lines = [columns] + [",".join(f"{v:.4f}" for v in row) for row in rows]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_a_result_over_the_tolerance_is_refused_unless_forced(
    trained: str, client: Client, tmp_path: Path
) -> None:
    """Calibrating on rows a thousand times the data's scale leaves int8 too coarse
    for the real rows: a real, measured accuracy drop."""
    wild = write_rows(tmp_path / "wild.csv", np.random.default_rng(0).normal(0, 3000, (64, 2)))
    before = versions(client)
    refused = client.optimize(OptimiseRequest(trained, Target.INT8), calibration=wild)
    assert refused.method is Method.INT8_STATIC
    assert refused.accuracy_drop > 0.01
    assert not refused.within_tolerance and refused.registered_version is None
    assert "not registered" in refused.reason
    assert versions(client) == before
    forced = client.optimize(OptimiseRequest(trained, Target.INT8, force=True), calibration=wild)
    assert forced.forced and forced.registered_version == before + 1
    made = client.get(f"{MODEL}@{forced.registered_version}")
    assert made.quantization == "int8-static"
    assert made.lineage.optimisation["calibration_rows"] == 64


def test_bad_requests_are_clear_errors_and_register_nothing(
    trained: str, client: Client, server: ServerProcess, tmp_path: Path
) -> None:
    before = versions(client)
    wrong = write_rows(tmp_path / "wrong.csv", np.zeros((4, 2)), columns="x,y")
    with pytest.raises(InvalidInput, match=r"lacks column.*a, b"):
        client.optimize(OptimiseRequest(trained, Target.INT8), calibration=wrong)
    with pytest.raises(InvalidInput, match="lacks column"):
        client.optimize(OptimiseRequest(trained, Target.ONNX), eval_data=wrong)
    with pytest.raises(InvalidInput, match="max-accuracy-drop"):
        client.optimize(OptimiseRequest(trained, Target.INT8, max_accuracy_drop=1.5))
    with pytest.raises(InvalidInput, match="fp16 needs a GPU"):
        client.optimize(OptimiseRequest(trained, Target.FP16))
    with pytest.raises(InvalidInput, match="calibrates int8"):
        client.optimize(OptimiseRequest(trained, Target.ONNX), calibration=wrong)
    with pytest.raises(NotFound):
        client.optimize(OptimiseRequest(f"{MODEL}@99", Target.ONNX))
    with server.http() as http:
        unknown = http.post(f"/api/v1/models/{MODEL}/versions/1/optimize", json={"to": "int4"})
        assert unknown.status_code == 400 and "'onnx', 'int8' or 'fp16'" in unknown.text
    assert versions(client) == before
    # Not a trainer's output: refused, naming what it is.
    graph = write_raising_onnx(tmp_path / "gather.onnx")
    client.register(RegisterRequest(name="plain-graph", type="classification"), graph)
    with pytest.raises(InvalidInput, match="it is a onnx model"):
        client.optimize(OptimiseRequest("plain-graph@1", Target.INT8))
    assert len(client.versions("plain-graph")) == 1


def test_deploy_optimize_serves_the_fastest_variant_within_tolerance(
    trained: str, client: Client, server: ServerProcess
) -> None:
    source = client.get(trained)
    variants = [v for v in client.versions(MODEL) if v.lineage.optimised_from == trained]
    assert len(variants) >= 3  # onnx, int8 dynamic, a forced static int8 over tolerance
    eligible = [v for v in variants if v.metrics["accuracy_drop"] <= v.metrics["max_accuracy_drop"]]
    fastest = min(eligible, key=lambda v: (v.metrics["p50_ms"], v.version))
    reply = client.deploy(DeployRequest(ref=trained, name="blobs-fast", optimize=True))
    choice = reply.optimisation
    assert choice is not None and choice.chosen == fastest.version
    assert reply.versions == [fastest.version]
    assert "lowest p50 latency" in choice.reason
    verdicts = {v.version: v.qualifies for v in choice.considered}
    over = [v.version for v in variants if v not in eligible]
    assert over and not any(verdicts[v] for v in over)
    with server.http() as http:
        assert settled(http, "blobs-fast")["status"] == "running"
        # The request the source takes: two features, one row.
        answer = http.post("/v2/models/blobs-fast/infer", json=oip_body(np.array([[3.0, -3.0]])))
        assert answer.status_code == 200, answer.text
        outputs = {o["name"]: o["data"] for o in answer.json()["outputs"]}
        assert outputs["label"] == ["1"]
        assert answer.json()["model_version"] == str(fastest.version)
        http.post("/api/v1/deployments/blobs-fast/stop")
    assert source.version == 1


def test_the_dashboard_optimises_from_the_version_page(
    trained: str, client: Client, server: ServerProcess
) -> None:
    """The registry tab's Optimise form calls the same service as the API route."""
    with httpx.Client(base_url=server.url, timeout=60, follow_redirects=False) as http:
        assert http.post("/signin", data={"token": server.token}).status_code == 303
        shown = http.get(f"/models/{MODEL}/versions/1")
        assert 'id="optimise-form"' in shown.text
        found = CSRF_IN_PAGE.search(http.get("/account").text)
        assert found is not None
        csrf = found.group(1)
        before = versions(client)
        made = http.post(
            f"/models/{MODEL}/versions/1/optimize",
            data={"csrf": csrf, "to": "onnx", "max_accuracy_drop": "0.5"},
        )
        assert made.status_code == 303, made.text[:500]
        assert made.headers["location"] == f"/models/{MODEL}/versions/{before + 1}"
        assert client.get(f"{MODEL}@{before + 1}").lineage.optimised_from == trained
        refused = http.post(
            f"/models/{MODEL}/versions/1/optimize", data={"csrf": csrf, "to": "fp16"}
        )
        assert refused.status_code == 400 and "fp16 needs a GPU" in refused.text
        assert versions(client) == before + 1
