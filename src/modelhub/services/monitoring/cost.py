"""What runs, deployments and stored bytes cost, measured, and the budgets that watch it.

A run costs its measured CPU-seconds and GPU-seconds (training/usage.py) at the price
table's rates; a deployment its replica-seconds (replica spans the supervisor's reports
open and close); stored bytes their GB-months. A cost in a window counts the part of
each run's running time, each replica's life and the storage's month inside it. Runs
and deployments belong to the model they train or serve and carry its tags.

Budgets (per tag, user or model) count this calendar month's spend with the same
arithmetic; cost_budgets.py watches them. The platform's success figures are read by
platform_figures.py.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from modelhub.domain.auth import Action, Caller
from modelhub.domain.cost import (
    Budget,
    BudgetRequest,
    BudgetScope,
    BudgetStatus,
    CostParts,
    CostReport,
    CostRow,
    CostSummary,
    PlatformFigures,
    Prices,
    RunUsage,
    check_grouping,
)
from modelhub.domain.deployments import Deployment
from modelhub.domain.monitoring import Window, window_since
from modelhub.domain.records import RegisteredModel
from modelhub.domain.runs import Run
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
from modelhub.services.monitoring.alerts import AlertService
from modelhub.services.monitoring.cost_budgets import BudgetWatch
from modelhub.services.monitoring.history import HistoryService
from modelhub.services.monitoring.platform_figures import FiguresReader
from modelhub.settings import Settings
from modelhub.stores.artifacts.base import ArtifactStore
from modelhub.stores.metadata.base import MetadataStore

Clock = Callable[[], datetime]


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


@dataclass(frozen=True)
class Ledger:
    """What one report or budget check reads from the store, read once."""

    models: list[RegisteredModel]
    runs: list[Run]
    deployments: list[Deployment]
    usage: dict[int, RunUsage]


class CostService:
    def __init__(
        self,
        settings: Settings,
        metadata: MetadataStore,
        artifacts: ArtifactStore,
        auth: AuthService,
        alerts: AlertService,
        traffic: HistoryService | None = None,
        clock: Clock = _utcnow,
        training_cpus: Callable[[], float] = lambda: 1.0,
    ) -> None:
        self.metadata = metadata
        self.artifacts = artifacts
        self.auth = auth
        self.prices = prices_of(settings)
        self.traffic = traffic
        self.clock = clock
        self.figures = FiguresReader(
            metadata, training_cpus, clock, settings.cost_figures_cache_seconds
        )
        self.budgets = BudgetWatch(
            metadata,
            auth,
            self.prices.currency,
            self._spend,
            alerts,
            clock,
            settings.cost_check_seconds,
        )

    # -- what things cost (other services call these) --------------------------------

    def run_cost(self, run_id: int) -> CostSummary:
        """A run's whole measured cost, with the estimate made before it ran beside it."""
        run = self.metadata.get_run(run_id)
        return self._run_summary(run, None, self.metadata.run_usage([run_id]))

    def deployment_cost(self, name: str, window: Window) -> CostSummary:
        """Replica cost of a deployment in `window`, per 1,000 requests where it served."""
        return self._deployment_summary(self.metadata.get_deployment(name), window)

    def model_cost(self, model: str, window: Window) -> CostSummary:
        """Runs that train `model`, deployments that serve it and its stored versions."""
        found = self.metadata.get_model(model)
        return self._model_summary(found, window, self.ledger())

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
        return window_since(since, self.clock())

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
        ledger = self.ledger()
        if by == "run":
            return [
                CostRow(key=str(run.id), cost=self._run_summary(run, window, ledger.usage))
                for run in ledger.runs
                if _ran_in(run, window, self.clock())
            ]
        if by == "deployment":
            found = [
                CostRow(key=d.name, cost=self._deployment_summary(d, window))
                for d in ledger.deployments
            ]
            return [row for row in found if row.cost.replica_seconds > 0]
        if by == "user":
            return self._user_rows(ledger, window)
        per_model = [(m, self._model_summary(m, window, ledger)) for m in ledger.models]
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

    def _user_rows(self, ledger: Ledger, window: Window) -> list[CostRow]:
        users = {r.created_by for r in ledger.runs} | {d.created_by for d in ledger.deployments}
        users |= {m.owner for m in ledger.models}
        return [
            CostRow(key=user, cost=self._user_summary(user, ledger, window))
            for user in sorted(users)
        ]

    # -- summaries ---------------------------------------------------------------------

    def _run_summary(
        self, run: Run, window: Window | None, measured: dict[int, RunUsage]
    ) -> CostSummary:
        usage = measured.get(run.id)
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

    def _model_summary(self, model: RegisteredModel, window: Window, ledger: Ledger) -> CostSummary:
        parts = [
            self._run_summary(r, window, ledger.usage)
            for r in ledger.runs
            if r.result_model == model.name
        ]
        parts += [
            self._deployment_summary(d, window) for d in ledger.deployments if d.model == model.name
        ]
        parts.append(self._storage_summary(model.name, window))
        return combine(f"model:{model.name}", parts, self.prices, window)

    def _user_summary(self, user: str, ledger: Ledger, window: Window) -> CostSummary:
        parts = [
            self._run_summary(r, window, ledger.usage) for r in ledger.runs if r.created_by == user
        ]
        parts += [
            self._deployment_summary(d, window) for d in ledger.deployments if d.created_by == user
        ]
        parts += [self._storage_summary(m.name, window) for m in ledger.models if m.owner == user]
        return combine(f"user:{user}", parts, self.prices, window)

    def _storage_summary(self, model: str, window: Window) -> CostSummary:
        """The model's unique blobs, each priced for the part of the window after the
        first version holding it was stored (a version registered an hour ago costs an
        hour, not the whole window); what its versions would take without deduplication
        minus that is what deduplication saved."""
        blobs: dict[str, int] = {}
        stored_at: dict[str, datetime] = {}
        listed = 0
        for version in self.metadata.list_versions(model):
            if version.created_at >= window.end:
                continue  # not stored yet in this window
            listed += version.size
            for entry in version.files:
                blobs[entry.digest] = entry.size
                first = stored_at.get(entry.digest)
                stored_at[entry.digest] = (
                    version.created_at if first is None else min(first, version.created_at)
                )
        parts = CostParts()
        for digest, size in blobs.items():
            held = overlap_seconds(stored_at[digest], window.end, window)
            parts = parts.plus(storage_parts(size, held, self.prices))
        stored = sum(blobs.values())
        return summarize(
            f"storage:{model}",
            parts,
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

    def ledger(self) -> Ledger:
        """Every model, run (with its measured use) and deployment, read once."""
        runs = self.metadata.list_runs()
        return Ledger(
            models=self.metadata.list_models(include_archived=True),
            runs=runs,
            deployments=self.metadata.list_deployments(include_stopped=True),
            usage=self.metadata.run_usage(),
        )

    # -- budgets -----------------------------------------------------------------------

    def set_budget(self, caller: Caller, request: BudgetRequest) -> Budget:
        """A monthly budget for a tag, a user or a model (admins only; audited)."""
        return self.budgets.set(caller, request)

    def remove_budget(self, caller: Caller, budget_id: int) -> Budget:
        """Remove a budget (admins only; audited); NotFound names it."""
        return self.budgets.remove(caller, budget_id)

    def list_budgets(self, caller: Caller) -> list[BudgetStatus]:
        """Every budget with this month's spend so far and the thresholds alerted."""
        self.auth.authorize(caller, Action.MODELS_READ)
        return self.budgets.statuses(self.clock())

    def check_budgets(self) -> list[tuple[Budget, int]]:
        """Alert the 80 % and 100 % thresholds reached this month, once each."""
        return self.budgets.check()

    def start(self) -> None:
        """Check budgets every `cost_check_seconds` until `stop` (the server's lifespan)."""
        self.budgets.start()

    def stop(self) -> None:
        self.budgets.stop()

    def _spend(self, budgets: Sequence[Budget], month: Window) -> list[float]:
        ledger = self.ledger()
        return [self._spent(budget, month, ledger) for budget in budgets]

    def _spent(self, budget: Budget, month: Window, ledger: Ledger) -> float:
        if budget.scope is BudgetScope.USER:
            return self._user_summary(budget.value, ledger, month).total
        chosen = [
            m
            for m in ledger.models
            if (
                m.name == budget.value
                if budget.scope is BudgetScope.MODEL
                else m.tags.get(budget.key) == budget.value
            )
        ]
        return sum(self._model_summary(m, month, ledger).total for m in chosen)


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
