"""The one interface every runtime offers, and the tensors it exchanges.

A runtime holds one loaded model. `infer` takes a batch: a dict of numpy arrays whose
first axis is the row (the dynamic batcher concatenates requests along it) and gives
back a dict of arrays with the same number of rows. Text travels as numpy object
arrays of `str` (the Open Inference Protocol's BYTES datatype).

Runtimes are loaded from a local folder (or a single file) that the caller already
verified against its digests; loading never executes code from the folder.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from pathlib import Path

    import numpy as np

    from modelhub.domain.records import Signature


@dataclass(frozen=True)
class RuntimeInfo:
    """What a loaded model tells the server about itself."""

    runtime: str
    signature: Signature
    memory_bytes: int
    # True when `infer` takes long enough (milliseconds) that it should run off the
    # event loop; tiny models run inline, where a thread hop would cost more than them.
    blocking: bool = False
    # Request parameters the runtime understands (e.g. max_tokens); others are refused.
    parameters: tuple[str, ...] = ()
    details: dict[str, Any] = field(default_factory=dict)


class Runtime(Protocol):
    info: RuntimeInfo

    def infer(
        self, inputs: dict[str, np.ndarray], parameters: dict[str, Any]
    ) -> dict[str, np.ndarray]:
        """Outputs for a batch of rows. Raise InvalidInput for bad values (-> 400);
        anything else the model raises is that batch's failure (-> 500)."""
        ...

    def unload(self) -> None: ...


class RuntimeProvider(Protocol):
    """One entry of the `modelhub.runtimes` extension point (built-in or plugin).

    `claims` says, from metadata only (names, suffixes, small JSON files, never by
    loading or executing anything), whether this provider serves what `path` holds;
    the first provider that claims a path loads it. `load` builds the runtime; it
    raises InvalidInput for files it cannot serve and UnsafeModel for anything that
    would execute code when `trusted` is False. modelhub refuses an untrusted path
    that holds a pickle before a plugin's `load` is ever called, whatever the plugin
    does with `trusted`.
    """

    def claims(self, path: Path) -> bool: ...

    def load(self, path: Path, *, trusted: bool) -> Runtime: ...
