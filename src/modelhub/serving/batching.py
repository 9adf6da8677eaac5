"""Dynamic batching per model: requests queue up and run together, counted in rows.

A batch closes when it holds `max_batch_size` rows or when `max_wait` has passed since
its first request. With `max_wait` 0 it closes at the end of the event-loop turn in
which its first request arrived: everything that was parsed in that turn runs
together, and a lone request waits for nothing. While a batch runs off the loop (a
blocking runtime), the next one fills up behind it.

Only requests with the same parameters share a batch (a generation's `max_tokens`
applies to all its rows). A request larger than `max_batch_size` runs alone, unsplit.
When a batch of several requests fails, each is run again on its own, so one bad
request fails alone and its neighbours still get their answers.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from modelhub.errors import InferenceFailed, ModelhubError

if TYPE_CHECKING:
    import numpy as np

    from modelhub.serving.runtimes.base import Runtime

Arrays = dict[str, "np.ndarray"]


@dataclass
class _Pending:
    inputs: Arrays
    rows: int
    parameters: dict[str, Any]
    key: tuple[tuple[str, Any], ...]
    future: asyncio.Future[Arrays] = field(repr=False)


def _parameters_key(parameters: dict[str, Any]) -> tuple[tuple[str, Any], ...]:
    if not parameters:
        return ()
    return tuple(sorted((name, repr(value)) for name, value in parameters.items()))


class Batcher:
    """Queues requests for one loaded model and runs them in batches."""

    def __init__(
        self,
        runtime: Runtime,
        max_batch_size: int,
        max_wait_seconds: float,
        executor: Executor | None,
        on_batch: Callable[[int], None] | None = None,
    ) -> None:
        self.runtime = runtime
        self.max_batch_size = max_batch_size
        self.max_wait = max_wait_seconds
        # None runs batches inline on the event loop (tiny models); an executor runs
        # them off it (models that take milliseconds).
        self.executor = executor if runtime.info.blocking else None
        self.on_batch = on_batch
        self._queue: list[_Pending] = []
        self._queued_rows = 0
        self._scheduled: asyncio.Handle | asyncio.TimerHandle | None = None
        self._running = False

    @property
    def queued(self) -> int:
        return len(self._queue)

    async def submit(self, inputs: Arrays, rows: int, parameters: dict[str, Any]) -> Arrays:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Arrays] = loop.create_future()
        self._queue.append(_Pending(inputs, rows, parameters, _parameters_key(parameters), future))
        self._queued_rows += rows
        if self._queued_rows >= self.max_batch_size and not self._running:
            self._cancel_timer()
            loop.call_soon(self._flush)
            self._scheduled = None
        elif self._scheduled is None and not self._running:
            self._schedule(loop)
        return await future

    def _schedule(self, loop: asyncio.AbstractEventLoop) -> None:
        if self.max_wait > 0:
            self._scheduled = loop.call_later(self.max_wait, self._flush)
        else:
            self._scheduled = loop.call_soon(self._flush)

    def _cancel_timer(self) -> None:
        if self._scheduled is not None:
            self._scheduled.cancel()

    def _take(self) -> list[_Pending]:
        first = self._queue[0]
        taken = [first]
        rows = first.rows
        rest: list[_Pending] = []
        for index in range(1, len(self._queue)):
            item = self._queue[index]
            if item.key == first.key and rows + item.rows <= self.max_batch_size:
                taken.append(item)
                rows += item.rows
            else:
                rest.append(item)
        self._queue = rest
        self._queued_rows -= rows
        return taken

    def _flush(self) -> None:
        self._scheduled = None
        if self._running or not self._queue:
            return
        batch = self._take()
        if self.executor is None:
            self._finish(batch, self._run(batch))
            self._after()
            return
        self._running = True
        loop = asyncio.get_running_loop()
        work = loop.run_in_executor(self.executor, self._run, batch)
        work.add_done_callback(lambda done: self._done_off_loop(batch, done))

    def _done_off_loop(self, batch: list[_Pending], done: asyncio.Future[Any]) -> None:
        self._running = False
        self._finish(batch, done.result())
        self._after()

    def _after(self) -> None:
        if self._queue and self._scheduled is None:
            loop = asyncio.get_running_loop()
            if self._queued_rows >= self.max_batch_size:
                self._scheduled = loop.call_soon(self._flush)
            else:
                self._schedule(loop)

    def _run(self, batch: list[_Pending]) -> list[Arrays | BaseException]:
        """Outputs (or the error) per request; runs on the loop or in the executor."""
        from modelhub.serving.codec import concat_rows, split_rows

        if self.on_batch is not None:
            self.on_batch(sum(item.rows for item in batch))
        if len(batch) == 1:
            return [self._infer_one(batch[0])]
        try:
            joined = concat_rows([item.inputs for item in batch])
            outputs = self.runtime.infer(joined, batch[0].parameters)
            return list(split_rows(outputs, [item.rows for item in batch]))
        except Exception:
            return [self._infer_one(item) for item in batch]

    def _infer_one(self, item: _Pending) -> Arrays | BaseException:
        try:
            return self.runtime.infer(item.inputs, item.parameters)
        except ModelhubError as exc:
            return exc
        except Exception as exc:
            return InferenceFailed(
                f"the model failed on this request: {type(exc).__name__}: {exc}",
                {"exception": type(exc).__name__},
            )

    @staticmethod
    def _finish(batch: list[_Pending], results: list[Arrays | BaseException]) -> None:
        for item, result in zip(batch, results, strict=True):
            if item.future.done():  # the caller went away
                continue
            if isinstance(result, BaseException):
                item.future.set_exception(result)
            else:
                item.future.set_result(result)
