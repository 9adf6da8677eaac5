"""Built-in trainers, found by name through the `modelhub.trainers` extension point.

A trainer is an object (a module will do) with `train(ctx)`:
`train(ctx: LocalContext) -> TrainResult` trains with real PyTorch and writes
`model.safetensors` and `config.json` into `ctx.output_dir` (the networks a runtime
rebuilds from that folder live in `modelhub.networks`). Modules import torch
themselves, so naming a trainer costs nothing until it runs. The `script` trainer
runs a user's script in a child process instead.
"""

from __future__ import annotations

from typing import Any, Protocol

from modelhub.errors import InvalidInput, NotFound
from modelhub.plugins import Registry, needs

TRAINERS: dict[str, str] = {
    "tabular_classifier": "modelhub.training.trainers.tabular",
    "text_classifier": "modelhub.training.trainers.text_classifier",
    "char_lm": "modelhub.training.trainers.char_lm",
    "char_lm_preference": "modelhub.training.trainers.char_lm_preference",
    "script": "modelhub.training.trainers.script",
}


class Trainer(Protocol):
    """One entry of `modelhub.trainers`: `train(ctx)` (a LocalContext) returns a
    TrainResult; it raises TrainingDiverged on a non-finite loss and InvalidInput for
    data or settings it cannot use."""

    def train(self, ctx: Any) -> Any: ...


def _trainer(obj: object) -> Trainer:
    needs(obj, "train")
    return obj  # type: ignore[return-value]


_ADDS = {
    "tabular_classifier": "an MLP over the numeric columns of a table",
    "text_classifier": "a classifier head on a sentence-embedding encoder",
    "char_lm": "a character-level transformer language model",
    "char_lm_preference": "a char LM tuned on preference pairs by DPO against its base",
    "script": "a user's own training script, in a sandboxed child process",
}
REGISTRY: Registry[Trainer] = Registry(
    "trainers", _trainer, [(name, target, _ADDS[name]) for name, target in TRAINERS.items()]
)


def trainer_module(name: str) -> Trainer:
    """The trainer called `name`; InvalidInput for a name nobody provides."""
    try:
        return REGISTRY.get(name)
    except NotFound:
        raise InvalidInput(
            f"unknown trainer {name!r}; choose one of: {', '.join(sorted(REGISTRY.names()))}",
            {"field": "trainer", "value": name},
        ) from None
