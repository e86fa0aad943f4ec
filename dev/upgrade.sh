#!/usr/bin/env bash
# Re-resolve dependencies on purpose, and prove the suite on what the resolution picked.
#
#   dev/upgrade.sh            newest versions pyproject.toml allows -> uv.lock, then the whole
#                             suite on them; uv.lock is restored if anything fails. Run before
#                             each release; commit uv.lock with the versions it prints.
#   dev/upgrade.sh --lowest   the lowest version of each direct dependency (lowest-direct) in
#                             .venv-lowest/, then the suite: checks the lower bounds that
#                             pyproject.toml claims. uv.lock is left as it is.
set -euo pipefail
cd "$(dirname "$0")/.."
bash dev/setup.sh >/dev/null   # apt packages and the pinned uv
UV=.venv-tools/bin/uv
export UV_PYTHON_DOWNLOADS=never

versions() {  # name==version of every locked package
  python3 -c 'import sys, tomllib; d = tomllib.load(open(sys.argv[1], "rb"))
for p in d["package"]: print(p["name"] + "==" + str(p.get("version", "")))' "$1" | sort -u
}

if [ "${1:-}" = "--lowest" ]; then
  work="$(mktemp -d)"
  trap 'rm -rf "$work"' EXIT
  cp pyproject.toml README.md LICENSE "$work/"
  mkdir "$work/trialbook" && cp trialbook/__init__.py "$work/trialbook/"   # the version source
  (cd "$work" && "$OLDPWD/$UV" lock -q --resolution lowest-direct)
  echo "lowest-direct resolution of the direct dependencies:"
  versions "$work/uv.lock" | grep -iE "^($(python3 -c 'import tomllib,re
d = tomllib.load(open("pyproject.toml", "rb"))
reqs = d["project"]["dependencies"] + [r for v in d["project"]["optional-dependencies"].values() for r in v]
reqs += [r for v in d.get("dependency-groups", {}).values() for r in v if isinstance(r, str)]
print("|".join(sorted({re.split(r"[<>=!~;\[ ]", r)[0].lower().replace("_", "-") for r in reqs})))'))==" | sed 's/^/  /'
  # The locked set as requirements (not this project itself), into its own environment.
  (cd "$work" && "$OLDPWD/$UV" export -q --frozen --no-hashes --no-emit-project --extra test \
      --group reference -o requirements.txt)
  [ -x .venv-lowest/bin/python ] || "$UV" venv -q --python "${PYTHON:-python3}" .venv-lowest
  "$UV" pip sync -q --python .venv-lowest/bin/python "$work/requirements.txt"
  "$UV" pip install -q --python .venv-lowest/bin/python --no-deps -e .
  .venv-lowest/bin/ruff check trialbook tests benchmarks
  exec .venv-lowest/bin/python -m pytest -q -p no:cacheprovider "${@:2}"
fi

cp uv.lock uv.lock.before
trap 'rm -f uv.lock.before' EXIT
"$UV" lock -q --upgrade
echo "changed by the upgrade:"
diff <(versions uv.lock.before) <(versions uv.lock) | sed -n 's/^> /  /p' || true
if bash dev/test.sh "$@"; then
  echo "dev/upgrade.sh: the suite passed on the upgraded lock; review and commit uv.lock"
else
  cp uv.lock.before uv.lock
  bash dev/setup.sh --test >/dev/null
  echo "dev/upgrade.sh: the suite FAILED on the upgraded versions; uv.lock restored" >&2
  exit 1
fi
