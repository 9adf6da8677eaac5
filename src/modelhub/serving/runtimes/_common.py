"""Small pieces every runtime shares: reading inputs and parameters, sizing models."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from modelhub.errors import InvalidInput, Unavailable

MAX_SEED = 2**63 - 1


def text_column(inputs: dict[str, np.ndarray], name: str) -> list[str]:
    """The strings of a 1-d BYTES input, one per row; InvalidInput when it is not one."""
    array = inputs.get(name)
    if array is None:
        raise InvalidInput(f"the model needs input {name!r}", {"field": name})
    if array.ndim != 1:
        raise InvalidInput(
            f"input {name!r} must be 1-d (one text per row), got shape {list(array.shape)}",
            {"field": name},
        )
    texts: list[str] = array.tolist()
    for row, value in enumerate(texts):
        if type(value) is not str:
            raise InvalidInput(
                f"row {row} of input {name!r} is {type(value).__name__}, not a string",
                {"field": name, "row": row},
            )
    return texts


def text_array(values: list[str]) -> np.ndarray:
    """A 1-d object array of `values` (np.array would make a fixed-width unicode array)."""
    array = np.empty(len(values), dtype=object)
    array[:] = values
    return array


def int_parameter(
    parameters: dict[str, Any], name: str, default: int | None, low: int, high: int
) -> int | None:
    """`parameters[name]` as an int in [low, high], or `default` when absent or null."""
    value = parameters.get(name)
    if value is None:
        return default
    if type(value) is not int or not low <= value <= high:
        raise InvalidInput(
            f"parameter {name} must be an integer from {low} to {high}, got {_shown(value)}",
            {"field": f"parameters.{name}"},
        )
    return value


def float_parameter(parameters: dict[str, Any], name: str, default: float, low: float) -> float:
    """`parameters[name]` as a finite number >= low, or `default` when absent or null."""
    value = parameters.get(name)
    if value is None:
        return default
    # an int beyond float's range (400 digits) is refused here, not an OverflowError
    number = float(value) if type(value) is float or _fits_float(value) else math.nan
    if not math.isfinite(number) or number < low:
        raise InvalidInput(
            f"parameter {name} must be a number >= {low}, got {_shown(value)}",
            {"field": f"parameters.{name}"},
        )
    return number


def _fits_float(value: Any) -> bool:
    return type(value) is int and -_FLOAT_INT_LIMIT < value < _FLOAT_INT_LIMIT


_FLOAT_INT_LIMIT = 2**1023  # every int of smaller magnitude converts to a finite float


def torch_memory_bytes(module: Any) -> int:
    """Bytes held by a torch module's parameters and buffers (shared tensors once)."""
    seen: set[int] = set()
    total = 0
    for tensor in [*module.parameters(), *module.buffers()]:
        if id(tensor) not in seen:
            seen.add(id(tensor))
            total += tensor.numel() * tensor.element_size()
    return total


def unloaded(runtime: str) -> Unavailable:
    return Unavailable(f"the {runtime} runtime was unloaded", {"runtime": runtime})


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


_device = ["cpu"]  # the replica's: set once at its start, before any model loads


def use_device(device: str) -> None:
    """Where this process's torch runtimes place models: "cpu", or "cuda" in a replica
    given GPUs (`resources.gpus`) that sees one. Called by the replica at its start."""
    _device[0] = device


def serving_device() -> str:
    return _device[0]
