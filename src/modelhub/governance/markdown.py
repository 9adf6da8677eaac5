"""Small Markdown pieces the card and the auditor's report share: escaped cells, figure tables."""

from __future__ import annotations

from typing import Any

MAX_ROWS = 50
MAX_CELL = 200


def cell(value: Any) -> str:
    """One table cell: one line, pipes and HTML brackets escaped, bounded in length."""
    text = f"{value:.4g}" if isinstance(value, float) else " ".join(str(value).split())
    if len(text) > MAX_CELL:
        text = text[: MAX_CELL - 1] + "…"
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("<", "&lt;").replace(">", "&gt;")


def table(header: list[str], rows: list[list[Any]]) -> list[str]:
    lines = ["| " + " | ".join(cell(h) for h in header) + " |", "|" + " --- |" * len(header)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows[:MAX_ROWS]]
    if len(rows) > MAX_ROWS:
        lines.append(f"\n({len(rows) - MAX_ROWS} more rows not shown)")
    return lines


def figures_markdown(figures: dict[str, Any]) -> list[str]:
    """An assessment's figures: scalars as a list, per-group mappings and lists of
    records as tables, anything deeper as its key only."""
    lines: list[str] = []
    scalars = [(k, v) for k, v in figures.items() if isinstance(v, str | int | float | bool)]
    for key, value in scalars:
        lines.append(f"- {cell(key)}: {cell(value)}")
    for key, value in figures.items():
        rows = _records(value)
        if rows is None:
            if not isinstance(value, str | int | float | bool) and value is not None:
                if isinstance(value, list) and all(isinstance(x, str | int | float) for x in value):
                    lines.append(f"- {cell(key)}: {cell(', '.join(str(x) for x in value))}")
                else:
                    lines.append(f"- {cell(key)}: (structured, see the JSON)")
            continue
        header, body = rows
        lines += ["", f"{cell(key)}:", "", *table(header, body)]
    return lines


def _records(value: Any) -> tuple[list[str], list[list[Any]]] | None:
    """A mapping of name -> flat mapping, or a list of flat mappings, as a table."""
    if isinstance(value, dict) and value and all(isinstance(v, dict) for v in value.values()):
        columns = _columns(value.values())
        if columns is None:
            return None
        return ["group", *columns], [
            [k, *(v.get(c, "") for c in columns)] for k, v in value.items()
        ]
    if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
        columns = _columns(value)
        if columns is None:
            return None
        return columns, [[v.get(c, "") for c in columns] for v in value]
    return None


def _columns(items: Any) -> list[str] | None:
    columns: dict[str, None] = {}
    for item in items:
        for key, v in item.items():
            if isinstance(v, dict | list):
                return None
            columns.setdefault(str(key), None)
    return list(columns)[:20]
