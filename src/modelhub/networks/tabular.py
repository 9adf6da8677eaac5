"""The tabular classifier's network: an MLP over normalised numeric columns.

The output folder holds `model.safetensors` (the MLP's weights) and `config.json`
(features, label, classes, hidden widths and the normalisation's mean and std).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from modelhub.errors import InvalidInput

TRAINER = "tabular_classifier"
Label = str | int


def build_model(input_dim: int, hidden: list[int], n_classes: int) -> Any:
    from torch import nn

    layers: list[Any] = []
    width = input_dim
    for size in hidden:
        layers += [nn.Linear(width, size), nn.ReLU()]
        width = size
    layers.append(nn.Linear(width, n_classes))
    return nn.Sequential(*layers)


def write_output(
    folder: Path,
    model: Any,
    features: list[str],
    label: str,
    classes: Sequence[Label],
    hidden: list[int],
    mean: Any,
    std: Any,
) -> None:
    """Write what `load` reads: the weights and config.json."""
    from safetensors.torch import save_file

    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    save_file(state, str(folder / "model.safetensors"))
    config = {
        "trainer": TRAINER,
        "features": features,
        "label": label,
        "classes": list(classes),
        "hidden": hidden,
        "mean": [float(v) for v in mean],
        "std": [float(v) for v in std],
        "input_dim": len(features),
    }
    (folder / "config.json").write_text(json.dumps(config, indent=2))


class TabularPredictor:
    """A trained tabular classifier, loaded from safetensors (no pickle), in eval mode."""

    def __init__(self, config: dict[str, Any], model: Any) -> None:
        import torch

        self.config = config
        self.features: list[str] = list(config["features"])
        self.classes: list[Label] = list(config["classes"])
        self.model = model.eval()
        self._mean = torch.tensor(config["mean"], dtype=torch.float32)
        self._std = torch.tensor(config["std"], dtype=torch.float32)

    def _logits(self, rows: list[dict[str, float]]) -> Any:
        import torch

        matrix = np.empty((len(rows), len(self.features)), dtype=np.float64)
        for r, row in enumerate(rows):
            for c, name in enumerate(self.features):
                if name not in row:
                    raise InvalidInput(f"row {r} lacks feature {name!r}", {"row": r})
                matrix[r, c] = float(row[name])
        x = (torch.from_numpy(matrix.astype(np.float32)) - self._mean) / self._std
        with torch.no_grad():
            return self.model(x)

    def predict_proba(self, rows: list[dict[str, float]]) -> list[list[float]]:
        """Class probabilities per row, in the order of `self.classes`."""
        return [[float(p) for p in row] for row in self._logits(rows).softmax(dim=1)]

    def predict(self, rows: list[dict[str, float]]) -> list[Label]:
        """The most likely class label per row."""
        return [self.classes[int(i)] for i in self._logits(rows).argmax(dim=1)]


def load(folder: Path) -> TabularPredictor:
    """Load what `train` wrote; raises InvalidInput when the folder holds something else."""
    from safetensors.torch import load_file

    config = json.loads((folder / "config.json").read_text())
    if config.get("trainer") != TRAINER:
        raise InvalidInput(f"{folder} holds a {config.get('trainer')!r} model, not {TRAINER}")
    model = build_model(int(config["input_dim"]), list(config["hidden"]), len(config["classes"]))
    model.load_state_dict(load_file(str(folder / "model.safetensors")))
    return TabularPredictor(config, model)
