"""Drift over a real server: the REST routes, the HTTP client and the CLI against it.

One module-scoped server (cheap): a tabular version registered as the trainer writes
it, a reference uploaded from a CSV, files compared, and bad input refused with
nothing stored.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from modelhub.client.http import Client
from modelhub.domain.drift import DriftReport, ReferenceStatus
from modelhub.errors import InvalidInput, NotFound
from modelhub.services.registry import RegisterRequest
from tests.integration.conftest import Cli, ServerProcess, clean_env
from tests.unit.services.test_drift_service import data, tabular_folder, write_csv


@pytest.fixture(scope="module")
def churn(
    shared_server: ServerProcess, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Client]:
    folder = tmp_path_factory.mktemp("drift")
    with Client(shared_server.url, token=shared_server.token) as client:
        client.register(
            RegisterRequest(name="churn", type="classification"), tabular_folder(folder / "m")
        )
        yield client


def cli(srv: ServerProcess, cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return Cli("server", clean_env(MODELHUB_URL=srv.url, MODELHUB_TOKEN=srv.token), cwd).run(
        *args, ok=False
    )


def test_reference_and_checks_over_the_cli(
    shared_server: ServerProcess, churn: Client, tmp_path: Path
) -> None:
    rng = np.random.default_rng(10)
    eval_csv = write_csv(tmp_path / "eval.csv", data(rng, 600))
    done = cli(
        shared_server, tmp_path, "drift", "reference", "churn@1", "--data", str(eval_csv), "--json"
    )
    assert done.returncode == 0, done.stderr
    made = json.loads(done.stdout)
    assert made["status"] == "ready" and made["rows"] == 600 and made["source"] == "eval.csv"

    shown = cli(shared_server, tmp_path, "drift", "reference", "churn@1")
    assert shown.returncode == 0 and "eval.csv" in shown.stdout and "600 rows" in shown.stdout

    live = write_csv(tmp_path / "live.csv", data(rng, 300, shift=0.7))
    done = cli(shared_server, tmp_path, "drift", "check", "churn@1", "--data", str(live), "--json")
    assert done.returncode == 0, done.stderr
    report = DriftReport.model_validate_json(done.stdout)
    assert report.drifted and report.drifted_features == ["b"]
    table = cli(shared_server, tmp_path, "drift", "check", "churn@1", "--data", str(live))
    assert "drift in b" in table.stdout and "ks" in table.stdout

    # The live window reads the prediction log: no deployment logged anything, so every
    # feature is skipped for want of live values and nothing is called drift.
    window = cli(shared_server, tmp_path, "drift", "check", "churn@1", "--since", "1h", "--json")
    assert window.returncode == 0, window.stderr
    empty = DriftReport.model_validate_json(window.stdout)
    assert empty.live_rows == 0 and not empty.drifted and empty.drifted_features == []


def test_the_http_client_and_bad_input(churn: Client, tmp_path: Path) -> None:
    rng = np.random.default_rng(11)
    churn.set_drift_reference("churn", 1, write_csv(tmp_path / "ref.csv", data(rng, 500)))
    before = churn.get_drift_reference("churn", 1)
    assert before.status is ReferenceStatus.READY

    wrong = data(rng, 100)
    wrong["extra"] = wrong.pop("a")
    with pytest.raises(InvalidInput, match="missing a; unexpected extra"):
        churn.set_drift_reference("churn", 1, write_csv(tmp_path / "wrong.csv", wrong))
    assert churn.get_drift_reference("churn", 1) == before  # unchanged

    same = churn.compare_drift("churn", 1, write_csv(tmp_path / "same.csv", data(rng, 300)))
    assert not same.drifted and same.live_rows == 300
    with pytest.raises(NotFound, match="churn@2"):
        churn.get_drift_reference("churn", 2)
    with pytest.raises(InvalidInput, match="since"):
        churn.drift("churn", 1, since="forever")
    assert churn.drift("churn", 1, since="1h").live_rows == 0
