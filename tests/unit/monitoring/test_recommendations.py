"""Each recommendation from fixed figures: what it saw, what to do, the command."""

from __future__ import annotations

from modelhub.domain.monitor_report import Accuracy, Drift, FeatureDrift, VersionFigures
from modelhub.domain.records import Lineage
from modelhub.monitoring.observations import Objectives
from modelhub.monitoring.recommendations import recommend
from tests.unit.monitoring.figures import MIB, deployment, healthy, performance, version


def test_a_healthy_model_gets_no_recommendation() -> None:
    assert recommend(healthy()) == []
    assert recommend(healthy(objectives=Objectives(p99_ms=50.0))) == []


def test_scale_out_names_the_replica_count_that_brings_p99_under_its_objective() -> None:
    slow = performance(p99_ms=100.0, in_flight_peak=12, throughput_rps=40.0)
    observed = healthy(objectives=Objectives(p99_ms=50.0), performance=slow)
    [found] = recommend(observed)
    assert found.kind == "scale_out"
    assert found.command == "modelhub deployments scale intents 4"  # ceil(2 x 100 / 50)
    assert found.figures["recommended_replicas"] == 4
    assert found.figures["throughput_per_replica_rps"] == 20.0
    assert found.figures["in_flight_per_replica"] == 6.0
    assert found.figures["in_flight_per_replica_after"] == 3.0
    assert "p99 100.0 ms is over its objective 50.0 ms" in found.seen


def test_scale_out_adds_at_least_one_replica_and_at_most_the_limit() -> None:
    a_bit = performance(p99_ms=60.0, in_flight_peak=5)
    [found] = recommend(healthy(objectives=Objectives(p99_ms=50.0), performance=a_bit))
    assert found.figures["recommended_replicas"] == 3  # ceil(2.4)=3 is also replicas + 1
    far = performance(p99_ms=5000.0, in_flight_peak=500)
    [capped] = recommend(
        healthy(objectives=Objectives(p99_ms=50.0, max_replicas=8), performance=far)
    )
    assert capped.figures["recommended_replicas"] == 8


def test_no_scale_out_when_nothing_queues_at_the_replicas() -> None:
    slow_alone = performance(p99_ms=100.0, in_flight_peak=2)  # two replicas, two in flight
    assert recommend(healthy(objectives=Objectives(p99_ms=50.0), performance=slow_alone)) == []


def _figures(number: int, requests: int, errors: int, p99: float = 12.0) -> VersionFigures:
    return VersionFigures(
        version=number, requests=requests, errors=errors, error_rate=errors / requests, p99_ms=p99
    )


def test_roll_back_to_the_previous_version_that_had_fewer_errors() -> None:
    observed = healthy(
        performance=performance(versions=[_figures(3, 2000, 100)]),
        previous=performance(versions=[_figures(2, 3000, 12)]),
    )
    [found] = recommend(observed)
    assert found.kind == "roll_back"
    assert found.command == "modelhub deployments rollback intents"
    assert found.figures == {"deployment": "intents", "from_version": 3, "to_version": 2}
    assert "error rate 5.00% on version 3 against 0.40% on version 2" in found.seen


def test_roll_back_a_canary_that_is_slower_than_the_stable_version() -> None:
    observed = healthy(
        deployments=[deployment(versions=[2, 3], previous_version=1)],
        performance=performance(
            versions=[_figures(2, 900, 1, p99=10.0), _figures(3, 100, 0, p99=40.0)]
        ),
    )
    [found] = recommend(observed)
    assert found.command == "modelhub deployments rollback intents"  # drops the canary
    assert "p99 40.0 ms on version 3 against 10.0 ms on version 2" in found.seen


def test_roll_back_to_an_older_version_is_an_update_to_it() -> None:
    observed = healthy(
        deployments=[deployment(previous_version=2)],
        performance=performance(versions=[_figures(3, 2000, 100)]),
        previous=performance(versions=[_figures(1, 3000, 3)]),
    )
    [found] = recommend(observed)
    assert found.command == "modelhub deployments update intents --version 1"


