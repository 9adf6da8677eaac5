"""Model A of the serving benchmark: a tiny MLP, 32 float inputs -> 64 hidden -> 10 logits.

Built deterministically (`torch.manual_seed(SEED)`) as
`nn.Sequential(Linear(32, 64), ReLU(), Linear(64, 10))`, the exact module
`modelhub.networks.tabular.build_model(32, [64], 10)` builds, so its
state_dict keys are `0.weight`, `0.bias`, `2.weight`, `2.bias`. Written as:

- `trainer/`: a modelhub trainer-format folder (`model.safetensors` + `config.json`
  as `modelhub.networks.tabular.write_output` writes them; mean 0 and std 1, so the server's
  normalisation is the identity and its logits equal the raw module's);
- `model_a.onnx`: `torch.onnx.export` with a dynamic batch axis, weights inside the file;
- the request bodies: Open Inference Protocol V2 JSON (`oip_b1.json`, input "input",
  FP32, shape [1, 32]) and MLflow's `/invocations` JSON (`mlflow_b1.json`,
  `{"inputs": [[32 floats]]}`, a tensor input for a pyfunc with a tensor signature);
- `expected.json`: the input row and torch's logits for it (the servers' answers are
  checked against these, atol 1e-4).

The MLflow and MLServer peers rebuild the module from `trainer/model.safetensors` in
their own venvs (see `peer_mlflow_log.py`, `peer_mlserver_runtime.py`).
"""

from __future__ import annotations

import contextlib
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SEED = 20240605
INPUT_DIM = 32
HIDDEN = 64
CLASSES = 10
INPUT_NAME = "input"  # the OIP V2 input tensor's name and the ONNX input's name
OUTPUT_NAME = "logits"


@dataclass(frozen=True)
class ModelA:
    """Where model A's files and bodies lie, and the logits every server must return."""

    root: Path
    trainer_dir: Path  # model.safetensors + config.json (modelhub's trainer format)
    safetensors: Path
    onnx: Path
    oip_body: Path  # OIP V2 infer request, batch 1
    mlflow_body: Path  # MLflow /invocations request, batch 1
    row: list[float]  # the input row of both bodies
    logits: list[float]  # torch's logits for `row`


def build_module() -> Any:
    """The Sequential with deterministic weights (same seed, same weights, every run)."""
    import torch
    from torch import nn

    torch.manual_seed(SEED)
    return nn.Sequential(nn.Linear(INPUT_DIM, HIDDEN), nn.ReLU(), nn.Linear(HIDDEN, CLASSES)).eval()


def input_row() -> list[float]:
    """A fixed input row, rounded to 6 digits so that JSON carries it exactly as FP32."""
    import torch

    generator = torch.Generator().manual_seed(SEED + 1)
    values = torch.randn(INPUT_DIM, generator=generator)
    return [round(float(v), 6) for v in values]


def trainer_config() -> dict[str, Any]:
    """`config.json` as `modelhub.networks.tabular.write_output` writes it."""
    return {
        "trainer": "tabular_classifier",
        "features": [f"f{i}" for i in range(INPUT_DIM)],
        "label": "label",
        "classes": [f"c{i}" for i in range(CLASSES)],
        "hidden": [HIDDEN],
        "mean": [0.0] * INPUT_DIM,
        "std": [1.0] * INPUT_DIM,
        "input_dim": INPUT_DIM,
    }


def oip_request(rows: list[list[float]]) -> dict[str, Any]:
    return {
        "inputs": [
            {
                "name": INPUT_NAME,
                "shape": [len(rows), INPUT_DIM],
                "datatype": "FP32",
                "data": [v for row in rows for v in row],
            }
        ]
    }


def mlflow_request(rows: list[list[float]]) -> dict[str, Any]:
    return {"inputs": rows}


def oip_logits(response: dict[str, Any]) -> list[float]:
    """The first row of the first output of an OIP V2 infer response."""
    output = response["outputs"][0]
    data = output["data"]
    flat = [float(v) for row in data for v in row] if data and isinstance(data[0], list) else data
    return [float(v) for v in flat[:CLASSES]]


