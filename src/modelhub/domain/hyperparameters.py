"""Each built-in trainer's hyperparameters, as a typed model that forbids unknown keys.

The pipeline spec checks a pipeline's `hyperparameters` against its trainer's model
when the pipeline is created, so a typo or a bad value is refused then, each under its
field path, not hours later in a worker. The trainers read the same models. The
script trainer's hyperparameters are free: the script decides what they mean.

`epochs` is the spec's `max_epochs`: the platform hands it to the trainer under this
name, and the spec refuses it inside `hyperparameters`. The default is the spec's.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from modelhub.errors import InvalidInput

DEFAULT_EPOCHS = 10
MAX_EPOCHS = 100_000
MAX_WIDTH = 65_536

Width = Annotated[int, Field(strict=True, ge=1, le=MAX_WIDTH)]
Count = Annotated[int, Field(strict=True, ge=1)]
Epochs = Annotated[int, Field(strict=True, ge=1, le=MAX_EPOCHS)]
Rate = Annotated[float, Field(strict=True, gt=0)]
NonNegative = Annotated[float, Field(strict=True, ge=0)]


class Hyperparameters(BaseModel):
    """What every trainer may be given; a built-in trainer's model forbids anything else."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    @classmethod
    def parse(cls, values: dict[str, Any]) -> Self:
        """The model of `values`; InvalidInput naming each bad key under `hyperparameters.`."""
        try:
            return cls.model_validate(values)
        except ValidationError as exc:
            problems = hyperparameter_problems(cls, values)
            raise InvalidInput(
                "bad hyperparameters: " + "; ".join(f"{path}: {msg}" for path, msg in problems),
                {"errors": [{"field": path, "message": msg} for path, msg in problems]},
            ) from exc


class ScriptHyperparameters(Hyperparameters):
    """A script's own: any key, checked only by the spec's general rules."""

    model_config = ConfigDict(frozen=True, extra="allow")


class TabularHyperparameters(Hyperparameters):
    label: str = "label"
    features: list[str] | None = Field(default=None, min_length=1)
    hidden: list[Width] = Field(default_factory=lambda: [64], min_length=1, max_length=64)
    epochs: Epochs = DEFAULT_EPOCHS
    batch_size: Count = 32
    learning_rate: Rate = 1e-3
    weight_decay: NonNegative = 0.0
    checkpoint_every: Count | None = None
    log_every: Count = 10

    @field_validator("hidden", mode="before")
    @classmethod
    def _one_layer(cls, value: Any) -> Any:
        return [value] if isinstance(value, int) and not isinstance(value, bool) else value


class CharLMHyperparameters(Hyperparameters):
    context_length: Width = 64
    d_model: Width = 64
    n_layers: int = Field(default=2, strict=True, ge=1, le=256)
    n_heads: int = Field(default=4, strict=True, ge=1, le=256)
    dropout: float = Field(default=0.0, strict=True, ge=0, lt=1)
    epochs: Epochs = DEFAULT_EPOCHS
    steps: Count | None = Field(
        default=None, description="train this many steps instead of `epochs` epochs"
    )
    batch_size: Count = 32
    learning_rate: Rate = 3e-3
    weight_decay: NonNegative = 0.0
    warmup_steps: int = Field(default=0, strict=True, ge=0)
    lr_schedule: Literal["cosine", "constant"] = "cosine"
    grad_clip: Rate = 1.0
    log_every: Count = 10
    eval_every: Count = 50
    checkpoint_every: Count = 100

    @model_validator(mode="after")
    def _heads_divide(self) -> CharLMHyperparameters:
        if self.d_model % self.n_heads:
            raise ValueError(f"d_model ({self.d_model}) must be a multiple of n_heads")
        return self


class TextClassifierHyperparameters(Hyperparameters):
    tune: Literal["head", "last_layers"] = "head"
    hidden: int = Field(default=0, strict=True, ge=0, le=MAX_WIDTH)
    epochs: Epochs = DEFAULT_EPOCHS
    batch_size: Count = 16
    learning_rate: Rate | None = Field(
        default=None, description="1e-3 when tuning the head, 2e-5 when tuning layers"
    )
    unfreeze_layers: int = Field(default=1, strict=True, ge=0, le=256)
    text_field: str = "text"
    label_field: str = "label"
    checkpoint_every: Count | None = None
    log_every: Count = 1

    @property
    def rate(self) -> float:
        if self.learning_rate is not None:
            return self.learning_rate
        return 1e-3 if self.tune == "head" else 2e-5


class CharLMPreferenceHyperparameters(Hyperparameters):
    """Direct Preference Optimisation of a char LM version (see docs/reinforcement-learning.md)."""

    beta: float = Field(
        default=0.1,
        strict=True,
        gt=0,
        le=10,
        description="how far the policy may move from the base: higher stays closer",
    )
    epochs: Epochs = DEFAULT_EPOCHS
    steps: int | None = Field(
        default=None,
        strict=True,
        ge=1,
        le=10_000_000,
        description="train this many steps instead of `epochs` epochs",
    )
    batch_size: int = Field(default=16, strict=True, ge=1, le=4096)
    learning_rate: float = Field(default=1e-3, strict=True, gt=0, le=1)
    weight_decay: float = Field(default=0.0, strict=True, ge=0, le=1)
    grad_clip: float = Field(default=1.0, strict=True, gt=0, le=1e6)
    log_every: Count = 10
    eval_every: Count = 50
    checkpoint_every: Count = 100


HYPERPARAMETERS: dict[str, type[Hyperparameters]] = {
    "tabular_classifier": TabularHyperparameters,
    "text_classifier": TextClassifierHyperparameters,
    "char_lm": CharLMHyperparameters,
    "char_lm_preference": CharLMPreferenceHyperparameters,
    "script": ScriptHyperparameters,
}


def hyperparameter_problems(model: type[BaseModel], values: Any) -> list[tuple[str, str]]:
    """(field path, message) of each problem `model` finds in `values`; [] when none."""
    try:
        model.model_validate(values)
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            path = "hyperparameters" + "".join(
                f"[{p}]" if isinstance(p, int) else f".{p}" for p in error["loc"]
            )
            if error["type"] == "extra_forbidden":
                known = ", ".join(sorted(set(model.model_fields) - {"epochs"}))
                message = f"unknown hyperparameter; this trainer takes: {known}"
            else:
                message = error["msg"].removeprefix("Value error, ")
            problems.append((path, message))
        return problems
    return []
