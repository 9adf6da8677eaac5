"""How the CLI shows pipelines, estimates and runs, and follows a run live."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from rich.table import Table

from modelhub.cli.render import console, human_size

if TYPE_CHECKING:
    from modelhub.client.contract import ModelhubClient
    from modelhub.domain.estimates import Estimate
    from modelhub.domain.runs import Alert, Checkpoint, Pipeline, Run, RunEvent
    from modelhub.errors import ModelhubError

QUEUED_ONLY = "queued; a modelhub server on this home will run it"
HIDDEN_METRICS = ("learning_rate", "samples_per_s")  # in `runs show`, not the live line
LIVE_METRICS = 4
BAR_WIDTH = 30


def estimate_lines(estimate: Estimate) -> list[str]:
    lines = [
        f"estimate: {human_size(estimate.memory_bytes)} memory on {estimate.device_class}, "
        f"about {duration(estimate.seconds)}, "
        f"{money(estimate.cost)} {estimate.currency} ("
        + ", ".join(
            f"{part.replace('_', '/')} {money(value)}" for part, value in estimate.breakdown.items()
        )
        + ")",
    ]
    lines.append(engine_line(estimate))
    lines += [f"warning: {w}" for w in estimate.warnings]
    if estimate.notes:
        lines.append(f"notes: {estimate.notes}")
    return lines


def engine_line(estimate: Estimate) -> str:
    """Which engine a run would go to and when it could start."""
    workers = f", {estimate.workers} workers" if estimate.workers > 1 else ""
    if estimate.engine is None:
        return f"engine: none of this server's engines can hold the run{workers}"
    if estimate.start_in_seconds is None:
        start = "unknown (the engine is offline or the queue never frees enough)"
    elif estimate.start_in_seconds < 1:
        start = "now"
    else:
        start = f"in about {duration(estimate.start_in_seconds)}"
    return f"engine: {estimate.engine}{workers}; estimated start: {start}"


def money(amount: float) -> str:
    return "0" if amount == 0 else "<0.01" if amount < 0.01 else f"{amount:,.2f}"


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 1:
        return f"{max(seconds, 0.0):.1f}s"
    whole = round(seconds)
    if whole < 60:
        return f"{whole}s"
    minutes, secs = divmod(whole, 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


def pipelines_table(pipelines: list[Pipeline]) -> Table:
    table = Table()
    table.add_column("pipeline", no_wrap=True, style="bold")
    for column in ("ver", "type", "trainer", "priority", "result model", "owner", "updated"):
        table.add_column(column)
    for p in pipelines:
        table.add_row(
            p.name,
            str(p.version),
            p.type,
            p.trainer,
            p.priority.value,
            str(p.spec.get("result_model", {}).get("name", "-")),
            p.created_by,
            f"{p.updated_at:%Y-%m-%d %H:%M} by {p.updated_by}",
        )
    return table


def runs_table(runs: list[Run]) -> Table:
    table = Table()
    table.add_column("run", style="bold")
    for column in ("pipeline", "status", "progress", "priority", "attempts", "result", "created"):
        table.add_column(column)
    for r in runs:
        table.add_row(
            str(r.id),
            f"{r.pipeline}@{r.pipeline_version}",
            r.status.value,
            f"{r.progress:.0f}%",
            r.priority.value,
            f"{r.attempts}/{r.max_attempts}",
            f"{r.result_model}@{r.result_version}" if r.result_version else "-",
            f"{r.created_at:%Y-%m-%d %H:%M} by {r.created_by}",
        )
    return table


def run_details(run: Run, checkpoints: list[Checkpoint], alerts: list[Alert]) -> Table:
    table = Table(show_header=False, title=f"run {run.id}")
    table.add_column("field", style="bold")
    table.add_column("value")
    where = f"epoch {run.epoch}, " if run.epoch is not None else ""
    steps = f"{run.step}/{run.total_steps}" if run.total_steps else str(run.step)
    rows = [
        ("pipeline", f"{run.pipeline}@{run.pipeline_version}"),
        ("status", run.status.value + (" (cancel requested)" if run.cancel_requested else "")),
        ("progress", f"{run.progress:.1f}%: {where}step {steps}"),
        ("eta", duration(run.eta_seconds) if run.status.value == "running" else "-"),
        ("priority", run.priority.value),
        ("attempts", f"{run.attempts} of {run.max_attempts}"),
        ("metrics", "\n".join(f"{k} = {v:.6g}" for k, v in sorted(run.metrics.items())) or "-"),
        ("result", f"{run.result_model}@{run.result_version}" if run.result_version else "-"),
        ("error", f"{run.error} ({run.error_code})" if run.error else "-"),
        ("alerts", "\n".join(f"[{a.severity}] {a.message} ({a.state})" for a in alerts) or "-"),
        (
            "checkpoints",
            "\n".join(
                f"step {c.step}{' (best)' if c.best else ''}  {human_size(c.size)}"
                for c in checkpoints
            )
            or "-",
        ),
        ("created", f"{run.created_at:%Y-%m-%d %H:%M:%S} by {run.created_by}"),
        ("finished", f"{run.finished_at:%Y-%m-%d %H:%M:%S}" if run.finished_at else "-"),
    ]
    for name, value in rows:
        table.add_row(name, value)
    return table


@dataclass
class LiveState:
    """What the progress line shows, folded from a run's events."""

    status: str
    progress: float = 0.0
    epoch: int | None = None
    step: int = 0
    total_steps: int | None = None
    eta_seconds: float | None = None
    metrics: dict[str, float] = field(default_factory=dict)

    @classmethod
    def of(cls, run: Run) -> LiveState:
        return cls(
            run.status.value,
            run.progress,
            run.epoch,
            run.step,
            run.total_steps,
            run.eta_seconds,
            dict(run.metrics),
        )

    def apply(self, event: RunEvent) -> str | None:
        """Fold `event` in; return a line worth printing above the bar, if any."""
        data = event.data
        if event.kind == "progress":
            self.progress = float(data.get("progress", self.progress))
            self.epoch = data.get("epoch", self.epoch)
            self.step = int(data.get("step", self.step))
            self.total_steps = data.get("total_steps", self.total_steps)
            self.eta_seconds = data.get("eta_seconds", self.eta_seconds)
        elif event.kind == "metrics":
            for point in data.get("points", []):
                self.metrics[point["name"]] = float(point["value"])
        elif event.kind == "status":
            self.status = str(data.get("status", self.status))
            if self.status == "completed":
                self.progress = 100.0
            return status_line(data)
        elif event.kind == "alert":
            return f"alert [{data.get('severity')}] {data.get('message')}"
        elif event.kind == "preprocessing":
            return "preprocessed " + ", ".join(
                f"{name}: {r.get('rows_in')} -> {r.get('rows_out')} rows"
                for name, r in data.items()
            )
        return None

    def detail(self) -> str:
        parts = [self.status]
        if self.epoch is not None:
            parts.append(f"epoch {self.epoch}")
        if self.step or self.total_steps:
            parts.append(f"step {self.step}/{self.total_steps or '?'}")
        if self.status == "running" and self.eta_seconds is not None:
            parts.append(f"ETA {duration(self.eta_seconds)}")
        shown = [(k, v) for k, v in self.metrics.items() if k not in HIDDEN_METRICS]
        parts += [f"{k} {v:.4g}" for k, v in shown[:LIVE_METRICS]]
        return "  ".join(parts)


