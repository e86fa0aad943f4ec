"""The copy of a run's inputs inside its archive, so that the archive alone can reproduce the run.

::

    run_NNN/inputs/
      tasks/<task>/...          every selected Harbor-format task directory, file by file
      <instances file name>     the SWE-style instances file the run read (``tasks.instances``)

Files are copied in a fixed order (tasks by name, files by path) while the total stays within
``max_bytes`` (:data:`INPUTS_MAX_BYTES`); a file that does not fit is listed under
``not_copied`` with its size and SHA-256, so what is missing can still be recognised. Symbolic
links are never followed nor copied (the runner does not use them either): they are listed
under ``links`` with their target. Secret values are scrubbed from every copy; a file that
scrubbing changed is listed under ``redacted`` with the SHA-256 of the original, since its
copy no longer reproduces it byte for byte.

The returned manifest is what ``metadata.yaml`` records under ``inputs.copy``.
"""

from __future__ import annotations

import hashlib
import os
import stat
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from trialbook.run.tasks import HarborTask, Task

#: Total bytes of inputs an archive copies (the rest is recorded by hash only).
INPUTS_MAX_BYTES = 64 * 1024 * 1024
#: Directory of the copy inside ``run_NNN/``, and of the task directories inside it.
INPUTS_DIR = "inputs"
TASKS_DIR = "tasks"


def sha256_file(path: Path) -> str:
    """SHA-256 of a regular file, read in chunks (inputs can be large)."""
    h = hashlib.sha256()
    with open(path, "rb", buffering=0) as fh:
        while chunk := fh.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def _walk(root: Path, skip: Path) -> Iterator[tuple[str, Path, os.stat_result]]:
    """(relative path, path, lstat) of every entry below ``root``, sorted, links not followed,
    the directory ``skip`` (the archive being written) left out."""
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        base = Path(dirpath)
        dirnames[:] = sorted(d for d in dirnames if (base / d) != skip)
        for name in sorted(filenames + [d for d in dirnames if (base / d).is_symlink()]):
            path = base / name
            try:
                st = path.lstat()
            except OSError:
                continue
            yield str(path.relative_to(root)), path, st


class _Copier:
    """Copies files into the archive within the byte budget and keeps the manifest."""

    def __init__(self, dest: Path, scrub: Callable[[bytes], bytes], max_bytes: int) -> None:
        self.dest = dest
        self.scrub = scrub
        self.left = max_bytes
        self.manifest: dict[str, Any] = {"dir": INPUTS_DIR, "max_bytes": max_bytes, "complete": True,
                                         "files": 0, "bytes": 0, "tasks": [], "instances": None,
                                         "not_copied": [], "links": [], "redacted": []}

    def file(self, src: Path, st: os.stat_result, rel: str) -> None:
        """Copy one regular file to ``dest/rel`` if it fits, else record its hash."""
        if st.st_size > self.left:
            self.manifest["complete"] = False
            self.manifest["not_copied"].append({"path": rel, "size": st.st_size, "sha256": sha256_file(src),
                                                "reason": "over the archive's input size cap"})
            return
        data = src.read_bytes()
        clean = self.scrub(data)
        if clean != data:
            self.manifest["redacted"].append({"path": rel, "sha256": hashlib.sha256(data).hexdigest()})
        target = self.dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(clean)
        target.chmod(stat.S_IMODE(st.st_mode) & 0o755 | 0o600)
        self.left -= len(data)
        self.manifest["files"] += 1
        self.manifest["bytes"] += len(clean)

    def tree(self, src: Path, rel_root: str) -> None:
        """Copy a directory's regular files (links recorded, special files skipped)."""
        for rel, path, st in _walk(src, self.dest):
            where = f"{rel_root}/{rel}"
            if stat.S_ISLNK(st.st_mode):
                self.manifest["links"].append({"path": where, "target": os.readlink(path)})
            elif stat.S_ISREG(st.st_mode):
                self.file(path, st, where)


def copy_inputs(tasks: list[Task], instances_file: Path | None, dest: Path,
                scrub: Callable[[bytes], bytes], max_bytes: int | None = None) -> dict[str, Any]:
    """Copy the run's task directories or instances file into ``dest`` (``run_NNN/inputs``); returns the manifest."""
    copier = _Copier(dest, scrub, INPUTS_MAX_BYTES if max_bytes is None else max_bytes)
    dest.mkdir(parents=True, exist_ok=True)
    if instances_file is not None:
        rel = instances_file.name
        copier.manifest["instances"] = rel
        try:
            st = instances_file.lstat()
        except OSError as exc:
            copier.manifest["complete"] = False
            copier.manifest["not_copied"].append({"path": rel, "reason": f"unreadable: {exc.strerror or exc}"})
        else:
            if stat.S_ISREG(st.st_mode):
                copier.file(instances_file, st, rel)
            else:
                copier.manifest["complete"] = False
                copier.manifest["not_copied"].append({"path": rel, "reason": "not a regular file"})
    for task in sorted(tasks, key=lambda t: t.name):
        if not isinstance(task, HarborTask) or task.source_dir is None:
            if instances_file is None:  # a task kind with no files of its own to copy
                copier.manifest["complete"] = False
                copier.manifest["not_copied"].append({"path": f"{TASKS_DIR}/{task.name}",
                                                      "reason": f"{type(task).__name__} has no task directory"})
            continue  # an instance row: its content is the instances file
        if not task.source_dir.is_dir():
            copier.manifest["complete"] = False
            copier.manifest["not_copied"].append({"path": f"{TASKS_DIR}/{task.name}", "reason": "task directory gone"})
            continue
        copier.manifest["tasks"].append(task.name)
        copier.tree(task.source_dir, f"{TASKS_DIR}/{task.name}")
    return copier.manifest
