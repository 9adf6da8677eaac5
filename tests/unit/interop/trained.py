"""A tabular classifier trained here for a few real steps, written as the trainer writes it."""

from __future__ import annotations

from pathlib import Path

import numpy as np

FEATURES = ["a", "b", "c"]
CLASSES = ["low", "high"]
HIDDEN = [8]


def train_tabular(folder: Path, rows: int = 300, steps: int = 40) -> Path:
    import torch

    from modelhub.networks import tabular

    rng = np.random.default_rng(7)
    torch.manual_seed(7)
    x = rng.normal(size=(rows, len(FEATURES))).astype(np.float32) * 3 + 1
    y = (x[:, 0] + x[:, 1] > 2).astype(np.int64)
    mean, std = x.mean(axis=0), x.std(axis=0)
    model = tabular.build_model(len(FEATURES), HIDDEN, len(CLASSES))
    optimizer = torch.optim.Adam(model.parameters(), lr=0.05)
    inputs, labels = torch.from_numpy((x - mean) / std), torch.from_numpy(y)
    for _ in range(steps):
        optimizer.zero_grad()
        torch.nn.functional.cross_entropy(model(inputs), labels).backward()
        optimizer.step()
    folder.mkdir(parents=True, exist_ok=True)
    tabular.write_output(folder, model, FEATURES, "label", CLASSES, HIDDEN, mean, std)
    return folder


def probabilities(folder: Path, x: np.ndarray) -> np.ndarray:
    """What the trained network answers, computed from its files without modelhub's export."""
    import json

    import torch
    from safetensors.torch import load_file

    from modelhub.networks import tabular

    config = json.loads((folder / "config.json").read_text())
    model = tabular.build_model(len(config["features"]), config["hidden"], len(config["classes"]))
    model.load_state_dict(load_file(str(folder / "model.safetensors")))
    model.eval()
    scaled = (x - np.array(config["mean"])) / np.array(config["std"])
    with torch.no_grad():
        logits = model(torch.from_numpy(scaled.astype(np.float32)))
    return torch.softmax(logits, dim=-1).numpy()