def status_line(data: dict[str, Any]) -> str:
    status = str(data.get("status"))
    line = status
    if "attempt" in data:
        line += f" (attempt {data['attempt']})"
    if data.get("result_version") is not None:
        line += f": result version {data['result_version']}"
    if data.get("reason"):
        line += f": {data['reason']}"
    if data.get("retry_in") is not None:
        line += f" (retry in {data['retry_in']:g} s)"
    return line


def follow(client: ModelhubClient, run_id: int, as_json: bool, show_logs: bool) -> Run:
    """Show the run's events (a progress bar, or JSON lines) until it ends; the final run."""
    if as_json:
        for event in client.run_events(run_id):
            print(json.dumps(event.model_dump(mode="json"), sort_keys=True), flush=True)
        return client.get_run(run_id)
    from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn
    from rich.table import Column

    state = LiveState.of(client.get_run(run_id))
    title = f"run {run_id}"
    room = max(console.width - len(title) - BAR_WIDTH - 12, 10)  # the rest of the line
    columns = (
        TextColumn("[bold]{task.description}", table_column=Column(min_width=len(title))),
        BarColumn(bar_width=BAR_WIDTH),
        TaskProgressColumn(),
        TextColumn("{task.fields[detail]}", table_column=Column(no_wrap=True, max_width=room)),
    )
    with Progress(*columns, console=console) as progress:
        task = progress.add_task(
            title, total=100, completed=round(state.progress), detail=state.detail()
        )
        for event in client.run_events(run_id):
            if event.kind == "log":
                if show_logs:
                    progress.console.print(
                        event.data["text"], end="", markup=False, highlight=False
                    )
                continue
            line = state.apply(event)
            if line:
                progress.console.print(f"run {run_id}: {line}", markup=False, highlight=False)
            progress.update(task, completed=state.progress, detail=state.detail())
    return client.get_run(run_id)


def wait(client: ModelhubClient, run_id: int) -> Run:
    """Follow the run silently until it ends; the final run."""
    for _ in client.run_events(run_id):
        pass
    return client.get_run(run_id)


def outcome_error(run: Run) -> ModelhubError | None:
    """The error a command ends with when its run did not complete, else None."""
    from modelhub.errors import ModelhubError, error_from_dict

    if run.status.value == "completed":
        return None
    if run.status.value == "failed":
        return error_from_dict(
            {"code": run.error_code or "error", "message": f"run {run.id} failed: {run.error}"}
        )
    if run.status.value == "cancelled":
        reason = f": {run.error}" if run.error else ""
        return ModelhubError(f"run {run.id} was cancelled{reason}")
    return ModelhubError(f"run {run.id} is {run.status.value}")
