"""The rules of optimisation: the tolerance, the decision to register, and which optimised
variant `deploy --optimize` serves."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

import pytest

from modelhub.domain.enums import Framework, ModelType
from modelhub.domain.optimisation import (
    EvalRows,
    Method,
    Target,
    check_tolerance,
    choose_variant,
    decide,
    method_for,
    variants_of,
    within_tolerance,
)
from modelhub.domain.records import Lineage, ModelVersion
from modelhub.errors import InvalidInput


def version(number: int, metrics: dict[str, float] | None = None, **lineage: Any) -> ModelVersion:
    return ModelVersion(
        name="m",
        version=number,
        type=ModelType.CLASSIFICATION,
        framework=Framework.ONNX,
        size=1,
        digest="d",
        lineage=Lineage(**lineage),
        metrics=metrics or {},
        created_at=datetime.now(UTC),
        created_by="ada",
    )


def variant(number: int, p50: float, drop: float, tolerance: float = 0.01) -> ModelVersion:
    metrics = {"p50_ms": p50, "accuracy_drop": drop, "max_accuracy_drop": tolerance}
    metrics["source_p50_ms"] = 1.0
    return version(number, metrics, optimised_from="m@1", optimisation={"method": f"int8-{number}"})


@pytest.mark.parametrize("value", [0.0, 0.01, 1.0])
def test_a_tolerance_from_0_to_1_is_taken(value: float) -> None:
    assert check_tolerance(value) == value


@pytest.mark.parametrize("value", [-0.01, 1.5, math.nan, math.inf])
def test_a_tolerance_out_of_range_is_invalid_input(value: float) -> None:
    with pytest.raises(InvalidInput, match="max-accuracy-drop"):
        check_tolerance(value)


def test_int8_is_static_only_with_calibration_rows() -> None:
    assert method_for(Target.INT8, calibrated=False) is Method.INT8_DYNAMIC
    assert method_for(Target.INT8, calibrated=True) is Method.INT8_STATIC
    assert method_for(Target.ONNX, calibrated=False) is Method.ONNX
    assert method_for(Target.FP16, calibrated=False) is Method.FP16


def test_a_drop_over_the_tolerance_is_registered_only_when_forced() -> None:
    assert decide(0.005, 0.01, force=False)[:2] == (True, True)
    assert decide(0.01, 0.01, force=False)[:2] == (True, True)  # the bound is inclusive
    assert decide(-0.02, 0.0, force=False)[:2] == (True, True)  # better than the source
    within, register, why = decide(0.02, 0.01, force=False)
    assert (within, register) == (False, False)
    assert "not registered" in why and "--force" in why
    within, register, why = decide(0.02, 0.01, force=True)
    assert (within, register) == (False, True)
    assert "--force" in why


def test_a_forced_variant_over_its_tolerance_is_not_within_it() -> None:
    assert within_tolerance(variant(2, 0.5, 0.005))[0]
    over, why = within_tolerance(variant(2, 0.5, 0.03))
    assert not over and "exceeds" in why
    assert not within_tolerance(version(2, {}, optimised_from="m@1"))[0]


def test_variants_are_the_versions_made_from_the_source() -> None:
    source = version(1)
    mine, other = variant(2, 0.5, 0.0), version(3, optimised_from="m@9")
    assert variants_of(source, [source, mine, other]) == [mine]


def test_the_fastest_variant_within_tolerance_is_chosen() -> None:
    source = version(1)
    slow, fast, inaccurate = variant(2, 0.8, 0.0), variant(3, 0.3, 0.004), variant(4, 0.1, 0.05)
    choice = choose_variant(source, [slow, fast, inaccurate], lambda v: None)
    assert choice.chosen == 3
    assert choice.method == "int8-3"
    assert "lowest p50" in choice.reason and "3.3x" in choice.reason
    verdicts = {v.version: v.qualifies for v in choice.considered}
    assert verdicts == {2: True, 3: True, 4: False}


def test_a_variant_that_may_not_serve_the_environment_is_passed_over() -> None:
    source = version(1)
    fast, slow = variant(2, 0.1, 0.0), variant(3, 0.5, 0.0)
    choice = choose_variant(
        source, [fast, slow], lambda v: "not approved" if v.version == 2 else None
    )
    assert choice.chosen == 3
    assert next(v for v in choice.considered if v.version == 2).why == "not approved"


def test_without_a_qualifying_variant_the_source_is_served_and_said_so() -> None:
    source = version(1)
    choice = choose_variant(source, [], lambda v: None)
    assert choice.chosen == 1 and "no optimised variants" in choice.reason
    choice = choose_variant(source, [variant(2, 0.1, 0.5)], lambda v: None)
    assert choice.chosen == 1 and "none of" in choice.reason


def test_a_latency_tie_goes_to_the_older_variant() -> None:
    choice = choose_variant(
        version(1), [variant(3, 0.2, 0.0), variant(2, 0.2, 0.0)], lambda v: None
    )
    assert choice.chosen == 2


def test_a_large_eval_set_is_measured_on_an_even_spread_of_rows() -> None:
    rows = EvalRows("input", [[float(i)] for i in range(10)], [str(i) for i in range(10)], "v")
    assert rows.at_most(10) is rows
    spread = rows.at_most(4)
    assert spread.rows == [[0.0], [3.0], [6.0], [9.0]] and spread.labels == ["0", "3", "6", "9"]
    assert spread.source == "v, one row in 3 of 10"
