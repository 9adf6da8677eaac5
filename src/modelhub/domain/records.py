"""Records every layer exchanges. Stores return these, never ORM rows."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from modelhub.domain.enums import (
    Approval,
    DatasetFormat,
    Framework,
    ModelStatus,
    ModelType,
    Precision,
    Stage,
)


class Record(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class TensorSpec(Record):
    name: str
    dtype: str
    shape: list[int | str] = Field(default_factory=list)
    # An input marked private is never written to the prediction log (logged as null).
    private: bool = False


class Signature(Record):
    inputs: list[TensorSpec] = Field(default_factory=list)
    outputs: list[TensorSpec] = Field(default_factory=list)


class FileEntry(Record):
    """One file of a version: its path inside the version and its content digest."""

    path: str
    digest: str
    size: int


class ResourceEstimate(Record):
    memory_bytes: int
    device_class: str
    notes: str = ""


class Inspection(Record):
    """What reading a model's files (never running them) tells us."""

    framework: Framework
    architecture: str | None = None
    parameters: int | None = None
    precision: Precision = Precision.UNKNOWN
    dtypes: dict[str, int] = Field(default_factory=dict)
    tensor_count: int | None = None
    context_length: int | None = None
    signature: Signature = Field(default_factory=Signature)
    details: dict[str, Any] = Field(default_factory=dict)
    resources: ResourceEstimate | None = None
    requires_trust: bool = False
    pickle_findings: list[str] = Field(default_factory=list)


class Lineage(Record):
    """Where a version came from. For a trained version: run, pipeline, inputs, settings."""

    source_run: str | None = None
    pipeline: str | None = None
    datasets: list[str] = Field(default_factory=list, description="Dataset digests.")
    dataset_versions: list[str] = Field(default_factory=list)
    base_version: str | None = None
    # The version this one was made from by optimisation (quantized, pruned, exported),
    # as NAME@V; kept in the lineage JSON, so no migration.
    optimised_from: str | None = None
    # How it was made (method, tolerance, where it was measured); empty otherwise.
    optimisation: dict[str, Any] = Field(default_factory=dict)
    hyperparameters: dict[str, Any] = Field(default_factory=dict)
    # A federated run's setup (strategy, rounds, clients, partitioning, differential
    # privacy); empty for other versions. Kept in the lineage JSON, so no migration.
    federated: dict[str, Any] = Field(default_factory=dict)


class RegisteredModel(Record):
    name: str
    type: ModelType
    description: str = ""
    owner: str
    license: str | None = None
    tags: dict[str, str] = Field(default_factory=dict)
    status: ModelStatus = ModelStatus.ACTIVE
    created_at: datetime
    updated_at: datetime
    latest_version: int | None = None


class ModelVersion(Record):
    name: str
    version: int
    label: str | None = None
    type: ModelType
    framework: Framework
    architecture: str | None = None
    parameters: int | None = None
    size: int
    precision: Precision = Precision.UNKNOWN
    quantization: str | None = None
    context_length: int | None = None
    digest: str
    files: list[FileEntry] = Field(default_factory=list)
    signature: Signature = Field(default_factory=Signature)
    inspection: dict[str, Any] = Field(default_factory=dict)
    resources: ResourceEstimate | None = None
    lineage: Lineage = Field(default_factory=Lineage)
    metrics: dict[str, float] = Field(default_factory=dict)
    stage: Stage = Stage.DEVELOPMENT
    approval: Approval = Approval.PENDING
    approval_note: str | None = None
    trusted: bool = False
    aliases: list[str] = Field(default_factory=list)
    model_card: str | None = None
    status: ModelStatus = ModelStatus.ACTIVE
    created_at: datetime
    created_by: str


class Dataset(Record):
    """One immutable version of a training dataset, stored like a model file."""

    name: str
    version: int
    format: DatasetFormat
    digest: str
    size: int
    rows: int
    columns: dict[str, str] = Field(default_factory=dict, description="column -> type")
    description: str = ""
    created_at: datetime
    created_by: str


class AuditEvent(Record):
    id: int
    actor: str
    action: str
    target: str
    at: datetime
    details: dict[str, Any] = Field(default_factory=dict)
    request_id: str | None = None


class AuditVerdict(Record):
    """What checking the audit log found: each problem named, never an exception.

    `head_id`/`head_hash` are the end of the chain as read (0 and 64 zeros when
    empty): keep them elsewhere and pass the hash back as `expect_head` later.
    """

    intact: bool
    first_broken_id: int | None = None
    problems: list[str] = Field(default_factory=list)
    events: int = 0
    head_id: int = 0
    head_hash: str = "0" * 64


class AuditPage(Record):
    """A slice of the audit log, newest first, plus how many events matched."""

    items: list[AuditEvent]
    total: int


class Page(Record):
    """A slice of a listing plus the total that matched."""

    items: list[ModelVersion]
    total: int


class ModelSummary(Record):
    """One row of the model-level listing: a model and figures over its live versions."""

    name: str
    type: ModelType
    description: str = ""
    owner: str
    tags: dict[str, str] = Field(default_factory=dict)
    status: ModelStatus = ModelStatus.ACTIVE
    latest_version: int | None = None
    framework: Framework | None = None  # of the latest version
    size: int | None = None  # of the latest version, in bytes
    version_count: int = 0
    stages: list[Stage] = Field(default_factory=list)  # of its versions, each once
    updated_at: datetime


class ModelSummaryPage(Record):
    items: list[ModelSummary]
    total: int
