"""The registry tab's import "from" choice and the version page's Export, on the
dashboard's server: the same service methods as the API's imports and exports."""

from __future__ import annotations

import io
import tarfile

from modelhub.client import Client
from tests.dashboard.conftest import Session
from tests.integration.conftest import ServerProcess
from tests.unit.interop.layouts import write_mlflow_onnx


def test_an_mlflow_folder_imports_from_the_form_and_exports_from_the_page(
    dashboard_server: ServerProcess, admin_session: Session
) -> None:
    folder = write_mlflow_onnx(dashboard_server.home / "imports" / "mlflow-gemm")
    form = admin_session.get("/models/import").text
    assert '<option value="mlflow"' in form
    answer = admin_session.post(
        "/models/import",
        {"path": str(folder), "name": "dash-gemm", "type": "custom", "from_format": "mlflow"},
    )
    assert answer.status_code == 303, answer.text[:500]
    assert answer.headers["location"] == "/models/dash-gemm/versions/1"
    with Client(dashboard_server.url, token=dashboard_server.token) as client:
        version = client.get("dash-gemm@1")
    assert version.inspection["imported"]["run_id"] == "0a1b2c3d4e5f60718293a4b5c6d7e8f9"

    page = admin_session.get("/models/dash-gemm/versions/1").text
    assert 'id="export-form"' in page and '<option value="mlflow">' in page
    exported = admin_session.get("/models/dash-gemm/versions/1/export", params={"to": "mlflow"})
    assert exported.status_code == 200
    with tarfile.open(fileobj=io.BytesIO(exported.content)) as tar:
        assert {"MLmodel", "model.onnx", "requirements.txt"} <= set(tar.getnames())
    refused = admin_session.get("/models/dash-gemm/versions/1/export", params={"to": "keras"})
    assert refused.status_code == 400
    assert "keras" in refused.text


def test_an_unknown_flavor_is_said_on_the_form_and_registers_nothing(
    dashboard_server: ServerProcess, admin_session: Session
) -> None:
    folder = write_mlflow_onnx(dashboard_server.home / "imports" / "mlflow-sklearn")
    (folder / "MLmodel").write_text("flavors:\n  sklearn: {pickled_model: model.pkl}\n")
    answer = admin_session.post(
        "/models/import",
        {"path": str(folder), "name": "dash-sk", "type": "custom", "from_format": "mlflow"},
    )
    assert answer.status_code == 400
    assert "flavor sklearn" in answer.text
    with dashboard_server.http(timeout=30) as http:
        assert http.get("/api/v1/models/dash-sk").status_code == 404
