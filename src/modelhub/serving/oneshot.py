"""One inference request in this process, with no server: what local mode uses."""

from __future__ import annotations

import asyncio
from pathlib import Path

from modelhub.serving.host import ModelHost, ServedModel, ServedVersion


def infer_once(name: str, version: int, path: Path, body: bytes, *, trusted: bool = False) -> bytes:
    """Load the model at `path`, answer one Open Inference Protocol request, unload.
    `trusted` is the version's trust mark."""
    host = ModelHost()
    host.apply([ServedModel(name, (ServedVersion(version, path, 100, trusted=trusted),))])

    async def answer() -> bytes:
        slot = host.pick(name)
        with host.counted(slot, None) as tally:
            return await host.answer(slot, body, tally)

    try:
        return asyncio.run(answer())
    finally:
        host.close()
