"""What a pipeline spec must know of each trainer, built-in or plugin, and no more.

A spec names its trainer; the spec's rules (which pipeline types it runs, the model
type its result is registered as, its hyperparameters, the base it starts from, and
whether it may run data-parallel) come from that trainer's `TrainerTraits`. The
built-ins' traits are the tables below, so checking a spec never imports torch.
A plugin trainer declares the same traits as attributes of its object
(`traits_from`), and the training layer turns the installed ones into a
`TrainerCatalog` that it hands to the spec (`PipelineSpec.model_validate(data,
context={"trainers": catalog})`, `spec_problems(data, catalog)`). The domain never
looks for plugins itself: which trainers exist is an argument, not I/O done here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from pydantic import BaseModel, ConfigDict

from modelhub.domain.enums import ModelType
from modelhub.domain.hyperparameters import HYPERPARAMETERS


class PipelineType(StrEnum):
    FINE_TUNING = "fine_tuning"
    PRE_TRAINING = "pre_training"
    TRANSFER_LEARNING = "transfer_learning"
    REINFORCEMENT_LEARNING = "reinforcement_learning"
    FEDERATED_LEARNING = "federated_learning"


class TrainerName(StrEnum):
    """Built-in trainers (modelhub.training.trainers.TRAINERS) plus a user's script."""

    TABULAR_CLASSIFIER = "tabular_classifier"
    TEXT_CLASSIFIER = "text_classifier"
    CHAR_LM = "char_lm"
    CHAR_LM_PREFERENCE = "char_lm_preference"
    SCRIPT = "script"


# Which pipeline types each trainer can run. The tabular classifier only trains from
# scratch; the text classifier can start from its own earlier version (fine_tuning);
# char_lm continues training an earlier char_lm; char_lm_preference learns from
# preference pairs, starting from a char_lm version; a script decides for itself.
TRAINER_TYPES: dict[TrainerName, frozenset[PipelineType]] = {
    TrainerName.TABULAR_CLASSIFIER: frozenset(
        {PipelineType.PRE_TRAINING, PipelineType.FEDERATED_LEARNING}
    ),
    TrainerName.TEXT_CLASSIFIER: frozenset({PipelineType.PRE_TRAINING, PipelineType.FINE_TUNING}),
    TrainerName.CHAR_LM: frozenset({PipelineType.PRE_TRAINING, PipelineType.FINE_TUNING}),
    TrainerName.CHAR_LM_PREFERENCE: frozenset({PipelineType.REINFORCEMENT_LEARNING}),
    TrainerName.SCRIPT: frozenset(
        {PipelineType.PRE_TRAINING, PipelineType.FINE_TUNING, PipelineType.TRANSFER_LEARNING}
    ),
}

# The trainer whose output a trainer's base_model must be (config.json "trainer").
BASE_TRAINER: dict[TrainerName, str] = {TrainerName.CHAR_LM_PREFERENCE: "char_lm"}

# The model type a result is registered as when `result_model.type` is left out.
DEFAULT_RESULT_TYPE: dict[TrainerName, ModelType] = {
    TrainerName.TABULAR_CLASSIFIER: ModelType.CLASSIFICATION,
    TrainerName.TEXT_CLASSIFIER: ModelType.CLASSIFICATION,
    TrainerName.CHAR_LM: ModelType.LANGUAGE_MODEL,
    TrainerName.CHAR_LM_PREFERENCE: ModelType.LANGUAGE_MODEL,
    TrainerName.SCRIPT: ModelType.CUSTOM,
}

MAX_TRAINER_NAME = 100


class NoHyperparameters(BaseModel):
    """A trainer that declares no hyperparameters takes none: every key is unknown."""

    model_config = ConfigDict(frozen=True, extra="forbid")


@dataclass(frozen=True)
class TrainerTraits:
    """What the spec checks against one trainer."""

    pipeline_types: frozenset[PipelineType]
    result_type: ModelType
    hyperparameters: type[BaseModel]
    base_trainer: str | None = None  # a base_model must be this trainer's output
    data_parallel: bool = False  # may run data-parallel (`distributed:`)
    builtin: bool = False


@dataclass(frozen=True)
class TrainerCatalog:
    """The trainers a spec may name: `traits` by name, and plugins that are installed
    but unusable (`failed`: name -> why), so naming one says why instead of "unknown"."""

    traits: Mapping[str, TrainerTraits]
    failed: Mapping[str, str] = field(default_factory=dict)

    def names(self) -> list[str]:
        """Built-ins in their order, then plugins by name."""
        builtin = [n for n, t in self.traits.items() if t.builtin]
        return builtin + sorted(n for n, t in self.traits.items() if not t.builtin)

    def problem(self, name: str) -> str | None:
        """Why `name` cannot be used, or None when it can."""
        if name in self.traits:
            return None
        if name in self.failed:
            return f"trainer plugin {name!r} cannot be used: {self.failed[name]}"
        shown = name if len(name) <= 40 else name[:40] + "..."
        return f"unknown trainer {shown!r}; choose one of: {', '.join(self.names())}"


BUILTIN_TRAINERS = TrainerCatalog(
    {
        name.value: TrainerTraits(
            pipeline_types=TRAINER_TYPES[name],
            result_type=DEFAULT_RESULT_TYPE[name],
            hyperparameters=HYPERPARAMETERS[name.value],
            base_trainer=BASE_TRAINER.get(name),
            data_parallel=True,
            builtin=True,
        )
        for name in TrainerName
    }
)


def traits_from(obj: object, *, builtin: bool = False) -> TrainerTraits:
    """The traits a trainer object declares as attributes (docs/plugins.md):
    `pipeline_types` (required), `result_type` (default custom), `hyperparameter_model`
    (a pydantic model class; default: none taken), `base_trainer` (default None) and
    `data_parallel` (default False). TypeError naming the first bad one."""
    what = getattr(obj, "__name__", None) or type(obj).__name__
    kinds = getattr(obj, "pipeline_types", None)
    allowed = frozenset(PipelineType)
    if isinstance(kinds, str) or not isinstance(kinds, list | tuple | set | frozenset):
        raise TypeError(f"{what}.pipeline_types must be a set of pipeline types")
    bad = sorted(str(k) for k in kinds if k not in set(allowed))
    if not kinds or bad:
        raise TypeError(
            f"{what}.pipeline_types: {', '.join(bad) or 'empty'}; use some of: "
            + ", ".join(sorted(allowed))
        )
    result = getattr(obj, "result_type", ModelType.CUSTOM)
    if result not in set(ModelType):
        raise TypeError(f"{what}.result_type {result!r}: use one of {', '.join(ModelType)}")
    model = getattr(obj, "hyperparameter_model", None) or NoHyperparameters
    if not (isinstance(model, type) and issubclass(model, BaseModel)):
        raise TypeError(f"{what}.hyperparameter_model must be a pydantic model class")
    base = getattr(obj, "base_trainer", None)
    if base is not None and not isinstance(base, str):
        raise TypeError(f"{what}.base_trainer must be a trainer name or None")
    data_parallel = getattr(obj, "data_parallel", False)
    if not isinstance(data_parallel, bool):
        raise TypeError(f"{what}.data_parallel must be true or false")
    return TrainerTraits(
        pipeline_types=frozenset(PipelineType(k) for k in kinds),
        result_type=ModelType(result),
        hyperparameters=model,
        base_trainer=base,
        data_parallel=data_parallel,
        builtin=builtin,
    )
