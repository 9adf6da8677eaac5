"""The Flower ClientApp: each client trains the global model on its own rows.

`app` is a module-level `flwr.clientapp.ClientApp`, the same object the simulation
runs and a real SuperNode can load (`modelhub.training.federated.client_app:app`).
Where a client's rows are: a SuperNode started with `--node-config 'data-path="..."'`
reads that file; in the simulation, node `partition-id` N reads `client-000N.parquet`
in the task's data folder.

A train message carries the global arrays and, in its config, the task (ClientTask as
JSON) and the round; FedProx adds `proximal-mu`, and the client then adds
mu/2 * ||w - w_global||^2 to its loss. The reply holds the new arrays and the mean
training loss, weighted by `num-examples`. An evaluate message measures the global
model on the client's rows. Anything that goes wrong raises: Flower turns the
exception into an error reply, which the server counts as a failed client.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from flwr.app import ArrayRecord, Context, Message, MetricRecord, MetricRecordValues, RecordDict
from flwr.clientapp import ClientApp

from modelhub.errors import TrainingDiverged
from modelhub.training.federated.data import ClientTask, client_file, load_client

PARTITION_ID = "partition-id"
DATA_PATH = "data-path"

app = ClientApp()


@app.train()
def train(msg: Message, context: Context) -> Message:
    """Train `local_epochs` on this client's rows, starting from the global arrays."""
    task, client = _task_and_client(msg, context)
    try:
        return _train(msg, context, task, client)
    except Exception as exc:
        raise RuntimeError(f"client {client}: {exc}") from exc


@app.evaluate()
def evaluate(msg: Message, context: Context) -> Message:
    """The global model's loss and accuracy on this client's rows."""
    from modelhub.training.trainers.tabular import evaluate as measure

    task, client = _task_and_client(msg, context)
    try:
        x, y = _client_tensors(task, context)
        model = _model(task, msg.content["arrays"])
        loss, accuracy = measure(model, x, y)
    except Exception as exc:
        raise RuntimeError(f"client {client}: {exc}") from exc
    metrics: dict[str, MetricRecordValues] = {
        "eval_loss": loss,
        "eval_accuracy": accuracy,
        "num-examples": len(y),
    }
    return Message(RecordDict({"metrics": MetricRecord(metrics)}), reply_to=msg)


def _train(msg: Message, context: Context, task: ClientTask, client: str) -> Message:
    import torch
    import torch.nn.functional as F

    config = msg.content["config"]
    server_round = int(config.get("server-round", 0))  # type: ignore[arg-type]
    mu = float(config.get("proximal-mu", 0.0))  # type: ignore[arg-type]
    x, y = _client_tensors(task, context)
    model = _model(task, msg.content["arrays"])
    anchor = [p.detach().clone() for p in model.parameters()]
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=task.learning_rate, weight_decay=task.weight_decay
    )
    shuffle = torch.Generator().manual_seed(
        task.seed * 1_000_003 + server_round * 1009 + _n(client)
    )
    total, steps = torch.zeros(()), 0
    model.train()
    for _ in range(task.local_epochs):
        order = torch.randperm(len(y), generator=shuffle)
        for start in range(0, len(y), task.batch_size):
            idx = order[start : start + task.batch_size]
            loss = F.cross_entropy(model(x[idx]), y[idx])
            if mu > 0:
                drift = sum(
                    ((p - a) ** 2).sum() for p, a in zip(model.parameters(), anchor, strict=True)
                )
                loss = loss + mu / 2 * drift
            optimizer.zero_grad(set_to_none=True)
            loss.backward()  # type: ignore[no-untyped-call]
            optimizer.step()
            total += loss.detach()
            steps += 1
    mean_loss = float(total) / max(steps, 1)
    if not math.isfinite(mean_loss):
        raise TrainingDiverged(f"local loss became {mean_loss} in round {server_round}")
    arrays = ArrayRecord(model.state_dict())
    metrics = MetricRecord({"train_loss": mean_loss, "num-examples": len(y)})
    return Message(RecordDict({"arrays": arrays, "metrics": metrics}), reply_to=msg)


def _task_and_client(msg: Message, context: Context) -> tuple[ClientTask, str]:
    task = ClientTask.from_json(str(msg.content["config"]["task"]))
    client = context.node_config.get(PARTITION_ID)
    return task, str(client if client is not None else context.node_id)


def _client_tensors(task: ClientTask, context: Context) -> tuple[Any, Any]:
    import torch

    torch.set_num_threads(1)  # one Ray CPU per client: no oversubscription
    x, y = load_client(task, _data_path(task, context))
    return torch.from_numpy(x), torch.from_numpy(y)


def _data_path(task: ClientTask, context: Context) -> Path:
    configured = context.node_config.get(DATA_PATH)
    if configured is not None:
        return Path(str(configured))
    return client_file(task.data_dir, int(context.node_config[PARTITION_ID]))


def _model(task: ClientTask, arrays: Any) -> Any:
    from modelhub.networks.tabular import build_model

    model = build_model(len(task.features), task.hidden, len(task.classes))
    model.load_state_dict(arrays.to_torch_state_dict())
    return model


def _n(client: str) -> int:
    return int(client) if client.isdigit() else 0
