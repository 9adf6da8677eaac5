"""What a pipeline will need and cost: the record the training service computes and
every transport and client shows (the formulas are in training/estimate.py)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Estimate:
    memory_bytes: int
    device_class: str
    seconds: float
    cost: float
    currency: str
    breakdown: dict[str, float] = field(default_factory=dict)
    storage_bytes: int = 0
    warnings: list[str] = field(default_factory=list)
    notes: str = ""
    workers: int = 1
    engine: str | None = None  # where a run would start: local, ray; None: no engine holds it
    start_in_seconds: float | None = None  # from now, with the queue as it is; None: unknown
