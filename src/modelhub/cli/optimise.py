"""`modelhub optimize`: export a version to ONNX, quantise it, measure it, register it."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from modelhub.cli.context import client_session
from modelhub.cli.render import console, human_size, print_json

if TYPE_CHECKING:
    from modelhub.domain.optimisation import OptimisationReport, VariantChoice


def optimize(
    ref: Annotated[
        str, typer.Argument(help="The version to optimise: NAME@VERSION or NAME@ALIAS.")
    ],
    to: Annotated[
        str, typer.Option("--to", help="onnx, int8 or fp16 (fp16 needs a GPU on the server).")
    ],
    calibration: Annotated[
        Path | None,
        typer.Option(
            help="Rows (CSV, JSONL, Parquet) calibrating int8: static quantisation "
            "instead of dynamic.",
            exists=True,
            dir_okay=False,
        ),
    ] = None,
    eval_data: Annotated[
        Path | None,
        typer.Option(
            "--eval",
            help="Labelled rows to measure on instead of the source's validation split.",
            exists=True,
            dir_okay=False,
        ),
    ] = None,
    max_accuracy_drop: Annotated[
        float,
        typer.Option(
            "--max-accuracy-drop",
            help="The largest accuracy drop registered, a fraction 0-1 (0.01: one point).",
        ),
    ] = 0.01,
    force: Annotated[
        bool, typer.Option("--force", help="Register the result even over the tolerance.")
    ] = False,
    json: Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")] = False,
) -> None:
    """Make a smaller or faster version (ONNX, int8, fp16), measured against the source."""
    from modelhub.domain.enums import parse_enum
    from modelhub.domain.optimisation import Target
    from modelhub.services.optimisation import OptimiseRequest

    request = OptimiseRequest(
        ref=ref,
        to=parse_enum(Target, to, "to"),
        max_accuracy_drop=max_accuracy_drop,
        force=force,
    )
    with client_session() as client:
        if json:
            report = client.optimize(request, calibration, eval_data)
        else:
            with console.status(f"optimising {ref} to {to} ...", spinner="dots"):
                report = client.optimize(request, calibration, eval_data)
    if json:
        print_json(report)
        return
    render_report(report)


def render_report(report: OptimisationReport) -> None:
    from rich.table import Table

    before, after = report.before, report.after
    table = Table(title=f"{report.source} -> {report.method.value}")
    table.add_column("")
    table.add_column("source", justify="right")
    table.add_column(report.method.value, justify="right")
    table.add_column("change", justify="right")
    table.add_row(
        "size",
        human_size(before.size_bytes),
        human_size(after.size_bytes),
        _times(report.size_ratio, "smaller", "larger"),
    )
    table.add_row(
        "p50 latency",
        f"{before.p50_ms:.3f} ms",
        f"{after.p50_ms:.3f} ms",
        _times(report.speedup, "faster", "slower"),
    )
    table.add_row(
        before.metric,
        f"{before.value:.4f}",
        f"{after.value:.4f}",
        f"drop {report.accuracy_drop:+.4f} (max {report.max_accuracy_drop:.4f})",
    )
    console.print(table)
    console.print(f"measured on {report.measured_on} ({after.rows} rows)", markup=False)
    console.print(report.reason, markup=False, highlight=False)


def render_choice(choice: VariantChoice) -> None:
    """What `deploy --optimize` chose, one line per variant it weighed."""
    console.print(f"optimise: {choice.reason}", markup=False, highlight=False)
    for verdict in choice.considered:
        mark = "ok" if verdict.qualifies else "no"
        p50 = f"{verdict.p50_ms:.3f} ms" if verdict.p50_ms is not None else "-"
        console.print(
            f"  [{mark}] version {verdict.version} ({verdict.method or '?'}, p50 {p50}): "
            f"{verdict.why}",
            markup=False,
            highlight=False,
        )


def _times(ratio: float, better: str, worse: str) -> str:
    """A ratio of source to result as people say it: 2.00x faster, or 3.70x larger."""
    if ratio >= 1 or ratio <= 0:
        return f"{ratio:.2f}x {better}"
    return f"{1 / ratio:.2f}x {worse}"
