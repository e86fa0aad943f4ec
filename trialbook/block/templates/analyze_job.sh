#!/usr/bin/env bash
# Run job analysis (writes artifacts/jobs/<job>/analysis/). Default: the last job.
# Usage: scripts/analyze_job.sh [JOB] [--gold FILE]
set -euo pipefail
cd "$(dirname "$0")/.."
TB="${TRIALBOOK:-trialbook}"
command -v "$TB" >/dev/null 2>&1 || { echo "analyze_job.sh: $TB is not on PATH: activate the venv (source .venv/bin/activate in trialbook's checkout) or install it (pip install -e /path/to/trialbook); TRIALBOOK=/path/to/trialbook also works" >&2; exit 127; }
"$TB" --version >/dev/null 2>&1 || { echo "analyze_job.sh: $TB does not start ($("$TB" --version 2>&1 | tail -n 1)): reinstall it or activate trialbook's venv" >&2; exit 127; }
"$TB" analyze-job --help >/dev/null 2>&1 || { echo "analyze_job.sh: this trialbook ($("$TB" --version 2>&1)) has no 'analyze-job' command: upgrade it" >&2; exit 3; }
exec "$TB" analyze-job "$@"
