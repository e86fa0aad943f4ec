#!/usr/bin/env bash
# Install trialbook on a fresh Debian machine with Python >= 3.11, exactly as locked in uv.lock.
#
#   dev/setup.sh            the package and its runtime needs (bubblewrap, git): for the demo
#   dev/setup.sh --test     + the test extra and the reference tools (swebench, LLaMA-Factory),
#                             Chromium and Podman (+ runc, podman-docker, debootstrap) for the
#                             browser and container tests, and the demo's base images (below)
#
# System packages come from apt; the script says what it installs and asks sudo only when
# not root. Python packages come from uv.lock through a pinned uv kept in .venv-tools/, so
# a new upstream release never changes what a fresh clone gets. Environment:
#   PYTHON=python3.13                  the interpreter (default: the first >= 3.11 found)
#   UV_PROJECT_ENVIRONMENT=.venv-py313 where the environment goes (default: .venv)
set -euo pipefail
cd "$(dirname "$0")/.."
UV_VERSION="0.13.9"
want_test=0
[ "${1:-}" = "--test" ] && want_test=1

# --- system packages -------------------------------------------------------------------
apt_pkgs=()
command -v bwrap >/dev/null 2>&1 || apt_pkgs+=(bubblewrap)
command -v git >/dev/null 2>&1 || apt_pkgs+=(git)
# Chromium for the suite's browser tests of the dashboard (Playwright drives the system's).
if [ "$want_test" = 1 ] && ! command -v chromium >/dev/null 2>&1; then
  apt_pkgs+=(chromium)
fi
# Podman (with runc: crun refuses hybrid cgroup hierarchies) for the tests of environment.type podman.
if [ "$want_test" = 1 ]; then
  command -v podman >/dev/null 2>&1 || apt_pkgs+=(podman)
  command -v runc >/dev/null 2>&1 || [ -x /usr/sbin/runc ] || apt_pkgs+=(runc)
  # A `docker` command for the tests of environment.type docker: podman-docker runs podman
  # (it conflicts with Debian's docker.io, so only where no docker command exists).
  command -v docker >/dev/null 2>&1 || apt_pkgs+=(podman-docker)
  # debootstrap makes the Debian root filesystem of the demo tasks' base images (tests/demo_images.py).
  command -v debootstrap >/dev/null 2>&1 || [ -x /usr/sbin/debootstrap ] || apt_pkgs+=(debootstrap)
  # npm (with Node.js) fetches the real Claude Code and Codex CLIs the gateway tests run.
  command -v npm >/dev/null 2>&1 || apt_pkgs+=(npm)
fi
if [ "${#apt_pkgs[@]}" -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    SUDO=()
  elif command -v sudo >/dev/null 2>&1; then
    SUDO=(sudo)
  else
    echo "setup.sh: please install these Debian packages first: apt-get install -y ${apt_pkgs[*]}" >&2
    exit 1
  fi
  echo "setup.sh: installing Debian packages: ${apt_pkgs[*]}${SUDO:+ (with sudo)}" >&2
  "${SUDO[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${SUDO[@]}" apt-get install -y -qq "${apt_pkgs[@]}" >/dev/null
fi

# --- Python and a pinned uv ----------------------------------------------------------------
PY="${PYTHON:-}"
if [ -z "$PY" ]; then
  for cand in python3.11 python3.12 python3.13 python3; do
    if command -v "$cand" >/dev/null 2>&1 && "$cand" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
      PY="$cand"; break
    fi
  done
fi
[ -n "$PY" ] || { echo "setup.sh: Python >= 3.11 not found" >&2; exit 1; }
PY="$(command -v "$PY")"
UV=.venv-tools/bin/uv
if ! { [ -x "$UV" ] && [ "$("$UV" --version 2>/dev/null | cut -d' ' -f2)" = "$UV_VERSION" ]; }; then
  echo "setup.sh: installing uv $UV_VERSION into .venv-tools/" >&2
  rm -rf .venv-tools
  "$PY" -m venv .venv-tools
  .venv-tools/bin/python -m pip install -q --disable-pip-version-check "uv==$UV_VERSION"
fi

# --- the locked environment -----------------------------------------------------------------
export UV_PYTHON_DOWNLOADS=never
if [ "$want_test" = 1 ]; then
  "$UV" sync -q --locked --python "$PY" --extra test --group reference
else
  # --inexact: the demo's set-up leaves test packages of an earlier --test set-up in place.
  "$UV" sync -q --locked --inexact --python "$PY"
fi

# --- agent CLIs for the gateway's end-to-end tests ---------------------------------------------
# tests/test_gateway_clis.py runs the real Claude Code and Codex CLIs from .cache/agent-clis/
# (offline). dev/test.sh makes a missing CLI a test failure; a bare pytest run skips and says why.
if [ "$want_test" = 1 ] && command -v npm >/dev/null 2>&1; then
  for spec in "claude-code @anthropic-ai/claude-code 2.1.332" "codex @openai/codex 0.171.0"; do
    read -r name pkg version <<<"$spec"
    dir=".cache/agent-clis/$name"
    have="$("$PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))["version"])' \
            "$dir/node_modules/$pkg/package.json" 2>/dev/null || true)"
    if [ "$have" != "$version" ]; then
      echo "setup.sh: installing $pkg@$version into $dir (npm, for the agent CLI tests)" >&2
      rm -rf "$dir"
      npm install --prefix "$dir" --no-audit --no-fund --loglevel=error "$pkg@$version" >/dev/null \
        || { echo "setup.sh: warning: npm could not install $pkg (is the npm registry reachable?); its end-to-end test will fail" >&2; rm -rf "$dir"; }
    fi
  done
fi

# --- base images of the bundled demo tasks, made offline from Debian's archive --------------------
# tests/demo_images.py: debootstrap (needs root and deb.debian.org, once; cached under
# ~/.cache/trialbook-test) then `podman import` as debian:bookworm-slim and python:3.11-slim, so
# the container tests need no registry and no network.
if [ "$want_test" = 1 ] && command -v podman >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ]; then
    echo "setup.sh: making the demo tasks' base images (tests/demo_images.py; debootstrap the first time)" >&2
    .venv/bin/python tests/demo_images.py >/dev/null \
      || echo "setup.sh: warning: the demo's base images could not be made; the container demo tests will skip or fail" >&2
  else
    echo "setup.sh: note: as root, run .venv/bin/python tests/demo_images.py to make the demo's base images" >&2
  fi
fi
