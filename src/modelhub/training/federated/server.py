"""The federated run's server side: the ServerApp's main, what it records each round.

`FederatedServer.main` is the body of a `flwr.serverapp.ServerApp`: it builds the
strategy, starts from the newest checkpoint when the run is resumed, and runs
`Strategy.start` for the rounds left. After each round (Flower's `evaluate_fn`) it
measures the global model on the held-out validation rows, logs the round's metrics
at step=round, reports progress, checkpoints the global model, and stops early when
the run was asked to stop (the model so far is kept).

An error inside the ServerApp is kept (`error`) rather than raised through Flower's
simulation, and the runner raises it once the simulation has shut down.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from flwr.app import ArrayRecord, ConfigRecord, Context, MetricRecord
from flwr.serverapp import Grid
from flwr.serverapp.strategy import Strategy

from modelhub.domain.pipelines import Federated
from modelhub.errors import InvalidInput
from modelhub.training.context import LocalContext
from modelhub.training.federated.data import FederatedData
from modelhub.training.federated.strategy import (
    RoundReport,
    RoundWatcher,
    Sampling,
    build_strategy,
    server_optimizer,
)

ROUND_TIMEOUT_SECONDS = 3600.0


class _StopRequested(Exception):
    """Raised from the round callback to leave Strategy.start after a round."""


@dataclass
class FederatedServer:
    """One run's server: the global model, the strategy, and what the rounds came to.

    After `main` has run, `rounds_done` is the last round finished (resumed ones
    included), `stopped` says a stop request ended it early, `last` holds the last
    round's metrics and `error` what failed it, if anything did.
    """

    ctx: LocalContext
    spec: Federated
    data: FederatedData
    seed: int
    model: Any = None
    rounds_done: int = 0
    stopped: bool = False
    error: BaseException | None = None
    last: dict[str, float] = field(default_factory=dict)
    strategy: Strategy = field(init=False)
    watcher: RoundWatcher | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        import torch

        from modelhub.networks.tabular import build_model

        task = self.data.task
        torch.manual_seed(self.seed)  # the same first weights as the tabular trainer's
        self.model = build_model(len(task.features), task.hidden, len(task.classes))
        self._x_val = torch.from_numpy(self.data.x_val)
        self._y_val = torch.from_numpy(self.data.y_val)
        self.strategy = build_strategy(self.spec)

    def main(self, grid: Grid, context: Context) -> None:
        try:
            self._run(grid)
        except _StopRequested:
            self.stopped = True
        except Exception as exc:  # the runner raises it after the simulation ends
            self.error = exc

    def _run(self, grid: Grid) -> None:
        # Which clients Flower samples follows the seed. The DP wrapper's noise does not:
        # Flower draws it from NumPy's global generator, left unseeded on purpose, since
        # noise that the spec's seed could reproduce could be subtracted again.
        random.seed(self.seed)
        self.resume()
        if self.rounds_done >= self.spec.rounds:
            return
        watcher = RoundWatcher(
            self.strategy,
            Sampling.of(self.spec).fit,
            first_round=self.rounds_done + 1,
            on_trained=self.record_clients,
            private=self.spec.differential_privacy is not None,
        )
        self.watcher = watcher
        config = ConfigRecord({"task": self.data.task.to_json()})
        watcher.start(
            grid=grid,
            initial_arrays=ArrayRecord(self.model.state_dict()),
            num_rounds=self.spec.rounds - self.rounds_done,
            timeout=ROUND_TIMEOUT_SECONDS,
            train_config=config,
            evaluate_config=ConfigRecord({"task": self.data.task.to_json()}),
            evaluate_fn=self.after_round,
        )

    def resume(self) -> None:
        """Continue from the newest checkpoint's round, if the run has one."""
        saved = self.ctx.latest_checkpoint()
        if saved is None:
            return
        step, state = saved
        try:
            self.model.load_state_dict(state["model"])
        except (RuntimeError, KeyError, ValueError) as exc:
            raise InvalidInput(
                f"the run's checkpoint of round {step} does not fit this model: {exc}",
                {"step": step},
            ) from exc
        self.rounds_done = int(state.get("round", step))
        optimizer = server_optimizer(self.strategy)
        moments = state.get("server_optimizer")
        if optimizer is not None and moments:
            optimizer.m_t = {k: v.numpy() for k, v in moments["m_t"].items()}
            optimizer.v_t = {k: v.numpy() for k, v in moments["v_t"].items()}
        print(f"resumed after round {self.rounds_done} of {self.spec.rounds}", flush=True)

    def record_clients(self, report: RoundReport) -> None:
        self.ctx.log("clients_sampled", float(report.sampled), report.round)
        self.ctx.log("clients_failed", float(report.failed), report.round)
        for reason in report.failures:
            print(f"round {report.round}: a client failed: {reason}", flush=True)
        self.ctx.flush_metrics()

    def after_round(self, server_round: int, arrays: ArrayRecord) -> MetricRecord | None:
        """Flower's evaluate_fn: called with round 0 (the start) and after each round."""
        from modelhub.training.trainers.tabular import evaluate

        if server_round == 0 or self.watcher is None:
            return None
        report = self.watcher.report
        number = report.round
        self.model.load_state_dict(arrays.to_torch_state_dict())
        val_loss, val_accuracy = evaluate(self.model, self._x_val, self._y_val)
        values = {"val_loss": val_loss, "val_accuracy": val_accuracy}
        if "train_loss" in report.train_metrics:
            values["train_loss"] = report.train_metrics["train_loss"]
        for name in ("eval_loss", "eval_accuracy"):
            if name in report.evaluate_metrics:
                values[f"clients_{name}"] = report.evaluate_metrics[name]
        for name, value in values.items():
            self.ctx.log(name, value, number)
        self.last = values
        self.rounds_done = number
        self.ctx.progress(number, self.spec.rounds)
        self.ctx.checkpoint(self.state(number), number)
        if self.ctx.should_stop() and number < self.spec.rounds:
            print(f"stop requested: ending after round {number}", flush=True)
            raise _StopRequested
        return MetricRecord({"val_loss": val_loss, "val_accuracy": val_accuracy})

    def state(self, number: int) -> dict[str, Any]:
        import torch

        state: dict[str, Any] = {"model": self.model.state_dict(), "round": number}
        optimizer = server_optimizer(self.strategy)
        if optimizer is not None and optimizer.m_t and optimizer.v_t:
            state["server_optimizer"] = {
                "m_t": {k: torch.from_numpy(np.asarray(v)) for k, v in optimizer.m_t.items()},
                "v_t": {k: torch.from_numpy(np.asarray(v)) for k, v in optimizer.v_t.items()},
            }
        return state
