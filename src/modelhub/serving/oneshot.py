"""One inference request in this process, with no server: what local mode uses."""

from __future__ import annotations

import asyncio
from pathlib import Path

from modelhub.serving.host import ModelHost, ServedModel, ServedVersion


def infer_once(name: str, version: int, path: Path, body: bytes) -> bytes:
    """Load the model at `path`, answer one Open Inference Protocol request, unload."""
    host = ModelHost()
    host.apply([ServedModel(name, (ServedVersion(version, path, 100),))])

    async def answer() -> bytes:
        slot = host.pick(name)
        with host.counted(slot, None) as tally:
            return await host.answer(slot, body, tally)

    try:
        return asyncio.run(answer())
    finally:
        host.close()
