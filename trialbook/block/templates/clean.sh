#!/usr/bin/env bash
# Remove this block's gitignored runtime outputs (jobs, logs, litellm, sft_data, dashboard
# site and cache). Archives, artifacts/index.yaml and config.yaml are never touched.
# Usage: scripts/clean.sh [--repos] [--dry-run]
set -euo pipefail
cd "$(dirname "$0")/.."
TB="${TRIALBOOK:-trialbook}"
command -v "$TB" >/dev/null 2>&1 || { echo "clean.sh: $TB is not on PATH: activate the venv (source .venv/bin/activate in trialbook's checkout) or install it (pip install -e /path/to/trialbook); TRIALBOOK=/path/to/trialbook also works" >&2; exit 127; }
"$TB" --version >/dev/null 2>&1 || { echo "clean.sh: $TB does not start ($("$TB" --version 2>&1 | tail -n 1)): reinstall it or activate trialbook's venv" >&2; exit 127; }
"$TB" clean --help >/dev/null 2>&1 || { echo "clean.sh: this trialbook ($("$TB" --version 2>&1)) has no 'clean' command: upgrade it" >&2; exit 3; }
exec "$TB" clean "$@"
