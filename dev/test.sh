#!/usr/bin/env bash
# Set up from uv.lock (apt packages, .venv with the test extra and reference tools), lint
# with ruff, and run the whole test suite. Extra arguments go to pytest.
# pytest's exit code 5 (no tests collected) is a failure like any other non-zero code.
set -euo pipefail
cd "$(dirname "$0")/.."
bash dev/setup.sh --test
venv="${UV_PROJECT_ENVIRONMENT:-.venv}"
"$venv/bin/ruff" check trialbook tests benchmarks
# setup.sh installed Chromium: a browser test that cannot start it is a failure, not a skip.
export TRIALBOOK_REQUIRE_BROWSER=1
# ... and it fetched the agent CLIs: a missing one fails its test instead of leaving it out.
export TRIALBOOK_REQUIRE_AGENT_CLIS=1
exec "$venv/bin/python" -m pytest -q -p no:cacheprovider "$@"
