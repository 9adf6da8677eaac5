#!/usr/bin/env bash
# Create the Evidently peer virtualenv bench_drift.py compares against (never the project venv).
# Idempotent: an existing venv that already imports evidently is kept.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
venv="$here/.venv-evidently"
python="${PYTHON:-python3.11}"
if [[ -x "$venv/bin/python" ]] && "$venv/bin/python" -c "import evidently" 2>/dev/null; then
    echo "evidently peer venv ready: $venv ($("$venv/bin/python" -c 'import evidently; print(evidently.__version__)'))" >&2
    exit 0
fi
"$python" -m venv "$venv"
"$venv/bin/pip" install --quiet --upgrade pip >&2
"$venv/bin/pip" install --quiet "evidently${EVIDENTLY_VERSION:+==$EVIDENTLY_VERSION}" "pandas<3" numpy >&2
echo "evidently peer venv ready: $venv ($("$venv/bin/python" -c 'import evidently; print(evidently.__version__)'))" >&2
