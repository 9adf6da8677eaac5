"""MLflow reference for register_throughput; runs in bench/.venv-mlflow, never the project venv.

Per version, the MLflow way: create a run, log the 1 MB artifact to it, then
create a model version whose source is that artifact. Prints one JSON line:
{"inproc_vps": .., "rest_vps": .., ...}.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchlib import (
    MIB,
    emit,
    free_port,
    log,
    rounded,
    server_process,
    write_small_safetensors,
)


def make_files(folder: Path, count: int, size: int) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(count):
        path = folder / f"f{i:05d}" / "model.safetensors"
        path.parent.mkdir()
        write_small_safetensors(path, size)
        paths.append(path)
    return paths


def register_versions(client: Any, experiment_id: str, name: str, files: list[Path]) -> float:
    """Register one version per file; return versions per second."""
    client.create_registered_model(name)
    start = time.perf_counter()
    for path in files:
        run = client.create_run(experiment_id)
        client.log_artifact(run.info.run_id, str(path))
        client.create_model_version(
            name, source=f"{run.info.artifact_uri}/{path.name}", run_id=run.info.run_id
        )
    elapsed = time.perf_counter() - start
    return len(files) / elapsed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--inproc-versions", type=int, default=100)
    parser.add_argument("--rest-versions", type=int, default=30)
    parser.add_argument("--size", type=int, default=MIB)
    args = parser.parse_args()

    import mlflow
    from mlflow.tracking import MlflowClient

    result: dict[str, Any] = {"peer": "mlflow", "mlflow_version": mlflow.__version__}
    with tempfile.TemporaryDirectory(prefix="bench-mlflow-") as tmp:
        root = Path(tmp)
        files = make_files(root / "files", max(args.inproc_versions, args.rest_versions), args.size)

        # In-process: the SQLAlchemy store on SQLite and a local artifact folder.
        uri = f"sqlite:///{root / 'inproc.db'}"
        client = MlflowClient(tracking_uri=uri, registry_uri=uri)
        experiment = client.create_experiment("bench", artifact_location=str(root / "inproc-art"))
        log(f"mlflow in-process: {args.inproc_versions} versions")
        vps = register_versions(client, experiment, "bench-inproc", files[: args.inproc_versions])
        result["inproc_vps"] = rounded(vps, 2)
        result["inproc_versions"] = args.inproc_versions

        # Over REST: `mlflow server`, artifacts proxied through it (mlflow-artifacts:/),
        # so the bytes travel over HTTP as they do to modelhub.
        if args.rest_versions > 0:
            port = free_port()
            argv = [
                str(Path(sys.executable).parent / "mlflow"), "server",
                "--backend-store-uri", f"sqlite:///{root / 'rest.db'}",
                "--artifacts-destination", str(root / "rest-art"),
                "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
            ]  # fmt: skip
            url = f"http://127.0.0.1:{port}"
            env = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0"}
            with server_process(argv, f"{url}/health", env, root / "server.log"):
                os.environ.pop("MLFLOW_TRACKING_URI", None)
                rest = MlflowClient(tracking_uri=url, registry_uri=url)
                exp = rest.create_experiment("bench")
                log(f"mlflow over REST: {args.rest_versions} versions")
                vps = register_versions(rest, exp, "bench-rest", files[: args.rest_versions])
            result["rest_vps"] = rounded(vps, 2)
            result["rest_versions"] = args.rest_versions
    emit(result)


if __name__ == "__main__":
    main()
