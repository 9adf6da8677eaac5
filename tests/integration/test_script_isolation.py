"""A script pipeline run through the real engine: the worker holds the server's
environment, the script it starts sees none of it and reaches none of the home."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from modelhub.domain.runs import RunStatus
from tests.integration.training_engine import (
    ADMIN,
    engine,
    finished,
    tabular_spec,
    write_blobs,
)
from tests.sandbox_probe import PROBE_HELPERS
from tests.stores import stores_of

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux only")

SECRET = "mh_adm1n_s3cret"

PROBE = (
    """
import json
import os
from pathlib import Path

import numpy as np
from safetensors.numpy import save_file

"""
    + PROBE_HELPERS
    + """

def train(ctx):
    home = Path(os.getcwd()).parent.parent  # ctx.run_dir is /proc/self/cwd
    found = {
        "admin_token": attempt(read(home / "admin.token")),
        "server_key": attempt(read(home / "server.key")),
        "database": attempt(read(home / "modelhub.db")),
        "blob": attempt(read(ctx.hp("blob", ""))),
        "artifacts": attempt(lambda: os.listdir(home / "artifacts")),
        "other_run": attempt(read(home / "runs" / "999" / "logs.txt")),
        "dataset_rows": len(ctx.dataset().read_text().splitlines()),
        "cwd": os.getcwd(),
        "environ": sorted(os.environ),
        "environ_text": " ".join(os.environ.values()),
    }
    # Its dataset is a read-only private copy: writing it is refused, and the stored
    # blob stays intact either way.
    found["dataset_write"] = attempt(lambda: open(ctx.dataset(), "a").write("tampered"))
    (ctx.run_dir / "found.json").write_text(json.dumps(found))
    save_file({"w": np.zeros(1, np.float32)}, str(ctx.output_dir / "model.safetensors"))
    # Last try: make the output a link to the home, to have it registered as a model.
    os.rename("output", "output.real")
    os.symlink(str(home), "output")
    return {"probed": 1.0}
"""
)


def test_a_script_run_reaches_nothing_of_the_server(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MODELHUB_TOKEN", SECRET)  # what the server's workers inherit
    with engine(tmp_path) as services:
        home = services.settings.home
        (home / "admin.token").write_text(SECRET)
        (home / "runs" / "999").mkdir(parents=True)
        (home / "runs" / "999" / "logs.txt").write_text("another run")
        dataset = services.datasets.register(ADMIN, write_blobs(tmp_path / "b.csv", 20), "blobs")
        with stores_of(services) as stores, stores.artifacts.local_path(dataset.digest) as blob:
            stored = blob.read_bytes()
            spec = tabular_spec(
                "probe",
                trainer="script",
                script="{path: probe.py}",
                hyperparameters=json.dumps({"blob": str(blob)}),
            )
            services.training.create_pipeline(ADMIN, spec, {"probe.py": PROBE.encode()})
            scheduler = services.training.build_scheduler()
            run = services.training.start(ADMIN, "probe")
            run = finished(services, run.id, scheduler=scheduler)
            assert blob.read_bytes() == stored
        assert run.status is RunStatus.FAILED, "a link to the home was registered"
        assert services.registry.model_owner("probe-model") is None  # nothing registered
        run_dir = services.training.run_dir(run.id)
        found = json.loads((run_dir / "found.json").read_text())
        for target in ("admin_token", "server_key", "database", "blob", "artifacts", "other_run"):
            assert found[target] == "PermissionError", target
        assert found["dataset_rows"] == 21
        assert found["dataset_write"] == "PermissionError"
        assert found["cwd"] == str(run_dir)
        assert [n for n in found["environ"] if n.startswith("MODELHUB_")] == ["MODELHUB_RUN_JOB"]
        assert SECRET not in found["environ_text"]
        assert "sandbox: Landlock" in (run_dir / "logs.txt").read_text()
