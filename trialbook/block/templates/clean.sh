#!/usr/bin/env bash
# Remove this block's gitignored runtime outputs (jobs, logs, litellm, sft_data, dashboard
# site and cache). Archives, artifacts/index.yaml and config.yaml are never touched.
# Usage: scripts/clean.sh [--repos] [--dry-run]
set -euo pipefail
cd "$(dirname "$0")/.."
TB="${TRIALBOOK:-trialbook}"
command -v "$TB" >/dev/null 2>&1 || { echo "clean.sh: $TB is not on PATH: activate trialbook's venv (source .venv/bin/activate in its checkout) or set TRIALBOOK=/path/to/trialbook" >&2; exit 127; }
"$TB" clean --help >/dev/null 2>&1 || { echo "clean.sh: 'trialbook clean' is not available yet in this trialbook version" >&2; exit 3; }
exec "$TB" clean "$@"
