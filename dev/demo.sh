#!/usr/bin/env bash
# Set up from uv.lock and run the demo: a real job (5 example tasks x oracle/nop x 3
# attempts) in the bubblewrap sandbox, no API key needed. Prints where every output is.
set -euo pipefail
cd "$(dirname "$0")/.."
bash dev/setup.sh
dir="${1:-demo-runs/demo-$(date +%Y%m%d-%H%M%S)}"
venv="${UV_PROJECT_ENVIRONMENT:-.venv}"
"$venv/bin/trialbook" demo "$dir"
