"""Export modelhub-trained models to ONNX, so any ONNX Runtime can serve them.

The tabular classifier exports as the `tabular_classifier` runtime computes it: the
input normalisation folded into the first layer, outputs `logits` and
`probabilities` for input `input` [batch, input_dim] with a dynamic batch size.
Uses torch's `torch.export`-based exporter (it needs the onnxscript package).
"""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path
from typing import Any

from modelhub.errors import InvalidInput

OPSET = 18


def export_onnx(folder: Path, target: Path) -> Path:
    """Write the ONNX graph of the tabular classifier in `folder` to `target` (a path
    ending in .onnx, else a folder to hold model.onnx); returns the file written.

    Raises InvalidInput when the folder does not hold a tabular_classifier model.
    """
    import torch

    from modelhub.serving.runtimes.tabular import INPUT, folded_model

    trainer = _trainer(folder)
    if trainer != "tabular_classifier":
        raise InvalidInput(
            f"ONNX export covers tabular_classifier models; {folder.name} holds"
            f" {trainer or 'no modelhub trainer output'}",
            {"path": str(folder)},
        )
    model, config = folded_model(folder)
    path = target if target.suffix.lower() == ".onnx" else target / "model.onnx"
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    example = torch.zeros(2, int(config["input_dim"]))
    try:
        with warnings.catch_warnings():
            # onnxscript still asks torch's pytree about LeafSpec, which torch deprecates.
            warnings.filterwarnings("ignore", message=".*LeafSpec.*", category=FutureWarning)
            torch.onnx.export(
                _with_probabilities(model),
                (example,),
                str(partial),
                input_names=[INPUT],
                output_names=["logits", "probabilities"],
                dynamic_shapes=({0: torch.export.Dim("batch")},),
                opset_version=OPSET,
                dynamo=True,
                external_data=False,
                verbose=False,
            )
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)
    return path


def _trainer(folder: Path) -> str | None:
    try:
        config: Any = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return str(config.get("trainer")) if isinstance(config, dict) else None


def _with_probabilities(model: Any) -> Any:
    """`model` giving (logits, softmax(logits)), in eval mode."""
    from torch import Tensor, nn

    class WithProbabilities(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, features: Tensor) -> tuple[Tensor, Tensor]:
            logits = self.model(features)
            return logits, logits.softmax(dim=1)

    return WithProbabilities().eval()
