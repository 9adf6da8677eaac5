"""The `tabular_classifier` runtime: modelhub's tabular MLP, run for a few microseconds.

The trainer normalises features with the training set's mean and std before the
first layer; here that affine step is folded into the first layer's weights once at
load, and the forward is a chain of `F.linear`/`relu` over the weight tensors: for a
model this small, `nn.Module.__call__` and `torch.inference_mode()` would cost more
than the arithmetic. The weights do not require grad, so no autograd graph is built.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from modelhub.domain.records import Signature, TensorSpec
from modelhub.errors import InvalidInput
from modelhub.serving.runtimes._common import (
    serving_device,
    text_array,
    torch_memory_bytes,
    unloaded,
)
from modelhub.serving.runtimes.base import RuntimeInfo

RUNTIME = "tabular_classifier"
INPUT = "input"


def folded_model(folder: Path) -> tuple[Any, dict[str, Any]]:
    """The trained MLP with the input normalisation folded into its first layer, in eval
    mode with grad off, and the folder's config. Raises InvalidInput for another model."""
    import torch

    from modelhub.networks import tabular

    predictor = tabular.load(folder)
    model = predictor.model
    first = model[0]
    mean = torch.tensor(predictor.config["mean"], dtype=torch.float64)
    std = torch.tensor(predictor.config["std"], dtype=torch.float64)
    with torch.no_grad():
        # W((x - mean) / std) + b  ==  (W / std) x + (b - W (mean / std))
        weight = first.weight.double()
        first.bias.copy_(first.bias.double() - weight @ (mean / std))
        first.weight.copy_(weight / std)
    for parameter in model.parameters():
        parameter.requires_grad_(False)
    return model.eval(), predictor.config


class TabularRuntime:
    """Classifies rows of raw feature values (in the config's `features` order)."""

    def __init__(self, folder: Path) -> None:
        from torch import nn

        model, config = folded_model(folder)
        self._device = serving_device()
        if self._device != "cpu":
            model = model.to(self._device)
        self._dim = int(config["input_dim"])
        self._labels = text_array([str(c) for c in config["classes"]])
        self._layers: list[tuple[Any, Any]] | None = [
            (layer.weight, layer.bias) for layer in model if isinstance(layer, nn.Linear)
        ]
        classes = len(self._labels)
        self.info = RuntimeInfo(
            runtime=RUNTIME,
            signature=Signature(
                inputs=[TensorSpec(name=INPUT, dtype="FP32", shape=[-1, self._dim])],
                outputs=[
                    TensorSpec(name="logits", dtype="FP32", shape=[-1, classes]),
                    TensorSpec(name="probabilities", dtype="FP32", shape=[-1, classes]),
                    TensorSpec(name="label", dtype="BYTES", shape=[-1]),
                ],
            ),
            memory_bytes=torch_memory_bytes(model),
            blocking=False,
            details={"features": list(config["features"]), "classes": self._labels.tolist()},
        )

    def infer(
        self, inputs: dict[str, np.ndarray], parameters: dict[str, Any]
    ) -> dict[str, np.ndarray]:
        import torch
        import torch.nn.functional as F

        layers = self._layers
        if layers is None:
            raise unloaded(RUNTIME)
        x = inputs.get(INPUT)
        if x is None or x.ndim != 2 or x.shape[1] != self._dim:
            got = "nothing" if x is None else f"shape {list(x.shape)}"
            raise InvalidInput(
                f"input {INPUT!r} must be FP32 [rows, {self._dim}], got {got}", {"field": INPUT}
            )
        if x.dtype != np.float32 or not x.flags.writeable or not x.flags.c_contiguous:
            x = np.array(x, dtype=np.float32)
        hidden = torch.from_numpy(x)
        if self._device != "cpu":
            hidden = hidden.to(self._device)
        last = len(layers) - 1
        for index, (weight, bias) in enumerate(layers):
            hidden = F.linear(hidden, weight, bias)
            if index != last:
                hidden = hidden.relu_()
        probabilities = torch.softmax(hidden, 1)
        if self._device != "cpu":
            hidden, probabilities = hidden.cpu(), probabilities.cpu()
        logits = hidden.numpy()
        return {
            "logits": logits,
            "probabilities": probabilities.numpy(),
            "label": self._labels[logits.argmax(1)],
        }

    def unload(self) -> None:
        self._layers = None
