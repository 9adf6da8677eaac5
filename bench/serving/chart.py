"""The chart: p50 and p99 latency against concurrency for every server, and throughput.

matplotlib with the Agg canvas (no pyplot, no display). Left: latency in ms (log
scale) against wrk's connections (log scale), p50 solid and p99 dashed, one colour
per server, and the raw forward pass at batch 1 as a dotted floor. Right:
requests/s at one concurrency (32 by default), one bar per server.

    python bench/serving/chart.py RESULTS.json [OUT.png]   # redraw from a saved run
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

BAR_CONCURRENCY = 32


def write_chart(
    points: Sequence[dict[str, Any]],
    path: Path,
    raw_b1_us: float | None = None,
    title: str = "Model A (32 -> 64 -> 10 MLP), wrk on 127.0.0.1",
    bar_concurrency: int = BAR_CONCURRENCY,
    highlight: str | None = None,
) -> Path:
    """Draw the chart from the per-point result dicts (server, concurrency, rps, p50_ms...)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    servers: list[str] = []
    for point in points:
        if point["server"] not in servers:
            servers.append(point["server"])
    figure = Figure(figsize=(12, 5), dpi=120, layout="constrained")
    FigureCanvasAgg(figure)
    latency_ax, bar_ax = figure.subplots(1, 2, width_ratios=[3, 2])
    colours = [f"C{i}" for i in range(10)]
    concurrencies: set[int] = set()
    for i, server in enumerate(servers):
        mine = sorted((p for p in points if p["server"] == server), key=lambda p: p["concurrency"])
        xs = [p["concurrency"] for p in mine]
        concurrencies.update(xs)
        colour = colours[i % len(colours)]
        latency_ax.plot(xs, [p["p50_ms"] for p in mine], "o-", color=colour, label=f"{server} p50")
        latency_ax.plot(
            xs, [p["p99_ms"] for p in mine], "s--", color=colour, alpha=0.7, label=f"{server} p99"
        )
    if raw_b1_us is not None:
        latency_ax.axhline(
            raw_b1_us / 1000, color="grey", linestyle=":", label="raw forward, batch 1"
        )
    latency_ax.set_xscale("log", base=2)
    latency_ax.set_yscale("log")
    latency_ax.set_xticks(sorted(concurrencies), [str(c) for c in sorted(concurrencies)])
    latency_ax.set_xlabel("concurrency (open connections)")
    latency_ax.set_ylabel("latency (ms, log scale)")
    latency_ax.set_title("latency vs concurrency (p50 solid, p99 dashed)")
    latency_ax.grid(True, which="both", alpha=0.3)
    latency_ax.legend(fontsize=7, ncols=2)

    bars = [
        (server, point["rps"])
        for server in servers
        for point in points
        if point["server"] == server and point["concurrency"] == bar_concurrency
    ]
    if bars:
        names = [name for name, _ in bars]
        values = [value for _, value in bars]
        bar_colours = [colours[servers.index(name) % len(colours)] for name in names]
        drawn = bar_ax.bar(range(len(bars)), values, color=bar_colours)
        bar_ax.bar_label(drawn, labels=[f"{v:,.0f}" for v in values], fontsize=8)
        bar_ax.set_xticks(range(len(bars)), names, rotation=20, ha="right", fontsize=8)
    bar_ax.set_ylabel("requests/s")
    bar_ax.set_title(f"throughput at concurrency {bar_concurrency}")
    bar_ax.grid(True, axis="y", alpha=0.3)
    figure.suptitle(title)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(str(path))
    return path


def main(argv: list[str]) -> None:
    results = json.loads(Path(argv[0]).read_text())
    out = Path(argv[1]) if len(argv) > 1 else Path(argv[0]).with_suffix(".png")
    raw = results.get("summary", {}).get("raw_us", {})
    write_chart(
        results["points"], out, raw.get("torch_b1"), highlight=results["summary"].get("ours")
    )
    print(out)


if __name__ == "__main__":
    main(sys.argv[1:])
