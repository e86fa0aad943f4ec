"""Local stand-ins for the base images the bundled demo tasks name, built offline from a cached
Debian root filesystem.

The example tasks' Dockerfiles say ``FROM debian:bookworm-slim`` and ``FROM python:3.11-slim``,
and no container registry is reachable from the test machines. So this module makes both from
one Debian bookworm ``minbase`` root filesystem with ``python3`` (made by ``debootstrap`` from
Debian's archive) and imports it with ``podman import`` under the names the Dockerfiles resolve
to: ``docker.io/library/debian:bookworm-slim`` and ``docker.io/library/python:3.11-slim``. They
are not Docker Hub's images: the "python" one is Debian's ``python3`` package (Python 3.11.2 in
bookworm) at ``/usr/bin/python3``, not a Python built into ``/usr/local``; the demo's tasks only
need a ``python3`` on the path and bash.

Made once, then reused across test runs:

* the root filesystem is kept as a tar under ``~/.cache/trialbook-test/`` (the only step that
  needs the network, Debian's archive: ``dev/setup.sh --test`` runs this module to make it, so
  the tests themselves stay offline);
* the images carry the label ``trialbook-test.recipe=<RECIPE>``; an image of the right recipe is
  reused, one of another recipe is replaced, and an image of those names that is not ours (a
  real one pulled from Docker Hub) is used as it is and never overwritten.

Run ``python tests/demo_images.py`` to make the cache and the images ahead of the tests.
Without a tar and without a way to make it (not root, no debootstrap, no archive) the tests that
need the images skip, or fail in CI (``CI=true``), naming the reason.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from filelock import FileLock

sys.path.insert(0, str(Path(__file__).resolve().parent))
from container_engine import _unavailable, podman  # noqa: E402

#: What the root filesystem is made of; a change here makes new images (and a new tar).
RECIPE = "debian-bookworm-minbase-python3-v1"
SUITE = "bookworm"
MIRROR = "http://deb.debian.org/debian"
#: The names the demo tasks' ``FROM`` lines resolve to, all given to the one image.
NAMES = ("docker.io/library/debian:bookworm-slim", "docker.io/library/python:3.11-slim")
LABEL = "trialbook-test.recipe"


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    path = Path(base) / "trialbook-test"
    path.mkdir(parents=True, exist_ok=True)
    return path


def rootfs_tar() -> Path:
    """The cached tar of the root filesystem, made by debootstrap on first use (needs root and
    Debian's archive; about a minute or two)."""
    tar = cache_dir() / f"{RECIPE}.tar"
    if tar.is_file():
        return tar
    if shutil.which("debootstrap") is None:
        _unavailable("debootstrap is not installed (dev/setup.sh --test installs it)")
    if os.geteuid() != 0:
        _unavailable(f"{tar} is missing and debootstrap needs root: run `sudo python tests/demo_images.py`")
    with tempfile.TemporaryDirectory(dir=cache_dir(), prefix="debootstrap-") as tmp:
        root = Path(tmp) / "root"
        res = subprocess.run(["debootstrap", "--variant=minbase", "--include=python3", SUITE, str(root), MIRROR],
                             capture_output=True, text=True, timeout=1200)
        if res.returncode != 0:
            _unavailable(f"debootstrap of {SUITE} failed (is {MIRROR} reachable?): "
                         f"{(res.stderr or res.stdout).strip()[-300:]}")
        for junk in ("var/cache/apt/archives", "var/lib/apt/lists"):  # downloaded packages and indexes
            for p in (root / junk).glob("*"):
                if p.is_file():
                    p.unlink()
        partial = Path(tmp) / "rootfs.tar"
        subprocess.run(["tar", "--numeric-owner", "-C", str(root), "-cf", str(partial), "."], check=True,
                       timeout=600)
        os.replace(partial, tar)  # atomic: a half-written tar is never taken for the cache
    return tar


def _recipe_of(name: str) -> str | None:
    """The recipe label of the local image ``name``; "" for an image that is not ours; None if absent."""
    res = podman("image", "inspect", "--format", f'{{{{index .Labels "{LABEL}"}}}}', name, check=False)
    if res.returncode != 0:
        return None
    value = res.stdout.strip()
    return "" if value in ("", "<no value>") else value


def demo_base_images() -> list[str]:
    """The names of the demo tasks' base images, present in podman's store (module docstring)."""
    if shutil.which("podman") is None:
        _unavailable("podman is not installed (dev/setup.sh --test installs it)")
    with FileLock(str(cache_dir() / f"{RECIPE}.lock")):  # one maker across test processes
        found = {name: _recipe_of(name) for name in NAMES}
        missing = [name for name, recipe in found.items() if recipe is not None and recipe != RECIPE and recipe != ""]
        missing += [name for name, recipe in found.items() if recipe is None]
        if not missing:
            return list(NAMES)
        tar = rootfs_tar()
        first, *rest = missing
        res = podman("import", "--change", f"LABEL {LABEL}={RECIPE}", "--change", 'CMD ["/bin/bash"]',
                     str(tar), first, check=False, timeout=600)
        if res.returncode != 0:
            _unavailable(f"podman import of {tar} failed: {res.stderr.strip()[-300:]}")
        for name in rest:
            podman("tag", first, name)
    return list(NAMES)


if __name__ == "__main__":
    import pytest

    try:
        print("\n".join(demo_base_images()))
    except (pytest.skip.Exception, pytest.fail.Exception) as exc:
        sys.exit(f"demo_images: {exc.msg}")
