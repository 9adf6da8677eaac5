"""Each benchmark runs end to end with --quick and prints one JSON line.

Benchmarks never run in CI: these are marked slow, which `addopts` in
pyproject.toml deselects unless asked for with `pytest -m slow`. Without
bench/.venv-mlflow (bench/setup_peers.sh) the MLflow reference is left out.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"
HAS_MLFLOW = (BENCH / ".venv-mlflow" / "bin" / "python").exists()

pytestmark = pytest.mark.slow


def run_bench(script: str, *args: str) -> dict[str, object]:
    done = subprocess.run(
        [sys.executable, str(BENCH / script), "--quick", *args],
        cwd=BENCH,
        stdout=subprocess.PIPE,
        timeout=900,
        check=True,
    )
    lines = done.stdout.decode().strip().splitlines()
    assert len(lines) == 1, lines
    result: dict[str, object] = json.loads(lines[0])
    return result


def peer_args() -> tuple[str, ...]:
    return () if HAS_MLFLOW else ("--no-mlflow",)


@pytest.mark.timeout(900)
def test_register_1gib_quick() -> None:
    result = run_bench("bench_register_1gib.py")
    assert result["bench"] == "register_1gib"
    assert isinstance(result["modelhub_median_s"], float)
    assert isinstance(result["openssl_median_s"], float)
    assert result["cache"] in ("cold", "warm")


@pytest.mark.timeout(900)
def test_register_throughput_quick() -> None:
    result = run_bench("bench_register_throughput.py", *peer_args())
    assert result["bench"] == "register_throughput"
    assert result["modelhub_inproc_vps"] and result["modelhub_rest_vps"]
    assert result["floor_ms"] > 0 and result["ratio_to_floor"] > 0
    assert result["modelhub_inproc_parallel_vps"] and result["rest_share_of_inproc"] > 0
    if HAS_MLFLOW:
        assert result["mlflow_inproc_vps"] and result["mlflow_rest_vps"]


@pytest.mark.timeout(900)
def test_lookup_quick() -> None:
    result = run_bench("bench_lookup_100k.py", *peer_args())
    assert result["bench"] == "lookup_100k"
    for key in (
        "alias_inproc_ms",
        "search_inproc_ms",
        "search_unkept_inproc_ms",
        "alias_rest_ms",
        "search_rest_ms",
    ):
        assert isinstance(result[key], float), key
    if HAS_MLFLOW:
        assert isinstance(result["mlflow_alias_inproc_ms"], float)


@pytest.mark.timeout(900)
def test_train_start_quick() -> None:
    result = run_bench("bench_train_start.py")
    assert result["bench"] == "train_start"
    assert result["mode"] == "inproc"
    for key in ("median_s", "cold_median_s", "server_shared_db_median_s", "torch_import_median_s"):
        assert isinstance(result[key], float), key
    assert isinstance(result["goal_met"], bool)


@pytest.mark.timeout(900)
def test_scheduler_quick() -> None:
    result = run_bench("bench_scheduler.py")
    assert result["bench"] == "scheduler"
    assert result["statuses"] == {"completed": 20}
    assert result["lost"] == 0
    for key in ("max_active_seen", "max_concurrent_workers", "max_concurrent_run_events"):
        assert result[key] <= result["max_running"], key
    assert isinstance(result["overhead_per_run_ms"], float)
    assert isinstance(result["hand_over_median_ms"], float)
    assert isinstance(result["register_median_ms"], float)


@pytest.mark.timeout(900)
def test_serving_quick() -> None:
    """Our server only (the peers' venvs take minutes and GBs): every line parses, the
    summary comes last, and the extras measured what they name."""
    out = BENCH / "results" / "smoke"
    command = [sys.executable, str(BENCH / "serving" / "run.py"), "--quick", "--skip-peers"]
    done = subprocess.run(
        [*command, "--concurrency", "1,32", "--out", str(out)],
        cwd=BENCH,
        stdout=subprocess.PIPE,
        timeout=900,
        check=True,
    )
    lines = [json.loads(line) for line in done.stdout.decode().strip().splitlines()]
    summary = lines[-1]
    assert summary["kind"] == "summary" and summary["ours"] == "modelhub"
    assert set(summary["servers"]) == {"modelhub", "modelhub-onnx"}
    extras = summary["extras"]
    assert extras["rolling_update_under_load"]["failed"] == 0
    assert extras["many_models"]["models"] == 100
    assert isinstance(extras["deploy_to_first_prediction"]["model_a_warm_spare_s"], float)


@pytest.mark.timeout(900)
def test_chaos_quick() -> None:
    result = run_bench("bench_chaos.py")
    assert result["bench"] == "chaos" and result["mode"] == "quick"
    assert result["requests"] and result["versions"]["acknowledged"]  # type: ignore[index]


@pytest.mark.timeout(900)
def test_drift_quick() -> None:
    has_evidently = (BENCH / ".venv-evidently" / "bin" / "python").exists()
    result = run_bench("bench_drift.py", *(() if has_evidently else ("--no-evidently",)))
    assert result["bench"] == "drift" and result["tests"] == ["wasserstein"]
    assert isinstance(result["check_s"], float)
    if has_evidently:
        assert isinstance(result["agreement"], float) and result["agreement"] >= 0.95


@pytest.mark.timeout(300)
def test_monitor_report_quick() -> None:
    result = run_bench("bench_monitor_report.py")
    assert result["bench"] == "monitor_report"
    for key in ("report_ms", "html_ms", "json_ms", "history_floor_ms", "total_ms"):
        assert isinstance(result[key], float), key
    assert isinstance(result["met"], bool)


def test_prediction_log_quick() -> None:
    result = run_bench("bench_prediction_log.py")
    assert result["bench"] == "prediction_log"
    assert isinstance(result["throughput_ratio"], float) and isinstance(
        result["hot_path_us"], float
    )
    counters = result["log_counters"]
    assert counters["uncapped"]["sampled"] > 0  # type: ignore[index]


@pytest.mark.timeout(300)
def test_rollup_overhead_quick() -> None:
    result = run_bench("bench_rollup_overhead.py")
    assert result["bench"] == "rollup_overhead"
    assert isinstance(result["extra_us_per_request"], float)
    assert isinstance(result["counted_us_per_request"], float)
    assert isinstance(result["met"], bool)


@pytest.mark.timeout(300)
def test_history_read_quick() -> None:
    result = run_bench("bench_history_read.py")
    assert result["bench"] == "history_read"
    assert isinstance(result["week_ms"], float) and isinstance(result["hour_ms"], float)


@pytest.mark.timeout(900)
def test_permutation_quick() -> None:
    result = run_bench("bench_permutation.py")
    assert result["bench"] == "permutation" and result["features"] == 20
    assert result["same_top_feature"] is True and result["top_feature"] == "f3"
    for key in ("modelhub_s", "sklearn_s", "batched_s"):
        assert isinstance(result[key], float), key


@pytest.mark.timeout(300)
def test_bias_quick() -> None:
    result = run_bench("bench_bias.py")
    assert result["bench"] == "bias" and result["rows"] == 10_000
    assert isinstance(result["ours_s"], float) and isinstance(result["fairlearn_direct_s"], float)
    assert result["max_abs_diff"] is not None and result["max_abs_diff"] < 1e-5  # type: ignore[operator]


@pytest.mark.timeout(900)
def test_federated_quick() -> None:
    result = run_bench("bench_federated.py")
    assert result["bench"] == "federated"
    assert result["clients"] == 10 and result["noniid_dirichlet_alpha"] == 0.3
    for key in (
        "centralised_val_accuracy",
        "fedavg_iid_val_accuracy",
        "noniid_fedprox_val_accuracy",
    ):
        assert 0 < result[key] <= 1  # type: ignore[operator]


@pytest.mark.timeout(900)
def test_ray_start_quick() -> None:
    result = run_bench("bench_ray_start.py")
    assert result["bench"] == "ray_start"
    assert isinstance(result["ray_median_s"], float)
    assert isinstance(result["local_warm_median_s"], float)
    assert isinstance(result["local_cold_median_s"], float)


@pytest.mark.timeout(600)
def test_export_quick() -> None:
    result = run_bench("bench_export.py")
    assert result["bench"] == "export"
    for trainer in ("tabular_classifier", "text_classifier", "char_lm"):
        figures = result[trainer]
        assert isinstance(figures, dict) and figures["max_abs_diff"] < 1e-3, trainer
        cases = [v for v in figures.values() if isinstance(v, dict)]
        assert cases and all(c["source_p50_ms"] > 0 and c["onnx_p50_ms"] > 0 for c in cases)


@pytest.mark.timeout(900)
def test_mlflow_import_quick() -> None:
    pytest.importorskip("mlflow", reason="the dev extra installs mlflow-skinny")
    result = run_bench("bench_mlflow_import.py")
    assert result["bench"] == "mlflow_import" and result["rounds"] == 1
    for key in ("modelhub_import_s", "modelhub_total_s", "mlflow_serve_first_prediction_s"):
        assert isinstance(result[key], float), key


@pytest.mark.timeout(600)
def test_quantize_quick() -> None:
    result = run_bench("bench_quantize.py")
    assert result["bench"] == "quantize"
    for model in ("tabular", "text_classifier"):
        figures = result[model]
        assert isinstance(figures, dict)
        assert figures["int8_bytes"] < figures["fp32_bytes"], model
        assert isinstance(figures["speedup"], float), model


@pytest.mark.timeout(900)
def test_pipeline_optimize_quick() -> None:
    result = run_bench("bench_pipeline_optimize.py")
    assert result["bench"] == "pipeline_optimize" and result["repeats"] == 1
    for key in ("before_samples_per_s", "after_samples_per_s", "gain"):
        assert isinstance(result[key], float), key


def test_tune_quick() -> None:
    result = run_bench("bench_tune.py")
    assert result["bench"] == "tune"
    for key in ("study_wall_s", "sequential_wall_s", "speedup", "study_best_val_loss"):
        assert isinstance(result[key], float), key
    # The reference replays the study's trials: it can only match or beat its best.
    assert result["sequential_best_val_loss"] <= result["study_best_val_loss"] + 1e-6


def test_preference_quick() -> None:
    result = run_bench("bench_preference.py")
    assert result["bench"] == "preference"
    for key in ("modelhub_steps_per_s", "torch_steps_per_s", "ratio", "ratio_cached"):
        assert isinstance(result[key], float) and result[key] > 0, key
