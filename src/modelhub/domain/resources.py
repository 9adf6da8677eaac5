"""What one replica of a deployment may use (memory, CPUs, GPUs), checked before any write.

A deployment's `resources` arrive as a free mapping from the API, the CLI and both
clients; `check_deployment_resources` turns them into `DeploymentResources` or raises
InvalidInput naming the field (an unknown key, a negative or huge number, more CPUs
than the machine has, GPUs on a machine without). The deployment keeps the checked
mapping (`as_record`: memory in bytes), so a limit is read the same way everywhere.

How a limit is enforced (a cgroup v2, or an address-space limit and CPU affinity) is
the engines' business: see `modelhub.limits`.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from modelhub.domain.pipelines import Memory
from modelhub.errors import InvalidInput

MAX_GPUS = 64


class DeploymentResources(BaseModel):
    """Per replica: `memory` (bytes, or "512Mi", "2GiB"), `cpus` (may be fractional:
    the CPUs it is pinned to are rounded up) and `gpus` (whole devices). Unset: no limit."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    memory: Memory | None = None
    cpus: float | None = Field(default=None, gt=0, le=1024, allow_inf_nan=False, strict=True)
    gpus: int = Field(default=0, ge=0, le=MAX_GPUS, strict=True)

    def as_record(self) -> dict[str, Any]:
        """The mapping a deployment stores: only what was set, memory in bytes."""
        return self.model_dump(exclude_defaults=True)

    @property
    def limited(self) -> bool:
        return self.memory is not None or self.cpus is not None or self.gpus > 0


def check_deployment_resources(
    raw: object, machine_cpus: int, machine_gpus: int
) -> DeploymentResources:
    """The checked resources, or InvalidInput naming the first bad field."""
    if raw is None:
        return DeploymentResources()
    if not isinstance(raw, dict):
        raise InvalidInput(
            "resources must be a mapping of memory, cpus and gpus", {"field": "resources"}
        )
    try:
        resources = DeploymentResources.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "resources"
        problem = "unknown field" if first["type"] == "extra_forbidden" else first["msg"]
        raise InvalidInput(
            f"resources.{where}: {problem}", {"field": f"resources.{where}"}
        ) from None
    if resources.cpus is not None and resources.cpus > machine_cpus:
        raise InvalidInput(
            f"resources.cpus: {resources.cpus:g} CPUs asked, this machine has {machine_cpus}",
            {"field": "resources.cpus", "available": machine_cpus},
        )
    if resources.gpus > machine_gpus:
        found = f"this machine has {machine_gpus}" if machine_gpus else "this machine has none"
        raise InvalidInput(
            f"resources.gpus: {resources.gpus} GPUs asked, {found}",
            {"field": "resources.gpus", "available": machine_gpus},
        )
    return resources


def recorded_resources(raw: dict[str, Any]) -> DeploymentResources:
    """The limits of a deployment as stored. One recorded before resources were checked
    may hold anything: its unknown or unreadable keys are left out, not enforced."""
    kept: dict[str, Any] = {}
    for key, value in raw.items():
        if key not in DeploymentResources.model_fields:
            continue
        try:
            DeploymentResources.model_validate({key: value})
        except ValidationError:
            continue
        kept[key] = value
    return DeploymentResources.model_validate(kept)
