"""Many models in one process: lazy loading, LRU eviction, traffic split, usage.

The host is told which names it serves and, for each, which versions take which
percent of the requests (`apply`). A version loads on its first request, or at once
when marked `preload`; loading runs on a loader thread so requests to other models
keep flowing. When the loaded models together pass the memory budget, the least
recently used idle one is unloaded (it loads again when asked). A model that fails
to load fails alone: its requests get the reason, every other model keeps serving.

A version that `apply` no longer lists is retired: requests already inside it finish,
then it unloads. That is how a rollout drains the old version without failing a
request.
"""

from __future__ import annotations

import asyncio
import bisect
import random
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modelhub.domain.deployments import LATENCY_BOUNDS_MS
from modelhub.errors import ModelhubError, NotFound, Unavailable
from modelhub.monitoring.rollup import MinuteRecorder
from modelhub.serving.batching import Batcher

if TYPE_CHECKING:
    import numpy as np

    from modelhub.serving.predlog import LogTarget
    from modelhub.serving.runtimes.base import Runtime

BATCH_BOUNDS = (1, 2, 4, 8, 16, 32, 64, 128, 256)
CALLER_WINDOW_SECONDS = 300.0


@dataclass(frozen=True)
class ServedVersion:
    version: int
    path: Path
    percent: int
    trusted: bool = False  # the version's trust mark: only then may a plugin unpickle it


@dataclass(frozen=True)
class ServedModel:
    """A name the host answers to (a deployment's) and the versions behind it;
    `model` is the registered model they are versions of (the name when not given)."""

    name: str
    versions: tuple[ServedVersion, ...]
    preload: bool = True
    log: LogTarget | None = None  # what of its traffic the prediction log samples
    model: str = ""

    @property
    def model_name(self) -> str:
        return self.model or self.name

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ServedModel:
        log = None
        if data.get("log") is not None:
            from modelhub.serving.predlog import LogTarget

            log = LogTarget.from_json(data["log"])
        return cls(
            name=str(data["name"]),
            versions=tuple(
                ServedVersion(
                    int(v["version"]),
                    Path(v["path"]),
                    int(v["percent"]),
                    trusted=v.get("trusted") is True,
                )
                for v in data["versions"]
            ),
            preload=bool(data.get("preload", True)),
            log=log,
            model=str(data.get("model") or ""),
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "model": self.model_name,
            "preload": self.preload,
            "versions": [
                {
                    "version": v.version,
                    "path": str(v.path),
                    "percent": v.percent,
                    "trusted": v.trusted,
                }
                for v in self.versions
            ],
            "log": self.log.to_json() if self.log is not None else None,
        }


@dataclass
class Tally:
    """What a request turned out to carry, for its usage record and the prediction log.

    `request_id` comes in as the one the replica made (or the client's header) and
    leaves as the one the answer carries (the OIP body's `id` when it had one). When
    `keep` is set (the request was sampled), `inputs` and `outputs` are filled."""

    rows: int = 0
    request_id: str | None = None
    keep: bool = False
    inputs: dict[str, np.ndarray] | None = None
    outputs: dict[str, np.ndarray] | None = None


class SlotState(StrEnum):
    UNLOADED = "unloaded"
    LOADING = "loading"
    READY = "ready"
    FAILED = "failed"
    RETIRED = "retired"


@dataclass
class Usage:
    requests: int = 0
    errors: int = 0
    rows: int = 0
    latency_ms_sum: float = 0.0
    latency_buckets: list[int] = field(default_factory=lambda: [0] * (len(LATENCY_BOUNDS_MS) + 1))
    batch_buckets: list[int] = field(default_factory=lambda: [0] * (len(BATCH_BOUNDS) + 1))
    callers: dict[str, float] = field(default_factory=dict)
    last_used: float | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "errors": self.errors,
            "rows": self.rows,
            "latency_ms_sum": self.latency_ms_sum,
            "latency_buckets": self.latency_buckets,
            "batch_buckets": self.batch_buckets,
            "callers": sorted(self.callers),
            "last_used": self.last_used,
        }


