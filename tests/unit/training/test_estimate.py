from __future__ import annotations

import pytest

from modelhub.domain.enums import Precision
from modelhub.errors import InvalidInput
from modelhub.settings import Settings
from modelhub.training.estimate import (
    RUNTIME_BYTES,
    Prices,
    bytes_per_parameter,
    estimate,
)
from modelhub.training.spec import load_spec

SPEC = """
name: lm
type: pre_training
trainer: char_lm
datasets: [corpus]
validation_split: 0.2
max_epochs: 5
checkpoint: {keep_last: 2, keep_best: {metric: val_loss}}
resources: {cpus: 4, gpus: 1, memory: 8GiB}
result_model: {name: lm}
"""


def test_bytes_per_parameter() -> None:
    assert bytes_per_parameter(Precision.FP32) == 16
    assert bytes_per_parameter(Precision.FP16) == 8
    assert bytes_per_parameter(Precision.MIXED) == 16
    assert bytes_per_parameter(Precision.FP32, "sgd") == 8
    with pytest.raises(InvalidInput, match="cannot train at int8"):
        bytes_per_parameter(Precision.INT8)


def test_estimate_arithmetic() -> None:
    spec = load_spec(SPEC)
    prices = Prices(cpu_hour_price=0.1, gpu_hour_price=2.0, storage_gb_month_price=0.02)
    result = estimate(spec, 1_000_000, "fp32", rows=10_000, samples_per_s=100.0, prices=prices)
    state = 16_000_000
    assert result.memory_bytes == int(state * 1.25) + RUNTIME_BYTES
    assert result.device_class == "gpu-16gb"
    # 8,000 train rows x 5 epochs at 100/s, 2,000 eval rows x 5 at 300/s
    assert result.seconds == pytest.approx(400 + 100 / 3)
    hours = result.seconds / 3600
    assert result.breakdown["cpu"] == pytest.approx(hours * 4 * 0.1)
    assert result.breakdown["gpu"] == pytest.approx(hours * 1 * 2.0)
    # weights 4 MB + 3 kept checkpoints x 16 MB state = 52 MB for a month
    assert result.storage_bytes == 52_000_000
    assert result.breakdown["storage_month"] == pytest.approx(0.052 * 0.02)
    assert result.cost == pytest.approx(sum(result.breakdown.values()))
    assert result.currency == "USD" and result.warnings == []


def test_cpu_run_warns_when_memory_is_short() -> None:
    spec = load_spec(SPEC.replace("gpus: 1", "gpus: 0").replace("8GiB", "1GiB"))
    result = estimate(spec, 100_000_000, Precision.FP32, 1000, 50.0, Settings())
    assert result.device_class == "cpu-large"
    assert result.breakdown["gpu"] == 0
    assert "resources.memory" in result.warnings[0]


def test_settings_carry_the_price_table() -> None:
    settings = Settings()
    assert (settings.cpu_hour_price, settings.gpu_hour_price) == (0.05, 2.5)
    assert (settings.storage_gb_month_price, settings.currency) == (0.023, "USD")


def test_bad_inputs_are_refused() -> None:
    spec = load_spec(SPEC)
    with pytest.raises(InvalidInput, match="samples_per_s"):
        estimate(spec, 10, "fp32", 10, 0, Prices())
    with pytest.raises(InvalidInput, match="precision"):
        estimate(spec, 10, "fp64", 10, 1, Prices())
