"""The multi-model host with real runtimes: lazy loads, LRU under a memory budget,
one failing model among good ones, traffic shares, batches by rows, and draining."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from modelhub.errors import InferenceFailed, NotFound, Unavailable
from modelhub.serving.host import ModelHost, ServedModel, ServedVersion, SlotState
from tests.unit.serving.builders import FEATURES, write_tabular


def _served(name: str, path: Path, version: int = 1, preload: bool = False) -> ServedModel:
    return ServedModel(name, (ServedVersion(version, path, 100),), preload=preload)


def _rows(n: int) -> dict[str, np.ndarray]:
    return {"input": np.ones((n, len(FEATURES)), np.float32)}


async def _ask(host: ModelHost, name: str, rows: int = 1, version: int | None = None) -> Any:
    slot = host.pick(name, version)
    host.enter(slot)
    ok = False
    try:
        outputs = await host.infer(slot, _rows(rows), rows, {})
        ok = True
        return outputs
    finally:
        host.leave(slot, 0.0, ok, rows, "tester")


@pytest.fixture(scope="module")
def folders(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    root = tmp_path_factory.mktemp("host")
    return [write_tabular(root / f"m{i}", seed=i) for i in range(4)]


def test_models_load_on_first_use_and_the_least_recently_used_goes_first(
    folders: list[Path],
) -> None:
    async def scenario() -> None:
        host = ModelHost()
        host.apply([_served(f"m{i}", folder) for i, folder in enumerate(folders[:3])])
        one_model = 0
        await _ask(host, "m0")
        one_model = host.memory_bytes
        assert one_model > 0 and host.loads == 1
        host.memory_budget = 2 * one_model  # room for two
        await _ask(host, "m1")
        await _ask(host, "m0")  # m0 is now the most recently used
        await _ask(host, "m2")
        states = {
            slot.name: slot.state for name in ("m0", "m1", "m2") for slot in host.versions(name)
        }
        assert states == {"m0": SlotState.READY, "m1": SlotState.UNLOADED, "m2": SlotState.READY}
        assert host.evictions == 1 and host.memory_bytes <= 2 * one_model
        await _ask(host, "m1")  # comes back on demand, evicting m0 now
        assert host.loads == 4 and host.versions("m0")[0].state is SlotState.UNLOADED
        host.close()

    asyncio.run(scenario())


def test_a_model_that_fails_to_load_fails_alone(folders: list[Path], tmp_path: Path) -> None:
    broken = write_tabular(tmp_path / "broken")
    config = json.loads((broken / "config.json").read_text())
    config["hidden"] = [3]
    (broken / "config.json").write_text(json.dumps(config))

    async def scenario() -> None:
        host = ModelHost()
        host.apply(
            [_served("good", folders[0], preload=True), _served("bad", broken, preload=True)]
        )
        await host.preload()
        assert not host.ready
        with pytest.raises(Unavailable, match="bad version 1 failed to load"):
            await _ask(host, "bad")
        assert (await _ask(host, "good"))["logits"].shape == (1, 3)
        stats = {m["name"]: m for m in host.stats()["models"]}
        assert stats["bad"]["state"] == "failed" and stats["bad"]["error"]
        assert stats["bad"]["usage"]["errors"] == 1 and stats["good"]["usage"]["errors"] == 0
        with pytest.raises(NotFound):
            host.pick("missing")
        host.close()

    asyncio.run(scenario())


def test_concurrent_requests_share_batches_and_get_their_own_rows(folders: list[Path]) -> None:
    from modelhub.serving.runtimes import load_runtime

    alone = load_runtime(folders[0])
    rng = np.random.default_rng(0)
    requests = [rng.normal(size=(n, len(FEATURES))).astype(np.float32) for n in (1, 3, 2, 5, 1)]

    async def scenario() -> list[dict[str, np.ndarray]]:
        host = ModelHost(max_batch_size=8)
        host.apply([_served("m", folders[0], preload=True)])
        await host.preload()
        slot = host.pick("m")
        answers = await asyncio.gather(
            *(host.infer(slot, {"input": rows}, len(rows), {}) for rows in requests)
        )
        batches = slot.usage.batch_buckets
        host.close()
        # 12 rows, at most 8 per batch: two batches, neither of one row.
        assert sum(batches) == 2 and batches[0] == 0
        return answers

    answers = asyncio.run(scenario())
    for rows, answer in zip(requests, answers, strict=True):
        expected = alone.infer({"input": rows}, {})["logits"]
        np.testing.assert_allclose(answer["logits"], expected, rtol=1e-5, atol=1e-6)


def test_traffic_shares_and_pinned_versions(folders: list[Path]) -> None:
    host = ModelHost()
    host.apply(
        [
            ServedModel(
                "m",
                (ServedVersion(1, folders[0], 75), ServedVersion(2, folders[1], 25)),
                preload=False,
            )
        ]
    )
    picks = [host.pick("m").version for _ in range(4000)]
    assert 850 < picks.count(2) < 1150  # 1000 expected
    assert host.pick("m", 2).version == 2
    with pytest.raises(NotFound, match="version 3"):
        host.pick("m", 3)
    host.close()


def test_a_retired_version_finishes_its_requests_before_it_unloads(folders: list[Path]) -> None:
    async def scenario() -> None:
        host = ModelHost()
        host.apply([_served("m", folders[0], version=1, preload=True)])
        await host.preload()
        old = host.pick("m")
        host.enter(old)  # a request is inside version 1
        host.apply([_served("m", folders[1], version=2, preload=True)])
        await host.preload()
        assert host.draining == 1 and old.runtime is not None
        assert host.pick("m").version == 2
        outputs = await host.infer(old, _rows(1), 1, {})  # the request still completes
        host.leave(old, 0.0, True, 1, None)
        assert outputs["logits"].shape == (1, 3)
        assert host.draining == 0 and old.runtime is None
        host.close()

    asyncio.run(scenario())


def test_one_bad_request_in_a_batch_fails_alone(tmp_path: Path) -> None:
    from tests.integration.serving_helpers import write_raising_onnx

    path = write_raising_onnx(tmp_path / "gather" / "model.onnx").parent

    async def scenario() -> None:
        host = ModelHost()
        host.apply([_served("g", path, preload=True)])
        await host.preload()
        slot = host.pick("g")

        async def ask(index: int) -> Any:
            return await host.infer(slot, {"index": np.array([index], np.int64)}, 1, {})

        results = await asyncio.gather(ask(1), ask(50), ask(2), return_exceptions=True)
        assert results[0]["value"].tolist() == [1.0] and results[2]["value"].tolist() == [2.0]
        assert isinstance(results[1], InferenceFailed)
        host.close()

    asyncio.run(scenario())