class Slot:
    """One version of one served name: its state, its loaded runtime, its usage."""

    def __init__(
        self,
        name: str,
        version: int,
        path: Path,
        preload: bool,
        model: str | None = None,
        rollup_seconds: int = 60,
        trusted: bool = False,
    ) -> None:
        self.name = name
        self.trusted = trusted
        self.model = model or name
        self.version = version
        self.path = path
        self.preload = preload
        self.state = SlotState.UNLOADED
        self.runtime: Runtime | None = None
        self.batcher: Batcher | None = None
        self.error: str | None = None
        self.in_flight = 0
        self.last_used = 0.0
        self.loading: asyncio.Future[None] | None = None
        self.usage = Usage()
        self.minutes = MinuteRecorder(seconds=rollup_seconds)

    @property
    def memory_bytes(self) -> int:
        return self.runtime.info.memory_bytes if self.runtime is not None else 0

    def count_batch(self, rows: int) -> None:
        self.usage.batch_buckets[bisect.bisect_left(BATCH_BOUNDS, rows)] += 1
        self.minutes.batch(rows)

    def describe(self) -> dict[str, Any]:
        info = self.runtime.info if self.runtime is not None else None
        return {
            "name": self.name,
            "model": self.model,
            "version": self.version,
            "state": self.state.value,
            "error": self.error,
            "runtime": info.runtime if info else None,
            "memory_bytes": self.memory_bytes,
            "in_flight": self.in_flight,
        }


