"""The monitor report end to end on a real server: route, HTTP client, CLI, permissions.

The model here is never deployed, so the report's sections are empty and its notes say
why; what it must do here is answer every role that may read the model, refuse bad
input by name, and render the same record through the route, the client and the CLI.
A report over real traffic is tests/integration/test_monitoring_end_to_end.py.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from modelhub.client.contract import ModelhubClient
from modelhub.client.http import Client
from modelhub.client.local import LocalClient
from modelhub.domain.monitor_report import MonitorReport
from modelhub.errors import InvalidInput, NotFound
from modelhub.services.registry import RegisterRequest
from modelhub.settings import Settings
from tests.integration.conftest import Cli, ServerProcess, clean_env
from tests.unit.inspect.builders import save_numpy_safetensors


@pytest.fixture(scope="module")
def served(
    shared_server: ServerProcess, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[ServerProcess, str]]:
    """The server with a model `intents` and a viewer's read-only token."""
    weights = save_numpy_safetensors(
        tmp_path_factory.mktemp("weights") / "m.safetensors", {"w": np.ones((2, 2), np.float32)}
    )
    with Client(shared_server.url, token=shared_server.token) as admin:
        admin.register(RegisterRequest(name="intents", type="classification"), weights)
        admin.add_user("vic", "viewer")
        _, token = admin.create_token(user="vic", scope="read")
    yield shared_server, token


def test_a_viewer_reads_the_report_over_http(served: tuple[ServerProcess, str]) -> None:
    server, viewer_token = served
    with Client(server.url, token=viewer_token) as viewer:
        report = viewer.monitor("intents", since="2h")
    assert isinstance(report, MonitorReport)
    assert (report.model, report.since, report.health.score) == ("intents", "2h", 100)
    assert (report.end - report.start).total_seconds() == 7200
    assert "performance" in report.notes and "deployments" in report.notes


def test_the_route_refuses_bad_input_by_name(served: tuple[ServerProcess, str]) -> None:
    server, _ = served
    with server.http() as http:
        assert http.get("/api/v1/monitoring/models/intents").json()["since"] == "24h"
        missing = http.get("/api/v1/monitoring/models/nope")
        assert missing.status_code == 404 and "nope" in missing.json()["error"]["message"]
        bad = http.get("/api/v1/monitoring/models/intents", params={"since": "yesterday"})
        assert bad.status_code == 400 and bad.json()["error"]["details"]["field"] == "since"
        assert (
            http.get("/api/v1/monitoring/models/intents", params={"version": 7}).status_code == 404
        )
        anonymous = http.get("/api/v1/monitoring/models/intents", headers={"authorization": ""})
        assert anonymous.status_code == 401
    with Client(server.url, token=server.token) as admin:
        with pytest.raises(NotFound):
            admin.monitor("intents", version=7)
        with pytest.raises(InvalidInput):
            admin.monitor("intents", since="100d")


def test_the_cli_against_the_server(served: tuple[ServerProcess, str], tmp_path: Path) -> None:
    server, viewer_token = served
    cli = Cli("server", clean_env(MODELHUB_URL=server.url, MODELHUB_TOKEN=viewer_token), tmp_path)
    report = cli.json("monitor", "intents", "--since", "1h", "--report", "page.html")
    assert report["model"] == "intents" and report["since"] == "1h"
    assert "<h1>intents</h1>" in (tmp_path / "page.html").read_text()


def test_both_clients_give_the_same_report_and_errors(
    served: tuple[ServerProcess, str], tmp_path: Path
) -> None:
    server, _ = served
    weights = save_numpy_safetensors(tmp_path / "m.safetensors", {"w": np.ones((2, 2), np.float32)})
    with LocalClient(Settings(home=tmp_path / "home"), actor="ada") as local:
        local.register(RegisterRequest(name="intents", type="classification"), weights)
        with Client(server.url, token=server.token) as http:
            clients: list[ModelhubClient] = [http, local]
            timeless = {"start", "end", "generated_at"}
            reports = [c.monitor("intents", "6h", 1).model_dump(exclude=timeless) for c in clients]
            # Storage is charged from each version's registration to the report: the two
            # homes registered seconds apart, so their cost differs by those seconds alone.
            costs = [report.pop("cost") for report in reports]
            assert [(c["currency"], c["total"] > 0) for c in costs] == [("USD", True)] * 2
            for report in reports:
                report["trends"] = [t for t in report["trends"] if t["metric"] != "cost"]
            assert reports[0] == reports[1]
            for client in clients:
                with pytest.raises(NotFound):
                    client.monitor("missing")
                with pytest.raises(InvalidInput):
                    client.monitor("intents", since="0m")
