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

from modelhub.domain.trainer_catalog import (
    BUILTIN_TRAINERS,
    TrainerCatalog,
    TrainerTraits,
    traits_from,
)
from modelhub.errors import InvalidInput, NotFound, Unavailable
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
    data or settings it cannot use. It also declares what a pipeline spec checks
    (`pipeline_types`, and optionally `result_type`, `hyperparameter_model`,
    `base_trainer`, `data_parallel`: see `modelhub.domain.trainer_catalog.traits_from`)."""

    def train(self, ctx: Any) -> Any: ...


def _trainer(obj: object) -> Trainer:
    needs(obj, "train")
    traits_from(obj)  # TypeError naming the declaration that is missing or wrong
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


def installed_trainers() -> TrainerCatalog:
    """The trainers a pipeline spec may name here: the built-ins (their traits from the
    domain's table, importing nothing) and every installed plugin trainer, which is
    loaded to read its declarations. A plugin that fails to load is listed in `failed`
    with its error, so a spec naming it says why."""
    traits: dict[str, TrainerTraits] = dict(BUILTIN_TRAINERS.traits)
    failed: dict[str, str] = {}
    for name in REGISTRY.names():
        if REGISTRY.is_builtin(name):
            continue
        try:
            traits[name] = traits_from(REGISTRY.get(name))
        except Unavailable as exc:
            failed[name] = exc.message
    return TrainerCatalog(traits, failed)
