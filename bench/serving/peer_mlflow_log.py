"""Run with the MLflow peer venv's python: log model A with `mlflow.pytorch.log_model`.

    python peer_mlflow_log.py MODEL.safetensors TRACKING_DIR [--format pickle|default]

Rebuilds the Sequential (32 -> 64 -> ReLU -> 10), loads model A's weights from the
safetensors file, and logs it into a local tracking folder (SQLite metadata, artifacts in a folder
beside it: MLflow 3 refuses a plain file store without MLFLOW_ALLOW_FILE_STORE) with an input
example of batch 2 (float32; MLflow 3 logs PyTorch models as torch.export programs
by default, and an example of batch 1 would fix the batch dimension at 1). Prints
one JSON line: the model URI to give `mlflow models serve -m`, mlflow's version and
the serialization format.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("safetensors", type=Path)
    parser.add_argument("tracking_dir", type=Path)
    parser.add_argument("--format", choices=["default", "pickle"], default="default")
    args = parser.parse_args()

    import mlflow
    import numpy as np
    import torch
    from safetensors.torch import load_file
    from torch import nn

    module = nn.Sequential(nn.Linear(32, 64), nn.ReLU(), nn.Linear(64, 10))
    module.load_state_dict(load_file(str(args.safetensors)))
    module.eval()

    args.tracking_dir.mkdir(parents=True, exist_ok=True)
    root = args.tracking_dir.resolve()
    mlflow.set_tracking_uri(f"sqlite:///{root / 'mlflow.db'}")
    name = "serving-bench"
    if mlflow.get_experiment_by_name(name) is None:
        mlflow.create_experiment(name, artifact_location=(root / "artifacts").as_uri())
    mlflow.set_experiment(name)
    example = np.zeros((2, 32), dtype=np.float32)
    extra = {} if args.format == "default" else {"serialization_format": "pickle"}
    with mlflow.start_run():
        info = mlflow.pytorch.log_model(module, name="model_a", input_example=example, **extra)
    print(
        json.dumps(
            {
                "model_uri": info.model_uri,
                "artifact_path": mlflow.artifacts.download_artifacts(info.model_uri),
                "mlflow": mlflow.__version__,
                "torch": torch.__version__,
                "format": args.format,
            }
        ),
        flush=True,
    )


if __name__ == "__main__":
    sys.exit(main())
