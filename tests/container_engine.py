"""A container engine for the tests, and a small base image made offline from the host's binaries.

No registry is reachable from the test machines, so the base image is assembled here: bash,
dash and a few coreutils with the shared libraries they load, copied from the host into a
root filesystem that ``podman import`` turns into ``localhost/trialbook-test/base:<hash>``
(made once, reused while the host's binaries stay the same).

Podman as root on these machines needs ``runc`` (crun refuses hybrid cgroups) and ulimits
below the host's hard limits: :data:`ENGINE_FLAGS` and :data:`RUN_FLAGS` are what
docs/environments.md tells users to set. In CI (``CI=true``) an engine that cannot run is a
failure, elsewhere the tests are skipped with the engine's own error as the reason.
"""

from __future__ import annotations

import glob
import hashlib
import os
import shutil
import subprocess
import tarfile
import tempfile
from pathlib import Path

import pytest

ENGINE = "podman"
ENGINE_FLAGS = ["--runtime", "runc"] if shutil.which("runc") else []
RUN_FLAGS = ["--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1024:1024"]
BINARIES = ["bash", "sh", "dash", "cat", "ls", "mkdir", "rm", "cp", "mv", "sleep", "touch", "chmod", "head",
            "tr", "grep", "id", "env", "wc", "stat", "sed", "printf", "true", "false", "readlink", "tail"]


def podman(*args: str, check: bool = True, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["podman", *ENGINE_FLAGS, *args], capture_output=True, text=True, timeout=timeout,
                          check=check)


def _unavailable(reason: str) -> None:
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(f"container engine unusable in CI: {reason}")
    pytest.skip(f"container engine unusable here: {reason}")


#: Optional parts of an image: more host binaries, and host directories copied whole.
EXTRAS: dict[str, tuple[list[str], list[str]]] = {
    # the model gateway's bridge (and agents written in Python) need the host's python3 and its stdlib
    "python": (["python3"], ["stdlib"]),
    # the agent CLIs from npm (Claude Code, Codex) are started by node; Claude Code's native
    # binary also loads the rest of the C library (librt, ...), as any Debian image has it
    "node": (["node"], ["/lib/x86_64-linux-gnu/lib*.so.[0-9]"]),
    # SWE-style grading diffs and patches the checkout with git (its builtins only)
    "git": (["git"], []),
}
#: The C library's parts (what a ``lib*.so.N`` pattern takes from the host).
_GLIBC = {"librt", "libpthread", "libdl", "libm", "libresolv", "libutil", "libc", "libanl", "libnss_files",
          "libnss_dns"}
_SKIP = {"test", "idlelib", "tkinter", "turtledemo", "ensurepip", "lib2to3", "pydoc_data", "distutils",
         "sitecustomize.py", "__pycache__"}


def _files(extras: tuple[str, ...] = ()) -> list[Path]:
    """The host files of the image: each binary and every library it loads (as ldd names them)."""
    found: list[Path] = []
    binaries = [*BINARIES, *(b for e in extras for b in EXTRAS[e][0])]
    for name in binaries:
        if name == "python3":  # the system's, not a user's (pyenv shims)
            found.append(Path("/usr/bin/python3"))
            name = "/usr/bin/python3"
        path = shutil.which(name)
        if path is None:
            continue
        found.append(Path(path))
        out = subprocess.run(["ldd", path], capture_output=True, text=True).stdout
        found += [Path(tok) for line in out.splitlines() for tok in line.split() if tok.startswith("/")]
    return sorted(set(found))


def _copy_with_links(src: Path, root: Path) -> None:
    """Copy ``src`` to ``root`` + ``src``, recreating every symbolic link along the way (merged /usr)."""
    current = Path("/")
    for part in src.parts[1:]:
        current = current / part
        dest = root / current.relative_to("/")
        if current.is_symlink():
            if not os.path.lexists(dest):
                dest.parent.mkdir(parents=True, exist_ok=True)
                os.symlink(os.readlink(current), dest)
            target = Path(os.path.normpath(current.parent / os.readlink(current)))
            _copy_with_links(target, root)
            current = target
    dest = root / current.relative_to("/")
    if current.is_file() and not dest.exists():
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(current, dest)


def _tree_files(extras: tuple[str, ...]) -> list[Path]:
    found: list[Path] = []
    for e in extras:
        for top in EXTRAS[e][1]:
            if "*" in top:  # single files (libraries), copied where they really are
                found += [Path(os.path.realpath(f)) for f in sorted(glob.glob(top))
                          if Path(f).name.split(".so")[0] in _GLIBC]
                continue
            if top == "stdlib":  # the system python's standard library (/usr/lib/python3.X)
                top = subprocess.run(["/usr/bin/python3", "-c", "import sysconfig; print(sysconfig.get_path('stdlib'))"],
                                     capture_output=True, text=True, check=True).stdout.strip()
            for dirpath, dirnames, filenames in os.walk(top):
                dirnames[:] = sorted(d for d in dirnames if d not in _SKIP and not d.startswith("config-"))
                found += [Path(dirpath) / f for f in sorted(filenames) if f not in _SKIP]
    return found


def base_image(*extras: str) -> str:
    """The tag of the test base image with ``extras`` (names of :data:`EXTRAS`), made on first use
    (see the module docstring)."""
    if shutil.which("podman") is None:
        _unavailable("podman is not installed (dev/setup.sh --test installs it)")
    missing = [b for e in extras for b in EXTRAS[e][0]
               if not (Path("/usr/bin/python3").exists() if b == "python3" else shutil.which(b))]
    if missing:
        _unavailable(f"the host has no {', '.join(missing)} to put in the test image")
    files = _files(extras)
    trees = _tree_files(extras)
    h = hashlib.sha256()
    for f in files + trees:
        st = f.lstat()
        h.update(f"{f}:{st.st_size}:{st.st_mtime_ns}\n".encode())
    name = "-".join(("base", *extras))
    tag = f"localhost/trialbook-test/{name}:{h.hexdigest()[:16]}"
    if podman("image", "exists", tag, check=False).returncode == 0:
        return tag
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "root"
        for d in ("etc", "tmp", "root", "app", "usr/bin"):
            (root / d).mkdir(parents=True, exist_ok=True)
        (root / "tmp").chmod(0o1777)
        for f in files:
            _copy_with_links(f, root)
        for f in trees:
            dest = root / f.relative_to("/")
            dest.parent.mkdir(parents=True, exist_ok=True)
            if f.is_symlink():
                os.symlink(os.readlink(f), dest)
            else:
                shutil.copy2(f, dest)
        for link in ("bin", "sbin", "lib", "lib64"):
            if Path(f"/{link}").is_symlink() and not os.path.lexists(root / link):
                os.symlink(os.readlink(f"/{link}"), root / link)
        (root / "etc/passwd").write_text("root:x:0:0:root:/root:/bin/bash\nnobody:x:65534:65534::/:/bin/sh\n")
        (root / "etc/group").write_text("root:x:0:\nnogroup:x:65534:\n")
        tar_path = Path(tmp) / "root.tar"
        with tarfile.open(tar_path, "w") as tar:
            tar.add(root, arcname=".")
        res = podman("import", str(tar_path), tag, check=False)
        if res.returncode != 0:
            _unavailable(f"podman import failed: {res.stderr.strip()[-300:]}")
    probe = podman("run", "--rm", *RUN_FLAGS, "--network", "none", tag, "/bin/sh", "-c", "echo ok", check=False)
    if probe.stdout.strip() != "ok":
        _unavailable(f"podman cannot run a container: {(probe.stderr or probe.stdout).strip()[-300:]}")
    return tag
