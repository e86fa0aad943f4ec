#!/usr/bin/env bash
# Convert a job's trajectories to SFT data (artifacts/sft_data/<job>/). Default: the last job.
# Usage: scripts/convert_trajectories.sh [JOB] [trialbook convert options]
set -euo pipefail
cd "$(dirname "$0")/.."
TB="${TRIALBOOK:-trialbook}"
command -v "$TB" >/dev/null 2>&1 || { echo "convert_trajectories.sh: $TB is not on PATH: activate the venv (source .venv/bin/activate in trialbook's checkout) or install it (pip install -e /path/to/trialbook); TRIALBOOK=/path/to/trialbook also works" >&2; exit 127; }
"$TB" --version >/dev/null 2>&1 || { echo "convert_trajectories.sh: $TB does not start ($("$TB" --version 2>&1 | tail -n 1)): reinstall it or activate trialbook's venv" >&2; exit 127; }
"$TB" convert --help >/dev/null 2>&1 || { echo "convert_trajectories.sh: this trialbook ($("$TB" --version 2>&1)) has no 'convert' command: upgrade it" >&2; exit 3; }
exec "$TB" convert "$@"
