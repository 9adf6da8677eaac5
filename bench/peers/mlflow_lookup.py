"""MLflow reference for lookup_100k; runs in bench/.venv-mlflow, never the project venv.

Fills an MLflow registry (SQLite) with N versions laid out like the modelhub
store (models of 50 versions, tag team=tK on every version, alias `champion` on
one version per model), then times get-by-alias and a name + tag search, in
process (MlflowClient on sqlite:///) and over REST (raw GETs on one keep-alive
session against `mlflow server` on the same database). Prints one JSON line.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchlib import emit, free_port, log, median, rounded, server_process, time_calls

PER_MODEL = 50
TEAMS = 5


def model_name(i: int) -> str:
    return f"model-{i:05d}"


def fill(client: Any, versions: int) -> tuple[str, str]:
    """Create the registry; return (model to query, team it belongs to)."""
    models = max(1, versions // PER_MODEL)
    for m in range(models):
        name = model_name(m)
        team = f"t{m % TEAMS}"
        client.create_registered_model(name, tags={"team": team})
        for _ in range(PER_MODEL):
            client.create_model_version(
                name, source=f"s3://bench/{name}/weights", tags={"team": team}
            )
        client.set_registered_model_alias(name, "champion", str(PER_MODEL // 2))
    target = min(models - 1, 3)
    return model_name(target), f"t{target % TEAMS}"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--versions", type=int, default=500)
    parser.add_argument("--iterations", type=int, default=500)
    parser.add_argument("--rest-iterations", type=int, default=200)
    args = parser.parse_args()

    import mlflow
    import requests
    from mlflow.tracking import MlflowClient

    result: dict[str, Any] = {"peer": "mlflow", "mlflow_version": mlflow.__version__}
    with tempfile.TemporaryDirectory(prefix="bench-mlflow-") as tmp:
        root = Path(tmp)
        uri = f"sqlite:///{root / 'registry.db'}"
        client = MlflowClient(tracking_uri=uri, registry_uri=uri)
        log(f"mlflow: filling {args.versions} versions")
        name, team = fill(client, args.versions)
        search_filter = f"name='{name}' and tags.team='{team}'"
        hits = len(client.search_model_versions(search_filter))
        result.update(versions=args.versions, search_hits=hits)

        alias = time_calls(
            lambda: client.get_model_version_by_alias(name, "champion"), args.iterations
        )
        search = time_calls(lambda: client.search_model_versions(search_filter), args.iterations)
        result["alias_inproc_ms"] = rounded(median(alias) * 1000)
        result["search_inproc_ms"] = rounded(median(search) * 1000)

        port = free_port()
        argv = [
            str(Path(sys.executable).parent / "mlflow"), "server",
            "--backend-store-uri", uri,
            "--artifacts-destination", str(root / "art"),
            "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
        ]  # fmt: skip
        base = f"http://127.0.0.1:{port}"
        with (
            server_process(argv, f"{base}/health", None, root / "server.log"),
            requests.Session() as http,
        ):

            def get(path: str, params: dict[str, str]) -> None:
                response = http.get(f"{base}{path}", params=params, timeout=30)
                response.raise_for_status()

            alias_params = {"name": name, "alias": "champion"}
            search_params = {"filter": search_filter, "max_results": "1000"}
            alias_rest = time_calls(
                lambda: get("/api/2.0/mlflow/registered-models/alias", alias_params),
                args.rest_iterations,
            )
            search_rest = time_calls(
                lambda: get("/api/2.0/mlflow/model-versions/search", search_params),
                args.rest_iterations,
            )
        result["alias_rest_ms"] = rounded(median(alias_rest) * 1000)
        result["search_rest_ms"] = rounded(median(search_rest) * 1000)
    emit(result)


if __name__ == "__main__":
    main()
