"""Federated learning with Flower: the tabular classifier trained by simulated clients.

A run whose spec has a `federated` section is handed by the training worker to
`runner.train` instead of a trainer. The pieces:

- `partitioning`: how the dataset's training rows are split among the clients.
- `data`: the held-out validation rows for the server, one Parquet file per client.
- `client_app`: the Flower ClientApp (local training, FedProx's proximal term).
- `strategy`: the spec's Flower strategy, Flower's DP wrapper, the round watcher.
- `server`: the ServerApp's main: rounds, per-round metrics, checkpoints, stop.
- `runner`: Flower's simulation on a private local Ray instance, and the result.

Flower sends telemetry unless FLWR_TELEMETRY_ENABLED=0, which it reads when it is first
imported: importing this package sets it, before any of its modules import flwr.
"""

from __future__ import annotations

import os

os.environ["FLWR_TELEMETRY_ENABLED"] = "0"
