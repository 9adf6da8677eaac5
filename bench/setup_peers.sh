#!/usr/bin/env bash
# Create the peer virtualenvs the benchmarks compare against (never the project venv).
# Idempotent: an existing venv that already imports mlflow is kept.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
venv="$here/.venv-mlflow"
python="${PYTHON:-python3.11}"
if [[ -x "$venv/bin/python" ]] && "$venv/bin/python" -c "import mlflow" 2>/dev/null; then
    echo "mlflow peer venv ready: $venv ($("$venv/bin/python" -c 'import mlflow; print(mlflow.__version__)'))" >&2
    exit 0
fi
"$python" -m venv "$venv"
"$venv/bin/pip" install --quiet --upgrade pip >&2
"$venv/bin/pip" install --quiet "mlflow${MLFLOW_VERSION:+==$MLFLOW_VERSION}" numpy >&2
echo "mlflow peer venv ready: $venv ($("$venv/bin/python" -c 'import mlflow; print(mlflow.__version__)'))" >&2