def mlflow_logits(response: Any) -> list[float]:
    """The first row of MLflow's `{"predictions": [[...]]}` (or a bare list)."""
    predictions = response["predictions"] if isinstance(response, dict) else response
    first = predictions[0]
    if isinstance(first, dict):  # a DataFrame answer: {"0": v0, "1": v1, ...}
        first = list(first.values())
    return [float(v) for v in first]


def _check_keys_match_modelhub(module: Any) -> None:
    """Fail if modelhub's tabular trainer would name the weights differently."""
    try:
        from modelhub.networks.tabular import build_model
    except ImportError:  # modelhub not importable here: the keys are fixed above
        return
    theirs = build_model(INPUT_DIM, [HIDDEN], CLASSES).state_dict()
    ours = module.state_dict()
    if list(theirs) != list(ours) or any(theirs[k].shape != ours[k].shape for k in ours):
        raise RuntimeError(f"state_dict keys differ: {list(ours)} vs modelhub's {list(theirs)}")


def _export_onnx(module: Any, path: Path) -> None:
    import torch

    example = torch.zeros(2, INPUT_DIM)
    try:
        # the exporter prints progress on stdout, which carries only JSON lines here
        with contextlib.redirect_stdout(sys.stderr):
            program = torch.onnx.export(
                module,
                (example,),
                input_names=[INPUT_NAME],
                output_names=[OUTPUT_NAME],
                dynamic_shapes={"input": {0: torch.export.Dim("batch")}},
                external_data=False,
                dynamo=True,
                verbose=False,
            )
    except ImportError as exc:  # the new exporter needs onnxscript
        raise RuntimeError(
            f"torch.onnx.export needs onnxscript: pip install onnxscript ({exc})"
        ) from exc
    if program is None:
        raise RuntimeError("torch.onnx.export returned no program")
    program.save(str(path), external_data=False)


def write(root: Path) -> ModelA:
    """Write model A's files and bodies under `root` (overwriting) and return where."""
    import torch
    from safetensors.torch import save_file

    root.mkdir(parents=True, exist_ok=True)
    trainer_dir = root / "trainer"
    trainer_dir.mkdir(exist_ok=True)
    module = build_module()
    _check_keys_match_modelhub(module)
    state = {k: v.detach().contiguous() for k, v in module.state_dict().items()}
    safetensors = trainer_dir / "model.safetensors"
    save_file(state, str(safetensors))
    (trainer_dir / "config.json").write_text(json.dumps(trainer_config(), indent=2))

    onnx_path = root / "model_a.onnx"
    _export_onnx(module, onnx_path)

    row = input_row()
    with torch.inference_mode():
        logits = [float(v) for v in module(torch.tensor([row], dtype=torch.float32))[0]]
    oip_body = root / "oip_b1.json"
    oip_body.write_text(json.dumps(oip_request([row]), separators=(",", ":")))
    mlflow_body = root / "mlflow_b1.json"
    mlflow_body.write_text(json.dumps(mlflow_request([row]), separators=(",", ":")))
    (root / "expected.json").write_text(json.dumps({"row": row, "logits": logits}))
    return ModelA(
        root=root,
        trainer_dir=trainer_dir,
        safetensors=safetensors,
        onnx=onnx_path,
        oip_body=oip_body,
        mlflow_body=mlflow_body,
        row=row,
        logits=logits,
    )


def check_logits(got: list[float], expected: list[float], label: str, atol: float = 1e-4) -> None:
    """Raise unless `got` matches `expected` elementwise within `atol`."""
    if len(got) != len(expected):
        raise RuntimeError(f"{label}: {len(got)} logits, expected {len(expected)}")
    worst = max(abs(a - b) for a, b in zip(got, expected, strict=True))
    if worst > atol:
        raise RuntimeError(f"{label}: logits differ from torch's by {worst:.2e} (> {atol})")


if __name__ == "__main__":
    files = write(Path(sys.argv[1]) if len(sys.argv) > 1 else Path("bench/results/model_a"))
    print(json.dumps({"root": str(files.root), "logits": files.logits}))