class ModelHost:
    def __init__(
        self,
        memory_budget: int | None = None,
        max_batch_size: int = 32,
        max_wait_seconds: float = 0.0,
        rollup_seconds: int = 60,
    ) -> None:
        self.memory_budget = memory_budget
        self.rollup_seconds = rollup_seconds
        self.max_batch_size = max_batch_size
        self.max_wait = max_wait_seconds
        self._compute = ThreadPoolExecutor(max_workers=1, thread_name_prefix="infer")
        self._loader = ThreadPoolExecutor(max_workers=1, thread_name_prefix="load")
        self._routes: dict[str, list[tuple[int, Slot]]] = {}
        self._slots: dict[tuple[str, int], Slot] = {}
        self._retired: list[Slot] = []
        self.loads = 0
        self.evictions = 0

    # -- what is served -----------------------------------------------------

    def apply(self, models: list[ServedModel]) -> None:
        """Serve exactly `models` from now on; versions no longer listed retire."""
        wanted: dict[tuple[str, int], ServedVersion] = {}
        routes: dict[str, list[tuple[int, Slot]]] = {}
        for model in models:
            cumulative = 0
            table: list[tuple[int, Slot]] = []
            for served in model.versions:
                key = (model.name, served.version)
                wanted[key] = served
                slot = self._slots.get(key)
                if slot is None or slot.path != served.path or slot.trusted != served.trusted:
                    if slot is not None:
                        self._retire(slot)
                    slot = Slot(
                        model.name,
                        served.version,
                        served.path,
                        model.preload,
                        model.model_name,
                        self.rollup_seconds,
                        served.trusted,
                    )
                    self._slots[key] = slot
                slot.preload = model.preload
                slot.model = model.model_name
                cumulative += served.percent
                table.append((cumulative, slot))
            routes[model.name] = table
        for key, slot in list(self._slots.items()):
            if key not in wanted:
                del self._slots[key]
                self._retire(slot)
        self._routes = routes

    def _retire(self, slot: Slot) -> None:
        slot.state = SlotState.RETIRED
        self._retired.append(slot)
        self._unload_retired()

    def _unload_retired(self) -> None:
        still: list[Slot] = []
        for slot in self._retired:
            if slot.in_flight > 0:
                still.append(slot)
            else:
                self._unload(slot)
        self._retired = still

    async def preload(self) -> None:
        """Load every preload version now (failures are recorded on their slots)."""
        await asyncio.gather(
            *(self._ensure_loaded(slot) for slot in self._slots.values() if slot.preload),
            return_exceptions=True,
        )

    @property
    def ready(self) -> bool:
        return all(slot.state is SlotState.READY for slot in self._slots.values() if slot.preload)

    @property
    def draining(self) -> int:
        return len(self._retired)

    @property
    def in_flight(self) -> int:
        return sum(slot.in_flight for slot in self._slots.values()) + sum(
            slot.in_flight for slot in self._retired
        )

    def names(self) -> list[str]:
        return sorted(self._routes)

    def versions(self, name: str) -> list[Slot]:
        return [slot for _, slot in self._table(name)]

    def _table(self, name: str) -> list[tuple[int, Slot]]:
        table = self._routes.get(name)
        if table is None:
            raise NotFound(f"no model named {name!r} is served here", {"model": name})
        return table

    # -- requests -------------------------------------------------------------

    def pick(self, name: str, version: int | None = None) -> Slot:
        """The slot that answers this request: the pinned version, or one by traffic share."""
        table = self._table(name)
        if version is not None:
            for _, slot in table:
                if slot.version == version:
                    return slot
            raise NotFound(
                f"version {version} of {name!r} is not served here",
                {"model": name, "version": version},
            )
        if len(table) == 1:
            return table[0][1]
        point = random.random() * table[-1][0]
        for cumulative, slot in table:
            if point < cumulative:
                return slot
        return table[-1][1]

    async def runtime(self, slot: Slot) -> Runtime:
        if slot.state is not SlotState.READY:
            await self._ensure_loaded(slot)
        if slot.runtime is None:
            raise Unavailable(
                f"{slot.name} version {slot.version} failed to load: {slot.error}",
                {"model": slot.name, "version": slot.version, "reason": slot.error},
            )
        return slot.runtime

    async def infer(
        self, slot: Slot, inputs: dict[str, Any], rows: int, parameters: dict[str, Any]
    ) -> dict[str, Any]:
        await self.runtime(slot)
        assert slot.batcher is not None
        return await slot.batcher.submit(inputs, rows, parameters)

    async def answer(self, slot: Slot, body: bytes, tally: Tally) -> bytes:
        """One Open Inference Protocol request: decode against the slot's signature,
        run it through the batcher, encode the reply."""
        from modelhub.serving.codec import decode_request, encode_response

        runtime = await self.runtime(slot)
        info = runtime.info
        request = decode_request(body, info.signature, info.parameters)
        tally.rows = request.rows
        if request.id is not None:
            tally.request_id = request.id
        assert slot.batcher is not None
        outputs = await slot.batcher.submit(request.inputs, request.rows, request.parameters)
        if tally.keep:
            tally.inputs, tally.outputs = request.inputs, outputs
        return encode_response(
            slot.name, str(slot.version), tally.request_id, outputs, request.outputs
        )

    @contextmanager
    def counted(self, slot: Slot, caller: str | None) -> Iterator[Tally]:
        """Count one request against `slot`: in flight while inside, then its usage
        (failed when the block raises)."""
        started = time.perf_counter()
        self.enter(slot)
        tally = Tally()
        error: str | None = "internal"
        try:
            yield tally
            error = None
        except ModelhubError as exc:
            error = exc.code
            raise
        except TimeoutError:
            error = "timeout"
            raise
        finally:
            self.leave(slot, started, error is None, tally.rows, caller, error)

    def enter(self, slot: Slot) -> None:
        slot.in_flight += 1
        slot.last_used = time.monotonic()
        slot.minutes.in_flight(slot.in_flight)

    def leave(
        self,
        slot: Slot,
        started: float,
        ok: bool,
        rows: int,
        caller: str | None,
        error: str | None = None,
    ) -> None:
        """Count a finished request; `error` is its error code when it failed
        ("internal" when a failure names none)."""
        slot.in_flight -= 1
        usage = slot.usage
        elapsed_ms = (time.perf_counter() - started) * 1000.0
        slot.minutes.record(elapsed_ms, rows, None if ok else (error or "internal"))
        usage.requests += 1
        usage.rows += rows
        usage.latency_ms_sum += elapsed_ms
        usage.latency_buckets[bisect.bisect_left(LATENCY_BOUNDS_MS, elapsed_ms)] += 1
        usage.last_used = time.time()
        if not ok:
            usage.errors += 1
        if caller is not None:
            usage.callers[caller] = usage.last_used
        if slot.state is SlotState.RETIRED and slot.in_flight == 0:
            self._unload_retired()

    # -- loading and eviction -------------------------------------------------

    async def _ensure_loaded(self, slot: Slot) -> None:
        if slot.state in (SlotState.READY, SlotState.FAILED, SlotState.RETIRED):
            return
        if slot.loading is None:
            slot.state = SlotState.LOADING
            slot.loading = asyncio.ensure_future(self._load(slot))
        await asyncio.shield(slot.loading)

    async def _load(self, slot: Slot) -> None:
        from modelhub.serving.runtimes import load_runtime

        loop = asyncio.get_running_loop()
        try:
            runtime = await loop.run_in_executor(
                self._loader, partial(load_runtime, slot.path, trusted=slot.trusted)
            )
        except Exception as exc:
            slot.state = SlotState.FAILED
            slot.error = str(getattr(exc, "message", None) or exc) or type(exc).__name__
            return
        finally:
            slot.loading = None
        current = self._slots.get((slot.name, slot.version))
        if slot.state is SlotState.RETIRED or current is not slot:
            runtime.unload()
            return
        slot.runtime = runtime
        slot.batcher = Batcher(
            runtime,
            self.max_batch_size,
            self.max_wait,
            self._compute,
            on_batch=slot.count_batch,
        )
        slot.state = SlotState.READY
        slot.error = None
        slot.last_used = time.monotonic()
        self.loads += 1
        self._evict_beyond_budget(keep=slot)

    def _evict_beyond_budget(self, keep: Slot) -> None:
        if self.memory_budget is None:
            return
        loaded = [s for s in self._slots.values() if s.state is SlotState.READY]
        total = sum(s.memory_bytes for s in loaded)
        for slot in sorted(loaded, key=lambda s: s.last_used):
            if total <= self.memory_budget:
                break
            if slot is keep or slot.in_flight > 0 or (slot.batcher and slot.batcher.queued):
                continue
            total -= slot.memory_bytes
            self._unload(slot)
            slot.state = SlotState.UNLOADED
            self.evictions += 1

    def _unload(self, slot: Slot) -> None:
        if slot.runtime is not None:
            slot.runtime.unload()
        slot.runtime = None
        slot.batcher = None

    @property
    def memory_bytes(self) -> int:
        return sum(slot.memory_bytes for slot in self._slots.values())

    # -- reporting ------------------------------------------------------------

    def stats(self) -> dict[str, Any]:
        """State and cumulative usage per slot (callers: those seen in the last window)."""
        models = []
        horizon = time.time() - CALLER_WINDOW_SECONDS
        for slot in [*self._slots.values(), *self._retired]:
            callers = slot.usage.callers
            for caller in [c for c, seen in callers.items() if seen < horizon]:
                del callers[caller]
            entry = slot.describe()
            entry["usage"] = slot.usage.to_json()
            entry["minutes"] = [minute.to_json() for minute in slot.minutes.finished_minutes()]
            models.append(entry)
        return {
            "ready": self.ready,
            "in_flight": self.in_flight,
            "draining": self.draining,
            "memory_bytes": self.memory_bytes,
            "loads": self.loads,
            "evictions": self.evictions,
            "at": datetime.now(UTC).isoformat(),
            "models": models,
        }

    def close(self) -> None:
        for slot in [*self._slots.values(), *self._retired]:
            self._unload(slot)
        self._compute.shutdown(wait=False, cancel_futures=True)
        self._loader.shutdown(wait=False, cancel_futures=True)
