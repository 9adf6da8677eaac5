"""Training on a GPU: the same trainers and scheduler, with CUDA. Skipped where none is.

CI has no GPU; these run on a machine that has one (see docs/training.md, "Which run starts next").
"""

from __future__ import annotations

from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device here")


def test_the_tabular_trainer_trains_on_cuda_and_its_model_loads_on_cpu(tmp_path: Path) -> None:
    from modelhub.training.context import LocalContext
    from modelhub.training.trainers import tabular
    from tests.integration.training_engine import write_blobs

    data = write_blobs(tmp_path / "blobs.csv", rows=2_000)
    torch.cuda.reset_peak_memory_stats()
    ctx = LocalContext(
        run_dir=tmp_path / "run",
        hyperparameters={"epochs": 3, "batch_size": 64},
        datasets={"blobs": data},
        device="cuda",
    )
    result = tabular.train(ctx)
    assert torch.cuda.max_memory_allocated() > 0  # the work happened on the GPU
    assert result.metrics["val_accuracy"] > 0.9
    model = tabular.load(result.output_dir)
    assert model.predict([{"a": 3.0, "b": -3.0}, {"a": -3.0, "b": 3.0}]) == [1, 0]


def test_char_lm_trains_on_cuda_and_generates_on_cpu(tmp_path: Path) -> None:
    from modelhub.training.context import LocalContext
    from modelhub.training.trainers import char_lm

    corpus = tmp_path / "corpus.txt"
    corpus.write_text("the persona answers kindly and briefly. " * 400)
    ctx = LocalContext(
        run_dir=tmp_path / "run",
        hyperparameters={"epochs": 2, "batch_size": 32, "context_length": 32, "d_model": 64},
        datasets={"corpus": corpus},
        device="cuda",
    )
    result = char_lm.train(ctx)
    assert result.metrics["val_loss"] < 2.0
    text = char_lm.load(result.output_dir).generate("the per", max_new_tokens=20, temperature=0)
    assert len(text) == 20 and set(text) <= set("the persona answers kindly and briefly. ")


def test_the_scheduler_gives_a_run_that_asks_for_a_gpu_its_gpu(tmp_path: Path) -> None:
    from modelhub.domain.runs import RunStatus
    from tests.integration.training_engine import (
        ADMIN,
        engine,
        finished,
        tabular_spec,
        with_blobs,
    )

    with engine(tmp_path, train_gpus=None) as services:
        assert services.training.capacity().gpus >= 1
        with_blobs(services, tmp_path, rows=2_000)
        spec = tabular_spec("on-gpu", resources="{cpus: 1, memory: 8GiB, gpus: 1}")
        services.training.create_pipeline(ADMIN, spec)
        services.training.start_scheduler()
        run = finished(services, services.training.start(ADMIN, "on-gpu").id, timeout=300)
        assert run.status is RunStatus.COMPLETED, run.error
        log = services.training.logs(ADMIN, run.id).decode()
        assert "training on cuda" in log


CUDA_SCRIPT = """
import json

import torch


def train(ctx):
    x = torch.ones(256, 256, device=ctx.device)
    total = float((x @ x).sum().item())
    (ctx.output_dir / "config.json").write_text(json.dumps({"device": ctx.device}))
    return {"sum": total, "gpus": float(torch.cuda.device_count())}
"""


def test_a_confined_script_trains_on_cuda(tmp_path: Path) -> None:
    """The sandbox leaves a script its GPU: /dev/nvidia*, the driver's /proc and /sys."""
    from modelhub.training.context import LocalContext
    from modelhub.training.trainers import script

    ctx = LocalContext(run_dir=tmp_path / "runs" / "1", device="cuda")
    source = ctx.run_dir / "script" / "cuda_train.py"
    source.parent.mkdir()
    source.write_text(CUDA_SCRIPT)
    ctx.write_job(trainer="script", script={"path": str(source)})
    result = script.train(ctx)
    assert result.metrics["sum"] == 256.0**3
    assert result.metrics["gpus"] >= 1
