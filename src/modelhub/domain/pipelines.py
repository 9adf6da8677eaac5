"""The pipeline spec: what `pipeline.yaml` may say, checked field by field.

The models forbid unknown keys. Rules that span fields (a base model required by
the type, trainer/type combinations, the script trainer's script) live in
`spec_problems`, which reads the raw mapping so that it can report them together
with the per-field errors; `PipelineSpec` applies the same rules when built directly.
See docs/pipelines.md for every field and default.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from enum import StrEnum
from typing import Annotated, Any, Literal, TypeVar

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from modelhub.domain.enums import ModelType
from modelhub.domain.hyperparameters import (
    DEFAULT_EPOCHS,
    HYPERPARAMETERS,
    MAX_EPOCHS,
    Hyperparameters,
    ScriptHyperparameters,
    hyperparameter_problems,
)
from modelhub.domain.limits import INT64_MAX
from modelhub.domain.names import (
    check_model_name,
    check_relative_path,
    parse_ref,
    parse_version_number,
)
from modelhub.domain.search import Search, search_problems
from modelhub.domain.trainer_catalog import (
    BUILTIN_TRAINERS,
    MAX_TRAINER_NAME,
    PipelineType,
    TrainerCatalog,
    TrainerName,
    TrainerTraits,
)
from modelhub.errors import InvalidInput

E = TypeVar("E", bound=StrEnum)
T = TypeVar("T")


class Priority(StrEnum):
    LOW = "low"
    NORMAL = "normal"
    HIGH = "high"
    URGENT = "urgent"


UNSUPPORTED_TYPES: frozenset[PipelineType] = frozenset()
NEEDS_BASE_MODEL = frozenset(
    {
        PipelineType.FINE_TUNING,
        PipelineType.TRANSFER_LEARNING,
        PipelineType.REINFORCEMENT_LEARNING,
    }
)
FORBIDS_BASE_MODEL = frozenset({PipelineType.PRE_TRAINING})

# Hyperparameters with a known meaning for every trainer, checked when present.
POSITIVE_NUMBER_HPS = ("learning_rate", "lr")
POSITIVE_INT_HPS = ("batch_size",)
UNIT_INTERVAL_HPS = ("dropout",)
NON_NEGATIVE_HPS = ("weight_decay",)
RESERVED_HPS = {"epochs": "max_epochs", "seed": "seed", "validation_split": "validation_split"}

_UNITS = {
    "": 1,
    "B": 1,
    "K": 1000,
    "KB": 1000,
    "KI": 1024,
    "KIB": 1024,
    "M": 1000**2,
    "MB": 1000**2,
    "MI": 1024**2,
    "MIB": 1024**2,
    "G": 1000**3,
    "GB": 1000**3,
    "GI": 1024**3,
    "GIB": 1024**3,
    "T": 1000**4,
    "TB": 1000**4,
    "TI": 1024**4,
    "TIB": 1024**4,
}
_MEMORY = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([A-Za-z]*)\s*$", re.ASCII)
MAX_MEMORY = 1024**5  # 1 PiB: more than any one host; a bound before the arithmetic
MAX_SEED = 2**32 - 1  # every random generator the trainers use takes it
MAX_WORKERS = 64  # data-parallel workers of one run
MAX_CLIENTS = 1000  # federated clients of one run
MAX_ROUNDS = 10_000
_DIRICHLET = re.compile(r"^dirichlet\(\s*([0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)\s*\)$", re.ASCII)


def parse_memory(value: object) -> int:
    """Bytes from 2147483648, "512MiB", "2GiB", "2Gi", "1G" (1000**3) or "1.5GB".

    Binary units (KiB/Ki, MiB/Mi, GiB/Gi, TiB/Ti) are powers of 1024; K, M, G, T
    (with or without B) are powers of 1000, as Kubernetes reads them.
    """
    if isinstance(value, bool):
        raise ValueError("expected a size such as 512MiB or 2GiB")
    if isinstance(value, int):
        return _bounded_memory(value)
    if not isinstance(value, str):
        raise ValueError("expected a size such as 512MiB or 2GiB")
    match = _MEMORY.match(value)
    unit = match.group(2).upper() if match else None
    if match is None or unit not in _UNITS:
        raise ValueError(f"unreadable size {value!r}: use a number with B, KiB, MiB, GiB, G ...")
    if len(match.group(1)) > 32:
        raise ValueError(f"memory must be at most {MAX_MEMORY} bytes (1 PiB)")
    return _bounded_memory(float(match.group(1)) * _UNITS[unit])


def _bounded_memory(size: float) -> int:
    if not size > 0:
        raise ValueError("memory must be positive")
    if size > MAX_MEMORY:
        raise ValueError(f"memory must be at most {MAX_MEMORY} bytes (1 PiB)")
    return max(1, int(size))


Memory = Annotated[int, BeforeValidator(parse_memory)]


class SpecModel(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class DatasetRef(SpecModel):
    """A registered dataset: `name` (latest), `name@latest` or `name@3`."""

    name: str
    version: int | None = Field(default=None, ge=1, le=INT64_MAX, description="None: latest.")
    partition_by: str | None = Field(
        default=None, min_length=1, max_length=256, description="federated: one client a value."
    )
    partition: str | None = Field(
        default=None, description="federated: iid (default) or dirichlet(alpha) over the label."
    )

    @field_validator("partition")
    @classmethod
    def _partition(cls, partition: str | None) -> str | None:
        if partition is None or partition == "iid":
            return partition
        if dirichlet_alpha(partition) is None:
            shown = partition if len(partition) <= 30 else partition[:30] + "..."
            raise ValueError(f"partition {shown!r}: use iid or dirichlet(alpha), alpha above 0")
        return partition

    @model_validator(mode="after")
    def _one_partitioning(self) -> DatasetRef:
        if self.partition_by is not None and self.partition is not None:
            raise ValueError("set partition_by or partition, not both")
        return self

    @property
    def partitioned(self) -> bool:
        return self.partition_by is not None or self.partition is not None

    @model_validator(mode="before")
    @classmethod
    def _from_text(cls, value: Any) -> Any:
        if not isinstance(value, str):
            return value
        name, _, selector = value.partition("@")
        if selector in ("", "latest"):
            return {"name": name}
        try:
            return {"name": name, "version": parse_version_number(selector, "datasets")}
        except InvalidInput:
            shown = selector if len(selector) <= 30 else selector[:30] + "..."
            raise ValueError(
                f"invalid dataset version {shown!r}: use a number (1 to 2**63 - 1) or latest"
            ) from None

    @field_validator("name")
    @classmethod
    def _name(cls, name: str) -> str:
        return _checked(check_model_name, name)

    def __str__(self) -> str:
        return f"{self.name}@{self.version if self.version is not None else 'latest'}"


class Tokenize(SpecModel):
    step: Literal["tokenize"]
    column: str = "text"
    lowercase: bool = True
    max_length: int = Field(default=128, ge=1, le=65536)
    vocab_size: int | None = Field(default=None, ge=2)


class Normalize(SpecModel):
    step: Literal["normalize"]
    columns: list[str] | None = Field(default=None, description="None: every numeric column.")
    method: Literal["standard", "minmax"] = "standard"


class Dedupe(SpecModel):
    step: Literal["dedupe"]
    columns: list[str] | None = Field(default=None, description="None: the whole row.")
    keep: Literal["first", "last"] = "first"


class Filter(SpecModel):
    step: Literal["filter"]
    column: str
    op: Literal["==", "!=", "<", "<=", ">", ">=", "in", "not_in", "not_null"]
    value: Any = None

    @model_validator(mode="after")
    def _value_fits_op(self) -> Filter:
        if self.op == "not_null" and self.value is not None:
            raise ValueError("op not_null takes no value")
        if self.op in ("in", "not_in") and not isinstance(self.value, list):
            raise ValueError(f"op {self.op} needs a list value")
        if self.op not in ("in", "not_in", "not_null") and not isinstance(
            self.value, str | int | float
        ):
            raise ValueError(f"op {self.op} needs a number or text value")
        return self


PreprocessingStep = Annotated[Tokenize | Normalize | Dedupe | Filter, Field(discriminator="step")]


class KeepBest(SpecModel):
    metric: str = Field(min_length=1)
    mode: Literal["min", "max"] = "min"


class CheckpointPolicy(SpecModel):
    every_steps: int | None = Field(default=None, ge=1)
    every_epoch: bool = True
    keep_last: int = Field(default=3, ge=1, le=1000)
    keep_best: KeepBest | None = None

    @model_validator(mode="after")
    def _some_trigger(self) -> CheckpointPolicy:
        if self.every_steps is None and not self.every_epoch:
            raise ValueError("set every_steps, every_epoch: true, or both")
        return self


class Resources(SpecModel):
    cpus: float = Field(default=1.0, gt=0, le=1024)
    memory: Memory = 2 * 1024**3
    gpus: int = Field(default=0, ge=0, le=64)


class ResultModel(SpecModel):
    """The registered model that each successful run adds a version to."""

    name: str
    type: ModelType | None = Field(default=None, description="None: from the trainer.")
    description: str = ""
    trust: bool = Field(
        default=False,
        description="register each result trusted (a pickle output); needs models.trust",
    )

    @field_validator("name")
    @classmethod
    def _name(cls, name: str) -> str:
        return _checked(check_model_name, name)


def dirichlet_alpha(partition: str) -> float | None:
    """alpha of "dirichlet(alpha)" when it is a positive number up to 1000, else None."""
    match = _DIRICHLET.match(partition)
    if match is None or len(match.group(1)) > 32:
        return None
    alpha = float(match.group(1))
    return alpha if 0 < alpha <= 1000 else None


class Distributed(SpecModel):
    """Data-parallel training: `workers` processes, DistributedDataParallel over `backend`.

    `resources` are per worker; the scheduler reserves every worker's share at once.
    """

    workers: int = Field(ge=1, le=MAX_WORKERS)
    backend: Literal["gloo", "nccl"] = "gloo"


MAX_ENGINE_NAME = 100


class Engine(StrEnum):
    """The built-in engines: this host's processes, or a Ray cluster (the [distributed]
    extra). An installed executor plugin adds an engine of its own name (docs/plugins.md);
    the service checks that a spec's engine is one this server offers."""

    LOCAL = "local"
    RAY = "ray"


