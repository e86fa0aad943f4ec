#!/usr/bin/env bash
# Convert a job's trajectories to SFT data (artifacts/sft_data/<job>/). Default: the last job.
# Usage: scripts/convert_trajectories.sh [JOB] [trialbook convert options]
set -euo pipefail
cd "$(dirname "$0")/.."
TB="${TRIALBOOK:-trialbook}"
command -v "$TB" >/dev/null 2>&1 || { echo "convert_trajectories.sh: $TB is not on PATH: activate trialbook's venv (source .venv/bin/activate in its checkout) or set TRIALBOOK=/path/to/trialbook" >&2; exit 127; }
"$TB" convert --help >/dev/null 2>&1 || { echo "convert_trajectories.sh: 'trialbook convert' is not available yet in this trialbook version" >&2; exit 3; }
exec "$TB" convert "$@"
