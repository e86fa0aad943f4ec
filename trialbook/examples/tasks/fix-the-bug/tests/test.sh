#!/usr/bin/env bash
# Four checks; reward.json holds the fraction passed ("tests_passed") and reward 1 only if all pass.
cd /app
python3 - <<'PY'
import json
from calc import total
cases = [(0, 0), (1, 1), (4, 10), (10, 55)]
passed = sum(1 for n, want in cases if total(n) == want)
for n, want in cases:
    print(f"total({n}) = {total(n)} (want {want})")
frac = passed / len(cases)
json.dump({"reward": 1.0 if passed == len(cases) else 0.0, "tests_passed": frac},
          open("/logs/verifier/reward.json", "w"))
PY