class FederatedStrategy(StrEnum):
    FEDAVG = "fedavg"
    FEDPROX = "fedprox"
    FEDADAM = "fedadam"
    FEDMEDIAN = "fedmedian"
    FEDTRIMMEDAVG = "fedtrimmedavg"


class DifferentialPrivacy(SpecModel):
    """Central DP with fixed clipping: each client's update clipped to `clipping_norm`,
    Gaussian noise of `noise_multiplier` x `clipping_norm` added to the aggregate."""

    noise_multiplier: float = Field(ge=0, le=100)
    clipping_norm: float = Field(gt=0, le=1e6)


MAX_SUPERLINK_ADDRESS = 260  # a DNS name (253) and a port
_HOST_PORT = re.compile(
    r"(?P<host>[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?|\[[0-9A-Fa-f:.]+\])"
    r":(?P<port>[0-9]{1,5})"
)


class Federated(SpecModel):
    """Federated learning with Flower: `clients` train on their own partition each round."""

    clients: int = Field(ge=1, le=MAX_CLIENTS)
    rounds: int = Field(ge=1, le=MAX_ROUNDS)
    fraction_fit: float = Field(default=1.0, gt=0, le=1)
    fraction_evaluate: float = Field(default=1.0, ge=0, le=1)
    strategy: FederatedStrategy = FederatedStrategy.FEDAVG
    min_available_clients: int | None = Field(default=None, ge=1, le=MAX_CLIENTS)
    min_fit_clients: int | None = Field(default=None, ge=1, le=MAX_CLIENTS)
    local_epochs: int = Field(default=1, ge=1, le=1000)
    proximal_mu: float = Field(default=0.1, ge=0, le=1e6, description="fedprox only.")
    trim_beta: float = Field(default=0.2, gt=0, lt=0.5, description="fedtrimmedavg only.")
    server_learning_rate: float = Field(default=0.1, gt=0, le=100, description="fedadam only.")
    differential_privacy: DifferentialPrivacy | None = None
    superlink: str | None = Field(
        default=None,
        max_length=MAX_SUPERLINK_ADDRESS,
        description="host:port of a running Flower SuperLink's HTTP API; None: simulation.",
    )

    @field_validator("superlink")
    @classmethod
    def _superlink(cls, address: str | None) -> str | None:
        return None if address is None else check_superlink_address(address)


