"""The `search:` block of a pipeline spec: what `modelhub tune` samples, and how it judges.

    search:
      metric: val_loss          # a validation metric the trainer logs; default val_loss
      direction: minimize       # default: maximize for accuracy-like metrics, else minimize
      pruner: median            # median | hyperband | none
      startup_trials: 2         # trials finished before the median pruner prunes
      seed: 7                   # the sampler's seed: the same seed samples the same trials
      params:
        learning_rate: {type: float, low: 1.0e-4, high: 1.0, log: true}
        hidden: {type: categorical, choices: [16, 64]}
        batch_size: {type: int, low: 8, high: 64, step: 8}

Each parameter is checked alone here (a range that is empty or inverted, a log range
that reaches 0, a categorical without choices); `search_problems` checks the names and
bounds against the trainer's own hyperparameter model, so a range that samples a value
the trainer refuses is refused when the pipeline is created, not in trial 17.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from modelhub.domain.hyperparameters import hyperparameter_problems

MAX_SEARCH_PARAMS = 16
MAX_CHOICES = 64
MAX_TRIALS = 1000
MAX_PARALLEL = 64
MAX_STARTUP_TRIALS = 1000
DEFAULT_METRIC = "val_loss"
_MAXIMIZED = ("accuracy", "auc", "f1", "precision", "recall", "r2")
# Set by the platform, never sampled: the spec's top-level fields own them.
_NOT_SEARCHABLE = ("epochs", "seed", "validation_split")

Choice = str | int | float | bool


class SearchParam(BaseModel):
    """One hyperparameter's range (float, int) or its choices (categorical)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    type: Literal["float", "int", "categorical"]
    low: float | None = None
    high: float | None = None
    log: bool = False
    step: float | None = Field(default=None, gt=0)
    choices: list[Choice] | None = Field(default=None, max_length=MAX_CHOICES)

    @model_validator(mode="after")
    def _fits_type(self) -> SearchParam:
        if self.type == "categorical":
            if not self.choices:
                raise ValueError("a categorical parameter needs choices: a list of values")
            if self.low is not None or self.high is not None or self.log or self.step is not None:
                raise ValueError("a categorical parameter takes choices, not low/high/log/step")
            if len({repr(c) for c in self.choices}) != len(self.choices):
                raise ValueError("choices repeat a value")
            return self
        if self.choices is not None:
            raise ValueError(f"a {self.type} parameter takes low and high, not choices")
        if self.low is None or self.high is None:
            raise ValueError(f"a {self.type} parameter needs low and high")
        if self.type == "int" and not all(
            float(v).is_integer() for v in (self.low, self.high, self.step or 1)
        ):
            raise ValueError("an int parameter's low, high and step are whole numbers")
        if not self.low < self.high:
            raise ValueError(f"empty or inverted range: low ({self.low:g}) must be below high")
        if self.log and self.low <= 0:
            raise ValueError(f"a log range must stay above 0: low is {self.low:g}")
        if self.log and self.step is not None:
            raise ValueError("log and step cannot be used together")
        if self.step is not None and self.step > self.high - self.low:
            raise ValueError(f"step {self.step:g} is wider than the range")
        return self

    def bounds(self) -> list[Choice]:
        """The values at the edges of the range (or every choice): what the trainer must take."""
        if self.type == "categorical":
            return list(self.choices or [])
        assert self.low is not None and self.high is not None
        if self.type == "int":
            return [int(self.low), int(self.high)]
        return [self.low, self.high]


class Search(BaseModel):
    """What `modelhub tune` searches over and how it ranks and prunes trials."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    params: dict[str, SearchParam] = Field(min_length=1, max_length=MAX_SEARCH_PARAMS)
    metric: str = Field(default=DEFAULT_METRIC, min_length=1, max_length=128)
    direction: Literal["minimize", "maximize"] | None = Field(
        default=None, description="None: maximize an accuracy-like metric, else minimize."
    )
    pruner: Literal["median", "hyperband", "none"] = "median"
    startup_trials: int = Field(default=2, ge=0, le=MAX_STARTUP_TRIALS)
    seed: int = Field(default=0, ge=0, le=2**32 - 1)

    @property
    def goal(self) -> Literal["minimize", "maximize"]:
        if self.direction is not None:
            return self.direction
        return "maximize" if any(w in self.metric.lower() for w in _MAXIMIZED) else "minimize"


def search_problems(
    search: object, model: type[BaseModel] | None, fixed: Mapping[str, Any]
) -> list[tuple[str, str]]:
    """(path, message) for each searched name the trainer does not take, and each bound
    or choice it refuses (with the spec's own hyperparameters around it); [] when none.

    `model` None (a trainer this module does not know) checks nothing but the names the
    platform owns. Malformed parameters are skipped: their own error says why.
    """
    if not isinstance(search, Mapping) or not isinstance(search.get("params"), Mapping):
        return []
    problems: list[tuple[str, str]] = []
    for name, raw in search["params"].items():
        path = f"search.params.{name}"
        if name in _NOT_SEARCHABLE:
            problems.append((path, f"{name} is set by the spec's top-level fields, not searched"))
            continue
        if model is None or model.model_config.get("extra") == "allow":
            continue
        known = set(model.model_fields) - set(_NOT_SEARCHABLE)
        if name not in known:
            problems.append(
                (path, f"unknown hyperparameter; this trainer takes: {', '.join(sorted(known))}")
            )
            continue
        try:
            param = SearchParam.model_validate(raw)
        except ValueError:
            continue
        for value in param.bounds():
            refused = hyperparameter_problems(model, {**fixed, name: value})
            mine = [m for p, m in refused if p.partition("[")[0] == f"hyperparameters.{name}"]
            if mine:
                problems.append((path, f"the trainer refuses {value!r}: {mine[0]}"))
                break
    return problems
