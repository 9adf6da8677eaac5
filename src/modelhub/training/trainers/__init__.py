"""Built-in trainers, found by name. Each module offers `train(ctx)` and `load(folder)`.

`train(ctx: LocalContext) -> TrainResult` trains with real PyTorch and writes
`model.safetensors` and `config.json` into `ctx.output_dir`; `load(folder)` builds
a predictor from that folder again. Modules import torch themselves, so naming a
trainer costs nothing until it runs. The `script` trainer runs a user's script in a
child process instead, and its `load` hands back the folder's config and tensors.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from modelhub.errors import InvalidInput

TRAINERS: dict[str, str] = {
    "tabular_classifier": "modelhub.training.trainers.tabular",
    "text_classifier": "modelhub.training.trainers.text_classifier",
    "char_lm": "modelhub.training.trainers.char_lm",
    "char_lm_preference": "modelhub.training.trainers.char_lm_preference",
    "script": "modelhub.training.trainers.script",
}


def trainer_module(name: str) -> ModuleType:
    try:
        return importlib.import_module(TRAINERS[name])
    except KeyError:
        raise InvalidInput(
            f"unknown trainer {name!r}; choose one of: {', '.join(sorted(TRAINERS))}",
            {"field": "trainer", "value": name},
        ) from None
