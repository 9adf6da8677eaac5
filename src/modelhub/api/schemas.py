"""Request bodies of the REST API. Responses are the domain records themselves."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from modelhub.domain.auth import TokenInfo
from modelhub.domain.deployments import (
    AnalysisMode,
    Autoscale,
    Deployment,
    Environment,
    LoadBalancing,
    UsageRecord,
)
from modelhub.domain.estimates import Estimate
from modelhub.domain.limits import (
    MAX_YAML_CHARS,
    PositiveInt64,
    non_finite_number,
    unencodable_text,
)
from modelhub.domain.pipelines import Priority
from modelhub.domain.predictions import PredictionLogPolicy
from modelhub.domain.records import Lineage, ModelVersion
from modelhub.domain.runs import Pipeline


class Body(BaseModel):
    """A request body: unknown fields, and text or numbers no database can store, are refused."""

    model_config = ConfigDict(extra="forbid")

    @model_validator(mode="before")
    @classmethod
    def _storable(cls, data: Any) -> Any:
        where = unencodable_text(data)
        if where is not None:
            raise ValueError(f"{where}: text holds a lone surrogate, which is not valid Unicode")
        where = non_finite_number(data)
        if where is not None:
            raise ValueError(f"{where}: numbers must be finite (no NaN or Infinity)")
        return data


class RegisterFields(Body):
    """What a registration says besides its files (the one-request route's header)."""

    type: str | None = None
    framework: str | None = None
    description: str = ""
    license: str | None = None
    tags: dict[str, str] = Field(default_factory=dict)
    label: str | None = None
    trust: bool = False
    lineage: Lineage | None = None
    metrics: dict[str, float] = Field(default_factory=dict)
    model_card: str | None = None
    private_inputs: list[str] = Field(
        default_factory=list, description="Inputs the prediction log never writes."
    )


class RegisterBody(RegisterFields):
    upload_id: str


class ImportBody(RegisterFields):
    name: str = Field(max_length=100)
    path: str = Field(
        max_length=4096,
        description="A model file or folder on the server, inside one of its import folders "
        "(MODELHUB_IMPORT_DIRS).",
    )


class StageBody(Body):
    stage: str
    force: bool = Field(default=False, description="Skip the approval gate (admins only).")


class NoteBody(Body):
    note: str | None = None


class AliasBody(Body):
    version: PositiveInt64


class ArchiveBody(Body):
    restore: bool = False


class CardBody(Body):
    text: str


class ModelPatchBody(Body):
    description: str | None = None
    license: str | None = None
    tags: dict[str, str] | None = None


class UploadStarted(BaseModel):
    upload_id: str


class VersionList(BaseModel):
    items: list[ModelVersion]
    total: int


class Deleted(BaseModel):
    deleted: str


class GcResult(BaseModel):
    blobs_deleted: int
    bytes_freed: int
    blobs_kept_young: int


class UserBody(Body):
    name: str
    role: str


class UserPatchBody(Body):
    role: str | None = None
    disabled: bool | None = None


class TokenBody(Body):
    user: str | None = None
    expires: str | None = Field(
        default=None,
        description="Lifetime such as 30d, 12h; default MODELHUB_TOKEN_DEFAULT_TTL.",
    )
    scope: str = Field(default="write", description="read or write")
    description: str = ""


class TokenCreated(BaseModel):
    token: str = Field(description="The secret; shown this once, never stored.")
    info: TokenInfo


class DatasetBody(Body):
    upload_id: str
    format: str | None = Field(
        default=None, description="csv, jsonl or parquet; default from the name"
    )
    description: str = ""


class PipelineBody(Body):
    spec: str = Field(description="pipeline.yaml, as text.", max_length=MAX_YAML_CHARS)
    files: dict[str, str] = Field(
        default_factory=dict,
        description="Files the spec names, by path relative to pipeline.yaml: "
        "the script of a `script` pipeline.",
    )


class PipelineCreated(BaseModel):
    pipeline: Pipeline
    estimate: Estimate


class StartBody(Body):
    priority: Priority | None = Field(default=None, description="Default: the spec's.")


class DeployBody(Body):
    model: str = Field(description="What to serve: NAME, NAME@VERSION or NAME@ALIAS.")
    environment: Environment = Environment.DEVELOPMENT
    replicas: int | None = Field(default=None, description="Default 1, or autoscale's minimum.")
    autoscale: Autoscale | None = None
    name: str | None = Field(
        default=None, description="Default: the model's name in production, NAME-ENV elsewhere."
    )
    load_balancing: LoadBalancing = LoadBalancing.ROUND_ROBIN
    resources: dict[str, Any] = Field(default_factory=dict)
    override_approval: bool = Field(
        default=False, description="Serve an unapproved version in production (admins only)."
    )
    prediction_log: PredictionLogPolicy | None = Field(
        default=None, description="Share of requests logged; default: the server's setting."
    )
    optimize: bool = Field(
        default=False,
        description="Serve the version's optimised variant within tolerance with the lowest "
        "measured latency (the reply's `optimisation` says which and why).",
    )
    pool: str | None = Field(
        default=None,
        max_length=64,
        description="Place it on this shared model pool (`shared`) instead of its own "
        "replicas: loaded on demand, evicted least-recently-used.",
    )


class ScaleBody(Body):
    replicas: int


class UpdateBody(Body):
    version: str = Field(description="A version number or alias of the deployed model.")
    canary: int | None = Field(
        default=None, description="Percent of requests the new version takes first (1-99)."
    )
    override_approval: bool = Field(
        default=False, description="Roll out an unapproved version in production (admins only)."
    )
    analysis: AnalysisMode = Field(
        default=AnalysisMode.MANUAL,
        description="`auto`: promote or roll back the canary on its measured results; "
        "`manual`: a person does.",
    )
    min_requests: int | None = Field(
        default=None, description="Canary requests before the automated analysis decides."
    )
    max_duration: str | None = Field(
        default=None,
        description="How long the automated analysis may wait for them (e.g. 30m); "
        "past it, the decision is inconclusive.",
    )
    alpha: float | None = Field(
        default=None, description="Significance level of the automated analysis' tests."
    )


class DeploymentDetail(BaseModel):
    deployment: Deployment
    usage: list[UsageRecord]
