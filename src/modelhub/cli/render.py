"""How the CLI shows records: Rich tables for people, JSON for scripts."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.table import Table

if TYPE_CHECKING:
    from modelhub.domain.records import ModelVersion

console = Console()
err_console = Console(stderr=True)


def print_json(data: Any) -> None:
    if hasattr(data, "model_dump"):
        data = data.model_dump(mode="json")
    elif isinstance(data, list):
        data = [d.model_dump(mode="json") if hasattr(d, "model_dump") else d for d in data]
    print(json.dumps(data, indent=2, sort_keys=True))


def human_size(size: int | None) -> str:
    if size is None:
        return "-"
    value = float(size)
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if value < 1024 or unit == "TB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{size} B"


def human_count(count: int | None) -> str:
    if count is None:
        return "-"
    for threshold, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "K")):
        if count >= threshold:
            return f"{count / threshold:.1f}{suffix}"
    return str(count)


def versions_table(versions: list[ModelVersion], title: str | None = None) -> Table:
    table = Table(title=title)
    table.add_column("model", no_wrap=True, style="bold")
    for column in ("ver", "label", "type", "framework", "params", "size", "stage", "approval"):
        table.add_column(column)
    table.add_column("aliases")
    for v in versions:
        table.add_row(
            v.name,
            str(v.version),
            v.label or "-",
            v.type.value,
            v.framework.value,
            human_count(v.parameters),
            human_size(v.size),
            v.stage.value,
            v.approval.value,
            ", ".join(v.aliases) or "-",
        )
    return table


def version_details(v: ModelVersion) -> Table:
    table = Table(show_header=False, title=f"{v.name} version {v.version}")
    table.add_column("field", style="bold")
    table.add_column("value")
    rows: list[tuple[str, str]] = [
        ("label", v.label or "-"),
        ("type", v.type.value),
        ("framework", v.framework.value),
        ("architecture", v.architecture or "-"),
        ("parameters", f"{v.parameters:,}" if v.parameters is not None else "-"),
        ("size", human_size(v.size)),
        ("precision", v.precision.value),
        ("context length", str(v.context_length or "-")),
        ("digest", f"sha256:{v.digest}"),
        ("stage", v.stage.value),
        ("approval", v.approval.value + (f" ({v.approval_note})" if v.approval_note else "")),
        ("aliases", ", ".join(v.aliases) or "-"),
        ("trusted", "yes" if v.trusted else "no"),
        ("files", "\n".join(f"{f.path}  {human_size(f.size)}" for f in v.files)),
        ("signature", _signature(v)),
        (
            "resources",
            f"{human_size(v.resources.memory_bytes)} on {v.resources.device_class}"
            if v.resources
            else "-",
        ),
        ("lineage", _lineage(v)),
        ("created", f"{v.created_at:%Y-%m-%d %H:%M:%S} by {v.created_by}"),
    ]
    for field, value in rows:
        table.add_row(field, value)
    return table


def _signature(v: ModelVersion) -> str:
    parts = [f"in  {s.name}: {s.dtype}{s.shape}" for s in v.signature.inputs] + [
        f"out {s.name}: {s.dtype}{s.shape}" for s in v.signature.outputs
    ]
    return "\n".join(parts) or "-"


def _lineage(v: ModelVersion) -> str:
    parts = []
    if v.lineage.source_run:
        parts.append(f"run {v.lineage.source_run}")
    if v.lineage.base_version:
        parts.append(f"base {v.lineage.base_version}")
    if v.lineage.datasets:
        parts.append("datasets " + ", ".join(v.lineage.datasets))
    return "; ".join(parts) or "-"