def test_roll_back_on_accuracy_from_feedback() -> None:
    accuracy = Accuracy(
        metric="accuracy", value=0.8, labelled=500, predictions=5000, versions={2: 0.9, 3: 0.8}
    )
    [found] = recommend(healthy(accuracy=accuracy))
    assert found.kind == "roll_back" and found.figures["to_version"] == 2
    assert "accuracy 0.800 on version 3 against 0.900 on version 2" in found.seen


def test_no_roll_back_for_small_differences_or_thin_evidence() -> None:
    close = healthy(
        performance=performance(versions=[_figures(3, 2000, 10, p99=13.0)]),
        previous=performance(versions=[_figures(2, 3000, 9, p99=12.0)]),
    )
    assert recommend(close) == []
    thin = healthy(
        performance=performance(versions=[_figures(3, 2000, 100)]),
        previous=performance(versions=[_figures(2, 10, 0)]),  # 10 requests say nothing
    )
    assert recommend(thin) == []


def _drift(features: list[str]) -> Drift:
    verdicts = [
        FeatureDrift(
            feature=f,
            test="Kolmogorov-Smirnov",
            statistic=0.4,
            p_value=1e-8,
            threshold=0.05,
            drifted=True,
        )
        for f in features
    ]
    return Drift(version=3, drifted=True, features=verdicts, drifted_features=features)


def test_retrain_names_the_pipeline_of_the_versions_lineage_and_the_drifted_features() -> None:
    [found] = recommend(healthy(drift=_drift(["age", "income"])))
    assert found.kind == "retrain"
    assert found.command == "modelhub pipelines start intents-train"
    assert "drift in features age, income of version 3" in found.seen
    assert "pipeline intents-train" in found.action and "run 17" in found.action


def test_retrain_without_lineage_says_no_pipeline_is_known() -> None:
    observed = healthy(drift=_drift(["age"]), version=version(lineage=Lineage()))
    [found] = recommend(observed)
    assert found.kind == "retrain" and found.command is None
    assert "no training lineage" in found.action


def test_quantize_a_large_fp32_version_whose_latency_is_high() -> None:
    big = version(precision="fp32", size=400 * MIB)
    slow = performance(p99_ms=150.0)
    [found] = recommend(healthy(version=big, performance=slow, previous=slow))
    assert found.kind == "quantize"
    assert "fp32, 400 MiB" in found.seen and "150.0 ms" in found.seen
    assert (
        recommend(
            healthy(
                version=version(precision="fp16", size=400 * MIB), performance=slow, previous=slow
            )
        )
        == []
    )
    assert (
        recommend(
            healthy(
                version=version(precision="fp32", size=10 * MIB), performance=slow, previous=slow
            )
        )
        == []
    )
    assert recommend(healthy(version=big)) == []  # fast enough


def test_set_a_drift_reference_when_none_exists() -> None:
    [found] = recommend(healthy(reference_missing=True))
    assert found.kind == "set_reference"
    assert found.command == "modelhub monitor reference intents@3 --data FILE"


def test_in_flight_is_shared_over_the_replicas_of_every_deployment() -> None:
    two = [deployment(), deployment(name="intents-eu")]  # 2 + 2 replicas
    calm = performance(p99_ms=100.0, in_flight_peak=3)
    assert (
        recommend(healthy(objectives=Objectives(p99_ms=50.0), performance=calm, deployments=two))
        == []
    )
    busy = performance(p99_ms=100.0, in_flight_peak=12)
    found = recommend(
        healthy(objectives=Objectives(p99_ms=50.0), performance=busy, deployments=two)
    )
    assert [r.command for r in found] == [
        "modelhub deployments scale intents 4",
        "modelhub deployments scale intents-eu 4",
    ]
    assert found[0].figures["in_flight_per_replica"] == 3.0
