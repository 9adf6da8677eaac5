"""A deployment with `resources.gpus` serves on CUDA. Skipped where no CUDA device is.

CI has no GPU; this runs on a machine that has one (see docs/scaling.md, resources).
"""

from __future__ import annotations

from pathlib import Path

import httpx
import numpy as np
import pytest

torch = pytest.importorskip("torch")

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device here")


def test_a_replica_given_a_gpu_serves_the_tabular_model_on_cuda(tmp_path: Path) -> None:
    from modelhub.client import Client, RegisterRequest
    from tests.integration.conftest import make_server, running
    from tests.integration.serving_helpers import (
        deploy,
        oip_body,
        reference_logits,
        write_model_a,
    )

    folder = write_model_a(tmp_path / "model")
    server = make_server(tmp_path, MODELHUB_SERVE_WARM_IMPORTS="torch")
    with running(server):
        with Client(server.url, server.token) as client:
            client.register(RegisterRequest(name="on-gpu", type="classification"), folder)
        with server.http(timeout=120) as http:
            found = deploy(http, model="on-gpu", resources={"gpus": 1, "cpus": 1})
            assert found["status"] == "running", found
            rows = np.random.default_rng(0).normal(size=(4, 32)).astype(np.float32)
            url = f"{found['endpoint']}/v2/models/{found['name']}/infer"
            answer = httpx.post(url, json=oip_body(rows), timeout=30)
            assert answer.status_code == 200, answer.text
            logits = next(o for o in answer.json()["outputs"] if o["name"] == "logits")
            got = np.array(logits["data"], dtype=np.float32).reshape(4, 10)
            np.testing.assert_allclose(got, reference_logits(folder, rows), atol=1e-4)
            logs = "".join(p.read_text() for p in (server.home / "serving").rglob("replica-*.log"))
            assert "serving on CUDA, GPUs 0" in logs, logs[-2000:]
