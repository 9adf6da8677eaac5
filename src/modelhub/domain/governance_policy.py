"""The governance policy: what a version needs before each stage, as validated YAML.

A policy has defaults (what every stage requires, who approves, the thresholds, the
license allowlist) and rules, each matching models by type and/or tags and overriding
parts of the defaults; matching rules apply in order, a later one winning field by
field. `requirements(model_type, tags, stage)` is the one question the gate asks.
docs/governance.md explains the file and the default line by line.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from modelhub.domain.auth import Role
from modelhub.domain.enums import ModelType, Stage
from modelhub.domain.governance import ReviewKind
from modelhub.domain.limits import load_yaml_mapping
from modelhub.errors import InvalidInput

POLICY_FORMAT = 1
GATED_STAGES = (Stage.STAGING, Stage.PRODUCTION)

Fraction = Annotated[float, Field(ge=0.0, le=1.0)]


class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Approvals(_Strict):
    """How many reviewers must approve, with which roles, and whether the creator counts."""

    count: int = Field(default=1, ge=1, le=10)
    roles: list[Role] = Field(default_factory=lambda: [Role.ADMIN, Role.DATA_SCIENTIST])
    creator_may_approve: bool = False

    @field_validator("roles")
    @classmethod
    def _some_role(cls, roles: list[Role]) -> list[Role]:
        if not roles:
            raise ValueError("name at least one role that may approve")
        return roles


class ApprovalsOverride(_Strict):
    count: int | None = Field(default=None, ge=1, le=10)
    roles: list[Role] | None = None
    creator_may_approve: bool | None = None


class StageRule(_Strict):
    requires: list[ReviewKind] = Field(default_factory=list)


class BiasThresholds(_Strict):
    """Fairlearn's figures a bias assessment must stay within (differences at most,
    ratio at least); groups smaller than min_group_size are reported, not judged."""

    demographic_parity_difference: Fraction = 0.1
    demographic_parity_ratio: Fraction = 0.8
    equalized_odds_difference: Fraction = 0.1
    min_group_size: int = Field(default=30, ge=1, le=1_000_000)


class ExplainabilityThresholds(_Strict):
    """Integrated Gradients' convergence delta (relative to the output) at most this."""

    max_convergence_delta: Fraction = 0.05
    min_rows: int = Field(default=50, ge=1, le=1_000_000)


class Thresholds(_Strict):
    bias: BiasThresholds = Field(default_factory=BiasThresholds)
    explainability: ExplainabilityThresholds = Field(default_factory=ExplainabilityThresholds)


class ThresholdsOverride(_Strict):
    bias: BiasThresholds | None = None
    explainability: ExplainabilityThresholds | None = None


DEFAULT_LICENSES = [
    "apache-2.0",
    "mit",
    "bsd-2-clause",
    "bsd-3-clause",
    "cc-by-4.0",
    "cc0-1.0",
    "openrail",
]


class Match(_Strict):
    """Which models a rule is for: any of `types`, and every tag in `tags`."""

    types: list[ModelType] = Field(default_factory=list)
    tags: dict[str, str] = Field(default_factory=dict)

    def matches(self, model_type: ModelType, tags: dict[str, str]) -> bool:
        if self.types and model_type not in self.types:
            return False
        return all(tags.get(key) == value for key, value in self.tags.items())


class Rule(_Strict):
    name: str = Field(min_length=1, max_length=100)
    match: Match
    stages: dict[Stage, StageRule] = Field(default_factory=dict)
    approvals: ApprovalsOverride | None = None
    thresholds: ThresholdsOverride | None = None
    licenses: list[str] | None = None

    @field_validator("stages")
    @classmethod
    def _gated(cls, stages: dict[Stage, StageRule]) -> dict[Stage, StageRule]:
        return _only_gated(stages)


class Requirements(_Strict):
    """What one version needs before one stage, the policy resolved for its model."""

    stage: Stage
    requires: list[ReviewKind]
    approvals: Approvals
    thresholds: Thresholds
    licenses: list[str]
    rules: list[str] = Field(default_factory=list, description="The rules that matched.")

    @property
    def assessments(self) -> list[ReviewKind]:
        return [kind for kind in self.requires if kind is not ReviewKind.APPROVAL]


class Policy(_Strict):
    format: int = POLICY_FORMAT
    stages: dict[Stage, StageRule] = Field(default_factory=dict)
    approvals: Approvals = Field(default_factory=Approvals)
    thresholds: Thresholds = Field(default_factory=Thresholds)
    licenses: list[str] = Field(default_factory=lambda: list(DEFAULT_LICENSES))
    rules: list[Rule] = Field(default_factory=list, max_length=200)

    @field_validator("format")
    @classmethod
    def _known_format(cls, value: int) -> int:
        if value != POLICY_FORMAT:
            raise ValueError(f"unknown policy format {value}; this server reads format 1")
        return value

    @field_validator("stages")
    @classmethod
    def _gated(cls, stages: dict[Stage, StageRule]) -> dict[Stage, StageRule]:
        return _only_gated(stages)

    def requirements(
        self, model_type: ModelType, tags: dict[str, str], stage: Stage
    ) -> Requirements:
        requires = list(self.stages.get(stage, StageRule()).requires)
        approvals, thresholds, licenses = self.approvals, self.thresholds, list(self.licenses)
        matched = []
        for rule in self.rules:
            if not rule.match.matches(model_type, tags):
                continue
            matched.append(rule.name)
            if stage in rule.stages:
                requires = list(rule.stages[stage].requires)
            if rule.approvals is not None:
                given = rule.approvals.model_dump(exclude_none=True)
                approvals = approvals.model_copy(update=given)
            if rule.thresholds is not None:
                given = {k: v for k, v in vars(rule.thresholds).items() if v is not None}
                thresholds = thresholds.model_copy(update=given)
            if rule.licenses is not None:
                licenses = list(rule.licenses)
        return Requirements(
            stage=stage,
            requires=list(dict.fromkeys(requires)),
            approvals=approvals,
            thresholds=thresholds,
            licenses=licenses,
            rules=matched,
        )


def _only_gated(stages: dict[Stage, StageRule]) -> dict[Stage, StageRule]:
    for stage in stages:
        if stage not in GATED_STAGES:
            raise ValueError(f"stage {stage.value} has no gate; only staging and production do")
    return stages


def parse_policy(text: str) -> Policy:
    """A policy from YAML text; InvalidInput listing every problem, each under its path."""
    data = load_yaml_mapping(text, "policy", "policy")
    try:
        return Policy.model_validate(data)
    except ValidationError as exc:
        errors = [_problem(error) for error in exc.errors()]
        listed = "; ".join(f"{e['field']}: {e['message']}" for e in errors[:5])
        more = f" (and {len(errors) - 5} more)" if len(errors) > 5 else ""
        raise InvalidInput(
            f"invalid policy: {listed}{more}", {"field": "policy", "errors": errors}
        ) from None


def _problem(error: Any) -> dict[str, str]:
    path = ".".join(str(part) for part in error["loc"]) or "policy"
    message = str(error["msg"]).removeprefix("Value error, ")
    if error["type"] == "enum" and "requires" in path:
        kinds = ", ".join(kind.value for kind in ReviewKind)
        message = f"unknown review kind {error['input']!r}; known: {kinds}"
    return {"field": path, "message": message}
