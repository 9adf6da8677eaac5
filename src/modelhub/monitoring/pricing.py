"""Cost arithmetic: measured use times the price table, and time clipped to windows.

cpu       = cpu_seconds / 3600 x cpu_hour
gpu       = gpu_seconds / 3600 x gpu_hour
replicas  = replica_seconds / 3600 x replica_hour
storage   = bytes / 10**9 x storage_gb_month x window_seconds / (30 days)
per 1,000 requests = total / requests x 1000 (only where requests > 0)
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from modelhub.domain.cost import CostParts, CostSummary, Prices
from modelhub.domain.monitoring import Window

HOUR = 3600.0
GB = 10**9
MONTH_SECONDS = 30 * 86400.0


def compute_parts(cpu_seconds: float, gpu_seconds: float, prices: Prices) -> CostParts:
    return CostParts(
        cpu=cpu_seconds / HOUR * prices.cpu_hour, gpu=gpu_seconds / HOUR * prices.gpu_hour
    )


def replica_parts(replica_seconds: float, prices: Prices) -> CostParts:
    return CostParts(replicas=replica_seconds / HOUR * prices.replica_hour)


def storage_parts(stored_bytes: int, seconds: float, prices: Prices) -> CostParts:
    return CostParts(storage=stored_bytes / GB * prices.storage_gb_month * seconds / MONTH_SECONDS)


def per_thousand(total: float, requests: int | None) -> float | None:
    if not requests:
        return None
    return total / requests * 1000.0


def overlap_seconds(start: datetime, end: datetime, window: Window) -> float:
    """Seconds of [start, end) that fall inside `window` (0 when they do not meet)."""
    lo, hi = max(start, window.start), min(end, window.end)
    return max(0.0, (hi - lo).total_seconds())


def union_seconds(intervals: Iterable[tuple[datetime, datetime]], window: Window) -> float:
    """Seconds of `window` covered by at least one interval (overlaps counted once)."""
    clipped = sorted(
        (max(a, window.start), min(b, window.end))
        for a, b in intervals
        if min(b, window.end) > max(a, window.start)
    )
    total, current_start, current_end = 0.0, None, None
    for a, b in clipped:
        if current_end is None or a > current_end:
            if current_start is not None and current_end is not None:
                total += (current_end - current_start).total_seconds()
            current_start, current_end = a, b
        else:
            current_end = max(current_end, b)
    if current_start is not None and current_end is not None:
        total += (current_end - current_start).total_seconds()
    return total


def summarize(
    subject: str,
    parts: CostParts,
    prices: Prices,
    window: Window | None = None,
    **figures: object,
) -> CostSummary:
    """One CostSummary: `parts` priced, its total, and the measured figures beside it."""
    requests = figures.get("requests")
    total = parts.total
    return CostSummary.model_validate(
        {
            "subject": subject,
            "currency": prices.currency,
            "total": total,
            "parts": parts,
            "window_start": window.start if window else None,
            "window_end": window.end if window else None,
            "per_1000_requests": per_thousand(
                total, requests if isinstance(requests, int) else None
            ),
            **figures,
        }
    )


def combine(
    subject: str, summaries: Iterable[CostSummary], prices: Prices, window: Window
) -> CostSummary:
    """The sum of several summaries (a model's runs, deployments and storage)."""
    parts = CostParts()
    cpu = gpu = replica = 0.0
    stored = 0
    requests: int | None = None
    saved: int | None = None
    for item in summaries:
        parts = parts.plus(item.parts)
        cpu += item.cpu_seconds
        gpu += item.gpu_seconds
        replica += item.replica_seconds
        stored += item.storage_bytes
        if item.requests is not None:
            requests = (requests or 0) + item.requests
        if item.dedup_saved_bytes is not None:
            saved = (saved or 0) + item.dedup_saved_bytes
    return summarize(
        subject,
        parts,
        prices,
        window,
        cpu_seconds=cpu,
        gpu_seconds=gpu,
        replica_seconds=replica,
        storage_bytes=stored,
        requests=requests,
        dedup_saved_bytes=saved,
    )
