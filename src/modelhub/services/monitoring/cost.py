"""What runs, deployments and stored bytes cost, measured, and the budgets that watch it.

A run costs its measured CPU-seconds and GPU-seconds (training/usage.py) at the price
table's rates; a deployment its replica-seconds (replica spans the supervisor's reports
open and close); stored bytes their GB-months. A cost in a window counts the part of
each run's running time, each replica's life and the storage's month inside it. Runs
and deployments belong to the model they train or serve and carry its tags.

Budgets (per tag, user or model) count this calendar month's spend; the budget check
(`check_budgets`, every `cost_check_seconds` in a server) fires an alert at 80 % and
at 100 %, once per threshold per budget and month (the store's claim makes it once
across restarts and servers).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Protocol

from modelhub.domain.auth import Action, Caller, parse_duration
from modelhub.domain.cost import (
    Budget,
    BudgetRequest,
    BudgetScope,
    BudgetStatus,
    CostReport,
    CostRow,
    CostSummary,
    PlatformFigures,
    Prices,
    check_grouping,
)
from modelhub.domain.deployments import Deployment
from modelhub.domain.monitoring import Window
from modelhub.domain.records import RegisteredModel
from modelhub.domain.runs import Run
from modelhub.monitoring.budgets import crossed, month_label, month_of
from modelhub.monitoring.figures import replica_seconds
from modelhub.monitoring.pricing import (
    combine,
    compute_parts,
    overlap_seconds,
    replica_parts,
    storage_parts,
    summarize,
)
from modelhub.services.auth import AuthService
from modelhub.services.monitoring.platform_figures import FiguresReader
from modelhub.settings import Settings
from modelhub.stores.artifacts.base import ArtifactStore
from modelhub.stores.metadata.base import AuditDraft, MetadataStore

log = logging.getLogger("modelhub.cost")

Clock = Callable[[], datetime]


class AlertSink(Protocol):
    """Where budget alerts go: lane alerts' `AlertService` (`fire`/`resolve`)."""

    def fire(
        self, subject: str, rule: str, severity: str, message: str, labels: dict[str, str]
    ) -> object: ...

    def resolve(self, subject: str, rule: str) -> None: ...


class TrafficCounts(Protocol):
    """Requests served per deployment version in a window: lane history's `counts`."""

    def counts(self, deployment: str, version: int, window: Window) -> tuple[int, int]: ...


class StoreAlerts:
    """The default sink: the metadata store's alerts (what `runs show` lists), until the
    alert engine is wired in its place."""

    def __init__(self, metadata: MetadataStore) -> None:
        self.metadata = metadata

    def fire(
        self, subject: str, rule: str, severity: str, message: str, labels: dict[str, str]
    ) -> object:
        return self.metadata.fire_alert(subject, rule, severity, message)

    def resolve(self, subject: str, rule: str) -> None:
        self.metadata.resolve_alerts(subject, rule)


def _utcnow() -> datetime:
    return datetime.now(UTC)


def prices_of(settings: Settings) -> Prices:
    return Prices(
        cpu_hour=settings.cpu_hour_price,
        gpu_hour=settings.gpu_hour_price,
        replica_hour=settings.replica_hour_price,
        storage_gb_month=settings.storage_gb_month_price,
        currency=settings.currency,
    )


