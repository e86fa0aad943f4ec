#!/usr/bin/env bash
# Run job analysis (writes artifacts/jobs/<job>/analysis/). Default: the last job.
# Usage: scripts/analyze_job.sh [JOB] [--gold FILE]
set -euo pipefail
cd "$(dirname "$0")/.."
TB="${TRIALBOOK:-trialbook}"
command -v "$TB" >/dev/null 2>&1 || { echo "analyze_job.sh: $TB is not on PATH: activate trialbook's venv (source .venv/bin/activate in its checkout) or set TRIALBOOK=/path/to/trialbook" >&2; exit 127; }
"$TB" analyze-job --help >/dev/null 2>&1 || { echo "analyze_job.sh: 'trialbook analyze-job' is not available yet in this trialbook version" >&2; exit 3; }
exec "$TB" analyze-job "$@"
