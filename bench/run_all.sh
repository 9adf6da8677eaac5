#!/usr/bin/env bash
# Set up the peer venvs, run every benchmark, append each JSON line to bench/results.jsonl.
# Extra arguments (e.g. --quick) go to every benchmark.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
python="${MODELHUB_PYTHON:-$here/../.venv/bin/python}"
[[ -x "$python" ]] || python="$(command -v python)"
results="$here/results.jsonl"
"$here/setup_peers.sh"
"$here/setup_evidently.sh"
cd "$here"
status=0
for bench in bench_register_1gib.py bench_register_throughput.py bench_lookup_100k.py \
    bench_auth.py bench_put_file.py bench_trainer_overhead.py bench_train_start.py \
    bench_scheduler.py serving/run.py bench_input_limits.py bench_chaos.py bench_drift.py \
    bench_monitor_report.py bench_prediction_log.py bench_rollup_overhead.py \
    bench_history_read.py bench_first_deploy.py bench_bias.py bench_permutation.py \
    bench_ddp.py bench_federated.py bench_ray_start.py bench_export.py \
    bench_mlflow_import.py bench_quantize.py bench_pipeline_optimize.py \
    bench_tune.py bench_pool.py bench_fast_path.py bench_tail.py bench_resource_limits.py \
    bench_two_servers.py bench_preference.py; do
    echo "== $bench $*" >&2
    if line="$("$python" "$bench" "$@")"; then
        echo "$line" | tee -a "$results"
    else
        echo "!! $bench failed" >&2
        status=1
    fi
done
exit $status