class CostService:
    def __init__(
        self,
        settings: Settings,
        metadata: MetadataStore,
        artifacts: ArtifactStore,
        auth: AuthService,
        alerts: AlertSink | None = None,
        traffic: TrafficCounts | None = None,
        clock: Clock = _utcnow,
        training_cpus: Callable[[], float] = lambda: 1.0,
    ) -> None:
        self.metadata = metadata
        self.artifacts = artifacts
        self.auth = auth
        self.prices = prices_of(settings)
        self.alerts: AlertSink = alerts or StoreAlerts(metadata)
        self.traffic = traffic
        self.clock = clock
        self.check_seconds = settings.cost_check_seconds
        self.figures = FiguresReader(
            metadata, training_cpus, clock, settings.cost_figures_cache_seconds
        )
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- what things cost (other services call these) --------------------------------

    def run_cost(self, run_id: int) -> CostSummary:
        """A run's whole measured cost, with the estimate made before it ran beside it."""
        run = self.metadata.get_run(run_id)
        return self._run_summary(run, None)

    def deployment_cost(self, name: str, window: Window) -> CostSummary:
        """Replica cost of a deployment in `window`, per 1,000 requests where it served."""
        return self._deployment_summary(self.metadata.get_deployment(name), window)

    def model_cost(self, model: str, window: Window) -> CostSummary:
        """Runs that train `model`, deployments that serve it and its stored versions."""
        found = self.metadata.get_model(model)
        return self._model_summary(found, window, self._runs(), self._deployments())

    def platform_figures(self, window: Window) -> PlatformFigures:
        """Training success, queue wait, job time and utilisation per engine and for the
        platform, and deployment uptime, in `window`."""
        return self.figures.figures(window)

    def cached_platform_figures(self, length_seconds: float) -> PlatformFigures:
        """The figures of the last `length_seconds`, reused for a short while (/metrics)."""
        return self.figures.cached(length_seconds)

    def platform_figures_for(self, caller: Caller, since: str = "24h") -> PlatformFigures:
        self.auth.authorize(caller, Action.TRAINING_READ)
        return self.platform_figures(self.window(since))

    # -- the report --------------------------------------------------------------------

    def window(self, since: str) -> Window:
        """The window from `since` ago ("30d", "24h") until now."""
        return Window.last(parse_duration(since, field="since"), self.clock())

    def report(self, caller: Caller, since: str = "30d", by: str = "model") -> CostReport:
        """Cost in the last `since` grouped by model, deployment, run, user or tag:KEY."""
        self.auth.authorize(caller, Action.MODELS_READ)
        check_grouping(by)
        window = self.window(since)
        rows = self._rows(window, by)
        stored, saved = self._storage_totals()
        return CostReport(
            by=by,
            currency=self.prices.currency,
            window_start=window.start,
            window_end=window.end,
            total=sum(row.cost.total for row in rows),
            rows=sorted(rows, key=lambda row: (-row.cost.total, row.key)),
            storage_bytes=stored,
            dedup_saved_bytes=saved,
        )

    def run_cost_for(self, caller: Caller, run_id: int) -> CostSummary:
        self.auth.authorize(caller, Action.TRAINING_READ)
        return self.run_cost(run_id)

    def deployment_cost_for(self, caller: Caller, name: str, since: str = "30d") -> CostSummary:
        self.auth.authorize(caller, Action.DEPLOYMENTS_READ)
        return self.deployment_cost(name, self.window(since))

    def _rows(self, window: Window, by: str) -> list[CostRow]:
        runs, deployments = self._runs(), self._deployments()
        if by == "run":
            return [
                CostRow(key=str(run.id), cost=self._run_summary(run, window))
                for run in runs
                if _ran_in(run, window, self.clock())
            ]
        if by == "deployment":
            found = [
                CostRow(key=d.name, cost=self._deployment_summary(d, window)) for d in deployments
            ]
            return [row for row in found if row.cost.replica_seconds > 0]
        models = self.metadata.list_models(include_archived=True)
        if by == "user":
            return self._user_rows(models, runs, deployments, window)
        per_model = [(m, self._model_summary(m, window, runs, deployments)) for m in models]
        if by == "model":
            return [CostRow(key=m.name, cost=cost) for m, cost in per_model]
        key = by.removeprefix("tag:")
        groups: dict[str, list[CostSummary]] = {}
        for model, cost in per_model:
            groups.setdefault(model.tags.get(key, "(untagged)"), []).append(cost)
        return [
            CostRow(key=value, cost=combine(f"tag:{key}={value}", costs, self.prices, window))
            for value, costs in groups.items()
        ]

    def _user_rows(
        self,
        models: list[RegisteredModel],
        runs: list[Run],
        deployments: list[Deployment],
        window: Window,
    ) -> list[CostRow]:
        users = {r.created_by for r in runs} | {d.created_by for d in deployments}
        users |= {m.owner for m in models}
        return [
            CostRow(key=user, cost=self._user_summary(user, models, runs, deployments, window))
            for user in sorted(users)
        ]

    # -- summaries ---------------------------------------------------------------------

    def _run_summary(self, run: Run, window: Window | None) -> CostSummary:
        usage = self.metadata.run_usage([run.id]).get(run.id)
        share = 1.0 if window is None else _run_share(run, window, self.clock())
        cpu = usage.cpu_seconds * share if usage else 0.0
        gpu = usage.gpu_seconds * share if usage else 0.0
        estimate = run.inputs.get("estimate", {}).get("cost")
        notes = [] if usage else ["no measured use yet: the run has not started"]
        return summarize(
            f"run:{run.id}",
            compute_parts(cpu, gpu, self.prices),
            self.prices,
            window,
            cpu_seconds=cpu,
            gpu_seconds=gpu,
            estimate=float(estimate) if isinstance(estimate, int | float) else None,
            notes=notes,
        )

    def _deployment_summary(self, deployment: Deployment, window: Window) -> CostSummary:
        now = self.clock()
        spans = self.metadata.replica_spans(window.start, window.end, deployment.name)
        seconds = replica_seconds(spans, window, now)
        requests, notes = self._requests(deployment, window, seconds)
        return summarize(
            f"deployment:{deployment.name}",
            replica_parts(seconds, self.prices),
            self.prices,
            window,
            replica_seconds=seconds,
            requests=requests,
            notes=notes,
        )

    def _requests(
        self, deployment: Deployment, window: Window, seconds: float
    ) -> tuple[int, list[str]]:
        usage = self.metadata.deployment_usage(deployment.name)
        if self.traffic is not None:
            served = sum(self.traffic.counts(deployment.name, u.version, window)[0] for u in usage)
            return served, []
        total = sum(u.requests for u in usage)
        life = Window(deployment.created_at, max(self.clock(), window.end))
        lived = replica_seconds(
            self.metadata.replica_spans(life.start, life.end, deployment.name), life, self.clock()
        )
        if lived <= 0 or seconds >= lived:
            return total, []
        note = "requests since the deployment began, spread evenly over its replica time"
        return round(total * seconds / lived), [note]

    def _model_summary(
        self,
        model: RegisteredModel,
        window: Window,
        runs: list[Run],
        deployments: list[Deployment],
    ) -> CostSummary:
        parts = [self._run_summary(r, window) for r in runs if r.result_model == model.name]
        parts = [p for p in parts if p.total > 0 or p.cpu_seconds > 0]
        parts += [self._deployment_summary(d, window) for d in deployments if d.model == model.name]
        parts.append(self._storage_summary(model.name, window))
        return combine(f"model:{model.name}", parts, self.prices, window)

    def _user_summary(
        self,
        user: str,
        models: list[RegisteredModel],
        runs: list[Run],
        deployments: list[Deployment],
        window: Window,
    ) -> CostSummary:
        parts = [self._run_summary(r, window) for r in runs if r.created_by == user]
        parts += [self._deployment_summary(d, window) for d in deployments if d.created_by == user]
        parts += [self._storage_summary(m.name, window) for m in models if m.owner == user]
        return combine(f"user:{user}", parts, self.prices, window)

    def _storage_summary(self, model: str, window: Window) -> CostSummary:
        """The model's unique blobs for the window's share of a month; what its versions
        would take without deduplication minus that is what deduplication saved."""
        blobs: dict[str, int] = {}
        listed = 0
        for version in self.metadata.list_versions(model):
            listed += version.size
            for entry in version.files:
                blobs[entry.digest] = entry.size
        stored = sum(blobs.values())
        return summarize(
            f"storage:{model}",
            storage_parts(stored, window.seconds, self.prices),
            self.prices,
            window,
            storage_bytes=stored,
            dedup_saved_bytes=max(0, listed - stored),
        )

    def _storage_totals(self) -> tuple[int, int]:
        """Bytes in the artifact store, and what deduplication saved over versions and
        datasets (their summed sizes minus the unique blobs they refer to)."""
        stored = sum(blob.size for blob in self.artifacts.list_blobs())
        listed, unique = 0, dict[str, int]()
        for model in self.metadata.list_models(include_archived=True):
            for version in self.metadata.list_versions(model.name):
                listed += version.size
                unique |= {entry.digest: entry.size for entry in version.files}
        for dataset in self.metadata.list_datasets():
            listed += dataset.size
            unique[dataset.digest] = dataset.size
        return stored, max(0, listed - sum(unique.values()))

    def _runs(self) -> list[Run]:
        return self.metadata.list_runs()

    def _deployments(self) -> list[Deployment]:
        return self.metadata.list_deployments(include_stopped=True)

    # -- budgets -----------------------------------------------------------------------

    def set_budget(self, caller: Caller, request: BudgetRequest) -> Budget:
        """A monthly budget for a tag, a user or a model (admins only)."""
        self.auth.authorize(caller, Action.COST_MANAGE)
        scope, key, value = request.target()
        if scope is BudgetScope.MODEL:
            self.metadata.get_model(value)  # NotFound names it
        target = f"tag:{key}={value}" if key else f"{scope.value}:{value}"
        audit = AuditDraft(
            caller.name,
            "cost.budget.set",
            target,
            {"monthly": request.monthly, "currency": self.prices.currency},
        )
        return self.metadata.create_budget(
            scope, key, value, request.monthly, self.prices.currency, caller.name, audit
        )

    def remove_budget(self, caller: Caller, budget_id: int) -> Budget:
        self.auth.authorize(caller, Action.COST_MANAGE)
        audit = AuditDraft(caller.name, "cost.budget.remove", f"budget:{budget_id}", {})
        return self.metadata.delete_budget(budget_id, audit)

    def list_budgets(self, caller: Caller) -> list[BudgetStatus]:
        """Every budget with this month's spend so far and the thresholds alerted."""
        self.auth.authorize(caller, Action.MODELS_READ)
        return self._statuses(self.clock())

    def _statuses(self, now: datetime) -> list[BudgetStatus]:
        budgets = self.metadata.list_budgets()
        if not budgets:
            return []
        month = Window(month_of(now).start, now)
        fired = self.metadata.budget_alerts(month_label(now))
        runs, deployments = self._runs(), self._deployments()
        models = self.metadata.list_models(include_archived=True)
        statuses = []
        for budget in budgets:
            spent = self._spent(budget, month, models, runs, deployments)
            statuses.append(
                BudgetStatus(
                    budget=budget,
                    month=month_label(now),
                    spent=spent,
                    ratio=spent / budget.monthly,
                    fired=fired.get(budget.id, []),
                )
            )
        return statuses

    def _spent(
        self,
        budget: Budget,
        month: Window,
        models: list[RegisteredModel],
        runs: list[Run],
        deployments: list[Deployment],
    ) -> float:
        if budget.scope is BudgetScope.USER:
            return self._user_summary(budget.value, models, runs, deployments, month).total
        chosen: Iterable[RegisteredModel] = (
            [m for m in models if m.name == budget.value]
            if budget.scope is BudgetScope.MODEL
            else [m for m in models if m.tags.get(budget.key) == budget.value]
        )
        return sum(self._model_summary(m, month, runs, deployments).total for m in chosen)

    def check_budgets(self) -> list[tuple[Budget, int]]:
        """Alert each threshold this month's spend has reached, once per month; returns
        the (budget, threshold) pairs alerted by this call."""
        now = self.clock()
        label = month_label(now)
        alerted: list[tuple[Budget, int]] = []
        for status in self._statuses(now):
            budget = status.budget
            for threshold in crossed(status.spent, budget.monthly):
                if not self.metadata.claim_budget_alert(budget.id, label, threshold, now):
                    continue
                self.alerts.fire(
                    f"budget:{budget.id}",
                    f"budget_{threshold}",
                    "critical" if threshold >= 100 else "warning",
                    f"{budget.label} has spent {status.spent:.2f} {budget.currency} of its "
                    f"{budget.monthly:.2f} monthly budget in {label} ({status.ratio:.0%})",
                    {
                        "budget": str(budget.id),
                        "scope": budget.label,
                        "month": label,
                        "threshold": str(threshold),
                    },
                )
                alerted.append((budget, threshold))
        return alerted

    # -- the background check ------------------------------------------------------------

    def start(self) -> None:
        """Check budgets every `cost_check_seconds` until `stop`."""
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="cost-budgets", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None

    def _loop(self) -> None:
        while not self._stop.wait(self.check_seconds):
            try:
                self.check_budgets()
            except Exception:
                log.exception("budget check failed")


def _run_share(run: Run, window: Window, now: datetime) -> float:
    """The part of the run's running time inside `window` (its use is spread evenly)."""
    if run.started_at is None:
        return 0.0
    end = run.finished_at or now
    length = (end - run.started_at).total_seconds()
    if length <= 0:
        return 1.0 if window.start <= run.started_at < window.end else 0.0
    return overlap_seconds(run.started_at, end, window) / length


def _ran_in(run: Run, window: Window, now: datetime) -> bool:
    return _run_share(run, window, now) > 0