def check_superlink_address(address: str) -> str:
    """`host:port` (an IPv6 host in brackets), the port 1-65535; ValueError otherwise."""
    match = _HOST_PORT.fullmatch(address)
    if match is None:
        raise ValueError("superlink must be host:port, e.g. 127.0.0.1:9091 or [::1]:9091")
    if not 1 <= int(match["port"]) <= 65535:
        raise ValueError(f"superlink's port must be 1-65535, not {match['port']}")
    return address


class Script(SpecModel):
    path: str
    entrypoint: str = Field(default="train", pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")

    @field_validator("path")
    @classmethod
    def _path(cls, path: str) -> str:
        checked = _checked(check_relative_path, path)
        if not checked.endswith(".py"):
            raise ValueError("the script must be a .py file")
        return checked


class PipelineSpec(SpecModel):
    """A training recipe, as written in pipeline.yaml."""

    name: str
    description: str = ""
    type: PipelineType
    trainer: str = Field(
        min_length=1,
        max_length=MAX_TRAINER_NAME,
        description="a built-in trainer or an installed plugin's (see docs/plugins.md)",
    )
    base_model: str | None = Field(default=None, description="name@alias in the registry.")
    datasets: list[DatasetRef] = Field(min_length=1)
    preprocessing: list[PreprocessingStep] = Field(default_factory=list)
    validation_split: float = Field(default=0.2, gt=0, lt=1)
    seed: int = Field(default=0, ge=0, le=MAX_SEED)
    augmentation: dict[str, Any] | None = None
    hyperparameters: dict[str, Any] = Field(default_factory=dict)
    max_epochs: int = Field(default=DEFAULT_EPOCHS, ge=1, le=MAX_EPOCHS)
    checkpoint: CheckpointPolicy = Field(default_factory=CheckpointPolicy)
    resources: Resources = Field(default_factory=Resources)
    priority: Priority = Priority.NORMAL
    result_model: ResultModel
    script: Script | None = None
    distributed: Distributed | None = None
    engine: str | None = Field(
        default=None,
        min_length=1,
        max_length=MAX_ENGINE_NAME,
        pattern=r"^[A-Za-z0-9_.-]+$",
        description="local, ray or an installed executor plugin's; None: the scheduler chooses.",
    )
    federated: Federated | None = None
    search: Search | None = Field(default=None, description="What `modelhub tune` searches.")

    @field_validator("name")
    @classmethod
    def _name(cls, name: str) -> str:
        return _checked(check_model_name, name)

    @field_validator("base_model")
    @classmethod
    def _base_model(cls, ref: str | None) -> str | None:
        return None if ref is None else str(_checked(parse_ref, ref))

    @model_validator(mode="before")
    @classmethod
    def _default_result_type(cls, data: Any, info: ValidationInfo) -> Any:
        if not isinstance(data, Mapping):
            return data
        result, trainer = data.get("result_model"), data.get("trainer")
        traits = catalog_of(info).traits.get(trainer) if isinstance(trainer, str) else None
        if isinstance(result, Mapping) and result.get("type") is None and traits is not None:
            return {**data, "result_model": {**result, "type": traits.result_type}}
        return data

    def trainer_hyperparameters(self) -> Hyperparameters:
        """The hyperparameters as a built-in trainer's typed model (checked when the spec
        was); a plugin trainer's as a free model: its own model lives in the plugin."""
        model = HYPERPARAMETERS.get(self.trainer, ScriptHyperparameters)
        return model.model_validate(self.hyperparameters)

    @model_validator(mode="after")
    def _rules(self, info: ValidationInfo) -> PipelineSpec:
        problems = spec_problems(self.model_dump(mode="json"), catalog_of(info))
        if problems:
            raise PydanticCustomError(
                "pipeline_rules",
                "{summary}",
                {"summary": "; ".join(f"{path}: {msg}" for path, msg in problems)},
            )
        return self


def catalog_of(info: ValidationInfo) -> TrainerCatalog:
    """The trainers a validation was given (`context={"trainers": catalog}`), else the
    built-ins alone."""
    context = info.context
    given = context.get("trainers") if isinstance(context, Mapping) else None
    return given if isinstance(given, TrainerCatalog) else BUILTIN_TRAINERS


def spec_problems(
    data: Mapping[str, Any], trainers: TrainerCatalog = BUILTIN_TRAINERS
) -> list[tuple[str, str]]:
    """Cross-field rule breaks as (field path, message), read from raw spec data.

    `trainers` are the trainers the spec may name (the training layer passes the
    installed ones, plugins included). Fields whose own values are malformed are
    skipped here: their per-field error already says what is wrong.
    """
    problems: list[tuple[str, str]] = []
    kind = _member(PipelineType, data.get("type"))
    name = data.get("trainer")
    traits: TrainerTraits | None = None
    if isinstance(name, str) and 0 < len(name) <= MAX_TRAINER_NAME:
        traits = trainers.traits.get(name)
        unusable = trainers.problem(name)
        if unusable is not None:
            problems.append(("trainer", unusable))
    trainer = name if traits is not None else None
    base = data.get("base_model")
    if kind in UNSUPPORTED_TYPES:
        problems.append(("type", f"{kind} is not yet supported; use one of: " + _supported()))
    elif kind in NEEDS_BASE_MODEL and base is None:
        problems.append(("base_model", f"{kind} starts from a base model: set name@alias"))
    elif kind in FORBIDS_BASE_MODEL and base is not None:
        problems.append(("base_model", f"{kind} trains from scratch: remove base_model"))
    if traits is not None and kind is not None and kind not in UNSUPPORTED_TYPES:
        allowed = traits.pipeline_types
        if kind not in allowed:
            problems.append(("trainer", f"{trainer} cannot run {kind}; it runs: {_join(allowed)}"))
    if trainer == TrainerName.SCRIPT and data.get("script") is None:
        problems.append(("script", "the script trainer needs script.path (and entrypoint)"))
    elif trainer not in (None, TrainerName.SCRIPT) and data.get("script") is not None:
        problems.append(("script", f"only the script trainer takes a script, not {trainer}"))
    if traits is not None and not traits.builtin and kind is PipelineType.FEDERATED_LEARNING:
        # Flower's clients train the built-in tabular network (training/federated).
        problems.append(("trainer", "a federated run trains with the built-in tabular_classifier"))
    if traits is not None and not traits.data_parallel and data.get("distributed") is not None:
        problems.append(("distributed", f"the {trainer} trainer does not train data-parallel"))
    problems += _dataset_problems(data.get("datasets"))
    problems += _parallel_problems(data, kind)
    hps = data.get("hyperparameters", {})
    plain = _hyperparameter_problems(hps)
    problems += plain
    if traits is not None and isinstance(hps, Mapping):
        reported = {path for path, _ in plain}
        problems += [
            (path, message)
            for path, message in hyperparameter_problems(traits.hyperparameters, dict(hps))
            if path.partition("[")[0] not in reported
        ]
    if isinstance(hps, Mapping):
        model = traits.hyperparameters if traits is not None else None
        problems += search_problems(data.get("search"), model, hps)
    return problems


def _dataset_problems(datasets: object) -> list[tuple[str, str]]:
    if not isinstance(datasets, list):
        return []
    seen: dict[str, int] = {}
    problems = []
    for index, ref in enumerate(datasets):
        name = ref.partition("@")[0] if isinstance(ref, str) else None
        if isinstance(ref, Mapping) and isinstance(ref.get("name"), str):
            name = ref["name"]
        if name is None:
            continue
        if name in seen:
            problems.append((f"datasets[{index}]", f"{name} is already datasets[{seen[name]}]"))
        seen.setdefault(name, index)
    return problems


def _parallel_problems(data: Mapping[str, Any], kind: PipelineType | None) -> list[tuple[str, str]]:
    """Rules of `distributed`, `federated` and dataset partitions, across fields."""
    problems: list[tuple[str, str]] = []
    distributed, federated = data.get("distributed"), data.get("federated")
    resources = data.get("resources")
    gpus = resources.get("gpus", 0) if isinstance(resources, Mapping) else 0
    nccl = isinstance(distributed, Mapping) and distributed.get("backend") == "nccl"
    if nccl and not (isinstance(gpus, int) and gpus >= 1):
        problems.append(
            ("distributed.backend", "nccl runs on GPUs: set resources.gpus, or use gloo")
        )
    if kind is PipelineType.FEDERATED_LEARNING:
        if federated is None:
            problems.append(("federated", "federated_learning needs a federated section"))
        if distributed is not None:
            problems.append(("distributed", "a federated run cannot also be data-parallel"))
        if data.get("engine") == Engine.RAY.value:
            problems.append(
                (
                    "engine",
                    "a federated run trains on the local engine: Flower's simulation "
                    "starts a Ray of its own",
                )
            )
    elif federated is not None:
        problems.append(("federated", "only type federated_learning takes a federated section"))
    if isinstance(federated, Mapping):
        clients = federated.get("clients")
        for key in ("min_available_clients", "min_fit_clients"):
            least = federated.get(key)
            if isinstance(least, int) and isinstance(clients, int) and least > clients:
                problems.append((f"federated.{key}", f"{least} is more than the {clients} clients"))
    datasets = data.get("datasets")
    if isinstance(datasets, list):
        for index, ref in enumerate(datasets):
            partitioned = isinstance(ref, Mapping) and (
                ref.get("partition_by") is not None or ref.get("partition") is not None
            )
            if partitioned and kind is not PipelineType.FEDERATED_LEARNING:
                problems.append(
                    (f"datasets[{index}]", "only a federated_learning run partitions its data")
                )
        if kind is PipelineType.FEDERATED_LEARNING and len(datasets) > 1:
            problems.append(("datasets", "a federated run reads one dataset, partitioned"))
    return problems


def _hyperparameter_problems(hps: object) -> list[tuple[str, str]]:
    if not isinstance(hps, Mapping):
        return []
    problems: list[tuple[str, str]] = []
    for key, value in hps.items():
        path = f"hyperparameters.{key}"
        if key in RESERVED_HPS:
            problems.append((path, f"set the top-level {RESERVED_HPS[key]} instead"))
        elif not _plain(value):
            problems.append((path, "use a number, text, true/false, or a list of those"))
        elif key in POSITIVE_NUMBER_HPS and not (_number(value) and value > 0):
            problems.append((path, "must be a number greater than 0"))
        elif key in POSITIVE_INT_HPS and not (
            isinstance(value, int) and not isinstance(value, bool) and value >= 1
        ):
            problems.append((path, "must be a whole number of at least 1"))
        elif key in UNIT_INTERVAL_HPS and not (_number(value) and 0 <= value < 1):
            problems.append((path, "must be at least 0 and below 1"))
        elif key in NON_NEGATIVE_HPS and not (_number(value) and value >= 0):
            problems.append((path, "must be a number of at least 0"))
    return problems


def _plain(value: object) -> bool:
    if isinstance(value, list):
        return all(_plain(item) and not isinstance(item, list) for item in value)
    return value is None or isinstance(value, str | int | float | bool)


def _number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _member(enum: type[E], value: object) -> E | None:
    try:
        return enum(value) if isinstance(value, str) else None
    except ValueError:
        return None


def _supported() -> str:
    return _join(set(PipelineType) - UNSUPPORTED_TYPES)


def _join(kinds: set[PipelineType] | frozenset[PipelineType]) -> str:
    return ", ".join(sorted(kinds))


def _checked(check: Callable[[str], T], value: str) -> T:
    """Run a names.py check, turning its InvalidInput into the ValueError pydantic collects."""
    try:
        return check(value)
    except InvalidInput as exc:
        raise ValueError(exc.message) from None


# PipelineType and TrainerName moved to trainer_catalog; spec readers still find them here.
__all__ = ["PipelineSpec", "PipelineType", "TrainerName", "spec_problems"]
