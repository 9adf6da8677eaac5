"""Flower strategies from the spec's `federated` section, and the round watcher around them.

`build_strategy` makes FedAvg, FedProx, FedAdam, FedMedian or FedTrimmedAvg with the
spec's fractions and minimums, wrapped in Flower's server-side fixed-clipping DP
wrapper when `differential_privacy` is set. `RoundWatcher` wraps that strategy for
`Strategy.start`: it counts each round's sampled and failed clients, fails the round
when fewer than `min_fit_clients` trained (Flower's strategies aggregate whatever
arrives), and numbers rounds from where a resumed run left off.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from flwr.app import ArrayRecord, ConfigRecord, Message, MetricRecord
from flwr.serverapp import Grid
from flwr.serverapp.strategy import (
    DifferentialPrivacyServerSideFixedClipping,
    FedAdam,
    FedAvg,
    FedMedian,
    FedProx,
    FedTrimmedAvg,
    Strategy,
)
from flwr.serverapp.strategy.fedopt import FedOpt

from modelhub.domain.pipelines import Federated, FederatedStrategy
from modelhub.errors import Unavailable


@dataclass(frozen=True)
class Sampling:
    """How many clients a round asks and needs, from the spec and Flower's own rule
    (a round samples max(int(clients x fraction), minimum) clients)."""

    available: int
    fit: int
    evaluate: int
    sampled: int

    @classmethod
    def of(cls, spec: Federated) -> Sampling:
        available = spec.min_available_clients or spec.clients
        fit = spec.min_fit_clients or 1
        evaluate = 0 if spec.fraction_evaluate == 0 else 1
        sampled = max(int(spec.clients * spec.fraction_fit), fit)
        return cls(available=available, fit=fit, evaluate=evaluate, sampled=sampled)


def build_strategy(spec: Federated) -> Strategy:
    """The spec's strategy, DP-wrapped when differential_privacy is set."""
    sampling = Sampling.of(spec)
    common: dict[str, Any] = {
        "fraction_train": spec.fraction_fit,
        "fraction_evaluate": spec.fraction_evaluate,
        "min_train_nodes": sampling.fit,
        "min_evaluate_nodes": sampling.evaluate,
        "min_available_nodes": sampling.available,
    }
    chosen: dict[FederatedStrategy, Callable[[], Strategy]] = {
        FederatedStrategy.FEDAVG: lambda: FedAvg(**common),
        FederatedStrategy.FEDPROX: lambda: FedProx(**common, proximal_mu=spec.proximal_mu),
        FederatedStrategy.FEDADAM: lambda: FedAdam(**common, eta=spec.server_learning_rate),
        FederatedStrategy.FEDMEDIAN: lambda: FedMedian(**common),
        FederatedStrategy.FEDTRIMMEDAVG: lambda: FedTrimmedAvg(**common, beta=spec.trim_beta),
    }
    strategy = chosen[spec.strategy]()
    dp = spec.differential_privacy
    if dp is None:
        return strategy
    return DifferentialPrivacyServerSideFixedClipping(
        strategy,
        noise_multiplier=dp.noise_multiplier,
        clipping_norm=dp.clipping_norm,
        num_sampled_clients=sampling.sampled,
    )


def server_optimizer(strategy: Strategy) -> FedOpt | None:
    """The FedOpt (FedAdam) inside `strategy`, whose moments a checkpoint keeps."""
    inner = getattr(strategy, "strategy", strategy)
    return inner if isinstance(inner, FedOpt) else None


@dataclass
class RoundReport:
    """One round as the server saw it."""

    round: int
    sampled: int = 0
    failed: int = 0
    failures: list[str] = field(default_factory=list)
    train_metrics: dict[str, float] = field(default_factory=dict)
    evaluate_metrics: dict[str, float] = field(default_factory=dict)


class RoundWatcher(Strategy):
    """`inner` as Strategy.start drives it, with rounds numbered from `first_round`.

    `on_trained(report)` is called once a round's training replies are in, before
    the round can fail, so that its client counts are recorded either way.
    """

    def __init__(
        self,
        inner: Strategy,
        min_fit_clients: int,
        first_round: int,
        on_trained: Callable[[RoundReport], None],
        private: bool = False,
    ) -> None:
        self.inner = inner
        self.min_fit_clients = min_fit_clients
        self.offset = first_round - 1
        self.on_trained = on_trained
        self.private = private
        self.report = RoundReport(first_round)

    def round_of(self, server_round: int) -> int:
        return server_round + self.offset

    def configure_train(
        self, server_round: int, arrays: ArrayRecord, config: ConfigRecord, grid: Grid
    ) -> Iterable[Message]:
        number = self.round_of(server_round)
        messages = list(self.inner.configure_train(number, arrays, config, grid))
        self.report = RoundReport(number, sampled=len(messages))
        return messages

    def aggregate_train(
        self, server_round: int, replies: Iterable[Message]
    ) -> tuple[ArrayRecord | None, MetricRecord | None]:
        received = list(replies)
        report = self.report
        errors = [reply for reply in received if reply.has_error()]
        report.failures = [str(reply.error.reason) for reply in errors]
        trained = len(received) - len(errors)
        report.failed = report.sampled - trained
        if report.failed > len(errors):
            report.failures.append(f"{report.failed - len(errors)} sent no reply in time")
        self.on_trained(report)
        if trained < self.min_fit_clients:
            raise Unavailable(
                f"round {report.round}: {trained} of {report.sampled} sampled clients trained, "
                f"fewer than min_fit_clients ({self.min_fit_clients}); "
                + "; ".join(report.failures),
                {"round": report.round, "trained": trained, "failed": report.failed},
            )
        arrays, metrics = self.inner.aggregate_train(self.round_of(server_round), received)
        if arrays is None:
            why = (
                "Flower's DP wrapper aggregates only when every sampled client replied"
                if self.private and report.failed
                else "no client update could be aggregated"
            )
            raise Unavailable(
                f"round {report.round}: {why}; " + "; ".join(report.failures),
                {"round": report.round, "failed": report.failed},
            )
        report.train_metrics = _floats(metrics)
        return arrays, metrics

    def configure_evaluate(
        self, server_round: int, arrays: ArrayRecord, config: ConfigRecord, grid: Grid
    ) -> Iterable[Message]:
        return self.inner.configure_evaluate(self.round_of(server_round), arrays, config, grid)

    def aggregate_evaluate(
        self, server_round: int, replies: Iterable[Message]
    ) -> MetricRecord | None:
        metrics = self.inner.aggregate_evaluate(self.round_of(server_round), replies)
        self.report.evaluate_metrics = _floats(metrics)
        return metrics

    def summary(self) -> None:
        self.inner.summary()


def _floats(record: MetricRecord | None) -> dict[str, float]:
    if record is None:
        return {}
    return {k: float(v) for k, v in record.items() if isinstance(v, int | float)}
