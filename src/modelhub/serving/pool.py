"""A shared model pool: a few replica processes serving many small deployments.

The idea of KServe ModelMesh and Triton's model control: rather than a replica group
per deployment (a thousand deployments, a thousand process groups), the pool's
replicas share one endpoint socket and each serves every deployment placed on the
pool. Nothing is preloaded: a replica loads a deployment's version on the first
request the kernel hands it for that deployment, and its ModelHost unloads the least
recently used idle model once the loaded ones pass the pool's per-replica memory
budget. A busy deployment gets requests on every replica and so is loaded on all of
them; a quiet one lives on the one replica that last answered it, or on none.

A replica that dies (kill -9) is restarted by the supervisor like any other; until
it is back, connections go to the others, which load what they are asked for.
"""

from __future__ import annotations

import hashlib
import threading
from dataclasses import replace
from typing import Any

from modelhub.serving.host import ServedModel
from modelhub.serving.replicas import ReplicaGroup

POOL_PREFIX = "pool:"  # a pool's replica group name; no deployment name has a colon


def group_name(pool: str) -> str:
    return POOL_PREFIX + pool


def is_pool_group(name: str) -> bool:
    return name.startswith(POOL_PREFIX)


class ModelPool:
    """One named pool: its replica group and the deployments placed on it."""

    def __init__(self, name: str, group: ReplicaGroup, memory_budget: int) -> None:
        self.name = name
        self.group = group
        self.memory_budget = memory_budget
        self._models: dict[str, ServedModel] = {m.name: m for m in group.models}
        self._lock = threading.Lock()  # guards _models and _changes
        self._sending = threading.Lock()  # one change on its way to the replicas at a time
        self._changes = 0  # changes made to _models
        self._sent = 0  # changes the replicas have taken

    @property
    def endpoint(self) -> str:
        return self.group.endpoint

    def names(self) -> list[str]:
        with self._lock:
            return sorted(self._models)

    def has(self, name: str) -> bool:
        with self._lock:
            return name in self._models

    def put(self, model: ServedModel) -> None:
        """Serve `model` (a deployment's versions and split) on every pool replica,
        loaded on demand; returns once every replica took the change."""
        with self._lock:
            self._models[model.name] = replace(model, preload=False)
            self._changes += 1
            mine = self._changes
        self._send(mine)

    def remove(self, name: str) -> None:
        with self._lock:
            if self._models.pop(name, None) is None:
                return
            self._changes += 1
            mine = self._changes
        self._send(mine)

    def _send(self, mine: int) -> None:
        """Send the whole list once change `mine` is in it. Changes made while another
        send is on its way go together in the next: deployments placed at once (a
        server start, a script deploying hundreds) cost one send each batch, not one
        each (every send carries every deployment on the pool)."""
        with self._sending:
            if self._sent >= mine:
                return  # a send that began after this change carried it
            with self._lock:
                models = [self._models[name] for name in sorted(self._models)]
                changes = self._changes
            self.group.apply(models)
            self._sent = changes

    def home(self, name: str) -> list[str]:
        """The ready replica that the platform route sends `name`'s requests to (by
        rendezvous hashing: the same one each time while it lives, another when it
        goes), so a deployment reached that way is loaded on one replica, not on all."""
        ready = [r for r in list(self.group.replicas) if r.ready and r.exited() is None]
        if not ready:
            return []

        def weight(url: str) -> bytes:
            return hashlib.blake2b(f"{name}\0{url}".encode(), digest_size=8).digest()

        return [max((r.url for r in ready), key=weight)]

    def wait_drained(self) -> bool:
        return self.group.wait_drained()

    def stats(self) -> dict[str, Any]:
        """Per replica: what it has loaded, its memory, loads, evictions and requests;
        summed: the pool's hit rate (requests that found their model loaded)."""
        replicas = []
        for pid, stats in self.group.stats():
            slots = stats["models"]
            loaded = [m for m in slots if m["state"] == "ready"]
            requests = sum(int(m["usage"]["requests"]) for m in slots)
            replicas.append(
                {
                    "pid": pid,
                    "ready": bool(stats["ready"]),
                    "models_loaded": len(loaded),
                    "loaded": sorted(f"{m['name']}@{m['version']}" for m in loaded),
                    "memory_bytes": int(stats["memory_bytes"]),
                    "loads": int(stats["loads"]),
                    "evictions": int(stats["evictions"]),
                    "requests": requests,
                }
            )
        return {"endpoint": self.endpoint, "replicas": replicas, "restarts": self.group.restarts}
