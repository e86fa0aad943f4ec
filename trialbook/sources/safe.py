"""Reading a results tree without leaving it: every reader opens files through :class:`SafeTree`.

A results tree is untrusted input (copied from another machine, half written, damaged). A
symlink in it may point anywhere — ``/etc/passwd``, ``/dev/zero``, a huge file elsewhere — so
every path is resolved and must stay inside the tree's real root; one that does not is
refused with :class:`SourceError` naming the link ("not followed"), and listing skips it with
a warning. Symlinks that stay inside the tree are followed normally. Only regular files are
read (a FIFO or device would block or never end).

Readers of every layout should use it the same way::

    tree = SafeTree(path)              # the path the user gave (a root, a job or a trial)
    data = tree.read_json(p)           # SourceError(path) if missing, outside, malformed
    for d in tree.subdirs(job_dir): ...
"""

from __future__ import annotations

import errno
import os
import stat
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import orjson

from trialbook.errors import ExitCode, SourceError
from trialbook.jsonio import iter_jsonl

#: Refuse single files bigger than this (a damaged or hostile tree must not exhaust memory).
MAX_FILE_BYTES = 512 * 1024 * 1024


def utf8_name(name: str) -> bool:
    """False for a file name holding bytes that are not UTF-8 (they come back as surrogates):
    such a name cannot be written to JSON, the index or a report, so readers skip the entry."""
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


class SafeTree:
    """File access confined to one directory tree (its resolved real path).

    ``quiet`` turns off the warnings about skipped links (detection uses it: a probe is silent).
    """

    def __init__(self, root: str | Path, *, quiet: bool = False) -> None:
        self.root = Path(root)
        self.quiet = quiet
        self._real_dirs: dict[str, Path] = {}
        self._parents_inside: dict[str, bool] = {}
        #: Directory listings kept while a :meth:`snapshot` is open (None: not caching).
        self._listings: dict[str, dict[str, os.DirEntry[str]] | None] | None = None
        #: (size, mtime_ns) of every file read while a :meth:`snapshot` is open, from the ``fstat``
        #: of what was read (None: not recording).
        self._read_stats: dict[str, tuple[int, int]] | None = None
        try:
            self.real_root = self.root.resolve(strict=True)
        except (OSError, RuntimeError) as exc:
            raise SourceError(f"cannot resolve path: {exc}", self.root) from None
        if self.real_root.is_file():
            self.real_root = self.real_root.parent
        self._root_str = str(self.real_root)
        self._root_prefix = self._root_str.rstrip(os.sep) + os.sep

    # -- containment -------------------------------------------------------------------

    def inside(self, path: str | Path) -> bool:
        """True when ``path`` (after resolving every symlink) lies within the tree."""
        try:
            real = self._real(os.fspath(path))
        except (OSError, RuntimeError):  # symlink loop, permission problem
            return False
        return real == self._root_str or real.startswith(self._root_prefix)

    def _real(self, path: str) -> str:
        """``path`` with every symlink resolved; the parent directory's real path is cached.

        Readers ask about many files of the same few directories: resolving only the last
        component (one lstat) instead of the whole chain is what keeps listing fast.
        """
        head, name = os.path.split(path)
        if name in ("", ".", ".."):
            return str(Path(path).resolve())
        real_parent = self._real_dir(os.path.abspath(head or "."))
        return str(Path(path).resolve()) if os.path.islink(path) else os.path.join(real_parent, name)

    def _real_dir(self, d: str) -> str:
        """Real path of the absolute, normalised directory path ``d``, built from its cached parent."""
        real = self._real_dirs.get(d)
        if real is None:
            head, name = os.path.split(d)
            if not name or os.path.islink(d):
                real = str(Path(d).resolve())
            else:
                real = os.path.join(self._real_dir(head), name)
            self._real_dirs[d] = real
        return real

    def check(self, path: str | Path) -> Path:
        """``path`` itself when it stays inside the tree; else SourceError naming it."""
        path = Path(path)
        if not self.inside(path):
            try:
                target = os.readlink(path) if path.is_symlink() else str(path.resolve())
            except OSError:
                target = "?"
            raise SourceError(f"points outside the results tree (to {target}); not followed", path)
        return path

    # -- predicates (never raise) --------------------------------------------------------

    def _parent_inside(self, path: str) -> bool:
        """Whether the directory holding ``path`` (not a link itself) lies within the tree
        (remembered per directory, as :meth:`_real_dir` remembers real paths)."""
        head = _split(path)[0]
        known = self._parents_inside.get(head)
        if known is not None:
            return known
        try:
            real = self._real_dir(os.path.abspath(head or "."))
        except (OSError, RuntimeError):
            return False
        inside = real == self._root_str or real.startswith(self._root_prefix)
        self._parents_inside[head] = inside
        return inside

    def _lstat(self, path: str) -> os.stat_result | None:
        """``path``'s own status when it is no link and its directory is inside the tree; a link
        is resolved and checked (its target's status); None when absent, outside or unreadable."""
        try:
            st = os.lstat(path)
            if stat.S_ISLNK(st.st_mode) or os.path.basename(path) in ("", ".", ".."):
                return os.stat(path) if self.inside(path) else None  # resolved in full
        except OSError:
            return None
        return st if self._parent_inside(path) else None

    def is_file(self, path: str | Path) -> bool:
        """A regular file inside the tree (symlinks resolved; outside ones count as absent)."""
        p = os.fspath(path)
        entry = self._cached_entry(p)
        if entry is not None:
            return entry is not _ABSENT and entry.is_file(follow_symlinks=False) and self._parent_inside(p)
        st = self._lstat(p)
        return st is not None and stat.S_ISREG(st.st_mode)

    def is_dir(self, path: str | Path) -> bool:
        """A directory inside the tree."""
        p = os.fspath(path)
        entry = self._cached_entry(p)
        if entry is not None:
            return entry is not _ABSENT and entry.is_dir(follow_symlinks=False) and self._parent_inside(p)
        st = self._lstat(p)
        return st is not None and stat.S_ISDIR(st.st_mode)

    def exists(self, path: str | Path) -> bool:
        """Something (file, dir, or a link to one) is at ``path``, inside or not."""
        p = os.fspath(path)
        if self._listings is not None:
            head, name = _split(p)
            if name not in ("", ".", ".."):
                entries = self.listing(head or ".")
                if entries is not None:
                    return name in entries
        return os.path.lexists(p)

    # -- listing cache -----------------------------------------------------------------

    @contextmanager
    def snapshot(self) -> Iterator[SafeTree]:
        """Within the block, each directory is listed once and the predicates (``is_file``,
        ``is_dir``, ``exists``) answer from that listing: one ``scandir`` per directory instead
        of an ``lstat`` per question. Links still take the resolving path. Open one per unit of
        work (a trial): the listing is a snapshot, later changes are not seen inside it."""
        previous, previous_stats = self._listings, self._read_stats
        if previous is None:
            self._listings, self._read_stats = {}, {}
        try:
            yield self
        finally:
            self._listings, self._read_stats = previous, previous_stats

    def read_stats(self) -> dict[str, tuple[int, int]]:
        """``path -> (size, mtime_ns)`` of the files read in the open snapshot, taken from the
        ``fstat`` of what was read (so a signature built from them describes the bytes read)."""
        return dict(self._read_stats or {})

    def listing(self, directory: str) -> dict[str, os.DirEntry[str]] | None:
        """Entries of ``directory`` by name (hidden ones included), listed once per snapshot;
        None when it cannot be listed (missing, not a directory, unreadable) or no snapshot is open."""
        cache = self._listings
        if cache is None:
            return None
        if directory in cache:
            return cache[directory]
        try:
            with os.scandir(directory) as it:
                entries: dict[str, os.DirEntry[str]] | None = {e.name: e for e in it}
        except OSError:
            entries = None
        cache[directory] = entries
        if entries and self._parent_inside(os.path.join(directory, ".")):
            # a real (non-link) sub-directory of a directory inside the tree is inside too:
            # containment is checked once per listed directory, not once per file
            for e in entries.values():
                if e.is_dir(follow_symlinks=False):
                    self._parents_inside.setdefault(e.path, True)
        return entries

    def _cached_entry(self, path: str) -> os.DirEntry[str] | object | None:
        """The snapshot's entry for ``path`` (:data:`_ABSENT` when its directory has no such
        name); None when the slow path must answer (no snapshot, a link, an unlistable directory)."""
        if self._listings is None:
            return None
        head, name = _split(path)
        if name in ("", ".", ".."):
            return None
        entries = self.listing(head or ".")
        if entries is None:
            return None
        entry = entries.get(name)
        if entry is None:
            return _ABSENT
        return None if entry.is_symlink() else entry

    # -- listing ---------------------------------------------------------------------

    def children(self, path: str | Path) -> list[Path]:
        """Entries of a directory, sorted by name, hidden ones and links leaving the tree left out."""
        return [Path(e.path) for e in self._entries(path)]

    def _entries(self, path: str | Path) -> list[os.DirEntry[str]]:
        """:meth:`children` as directory entries (one listing; only links cost a resolve)."""
        p = os.fspath(path)
        try:
            with os.scandir(p) as it:
                entries = sorted((e for e in it if not e.name.startswith(".")), key=lambda e: e.name)
        except OSError:
            return []
        if entries and not self._inside_dir(p):
            if not self.quiet:
                warnings.warn(f"{p}: points outside the results tree; not followed", stacklevel=4)
            return []
        out = []
        for entry in entries:
            if not utf8_name(entry.name):
                if not self.quiet:
                    warnings.warn(f"{entry.path!s:.200}: name is not valid UTF-8; skipped", stacklevel=4)
                continue
            if entry.is_symlink():
                if not self.inside(entry.path):
                    if not self.quiet:
                        warnings.warn(f"{entry.path}: points outside the results tree; not followed", stacklevel=4)
                    continue
            elif entry.is_dir(follow_symlinks=False):
                # a real sub-directory of a directory inside the tree is inside (as in listing())
                self._parents_inside.setdefault(entry.path, True)
            out.append(entry)
        return out

    def _inside_dir(self, path: str) -> bool:
        """Whether the directory ``path`` (links resolved) lies within the tree."""
        try:
            real = self._real_dir(os.path.abspath(path))
        except (OSError, RuntimeError):
            return False
        return real == self._root_str or real.startswith(self._root_prefix)

    def subdirs(self, path: str | Path) -> list[Path]:
        """Sub-directories of ``path`` inside the tree, sorted by name (hidden ones skipped)."""
        return [Path(p) for p in self.subdir_paths(path)]

    def subdir_paths(self, path: str | Path) -> list[str]:
        """:meth:`subdirs` as plain strings (a job of thousands of trials lists them cheaply)."""
        return [e.path for e in self._entries(path)
                if (e.is_dir() if e.is_symlink() else e.is_dir(follow_symlinks=False))]

    def files(self, path: str | Path, suffix: str = "") -> list[Path]:
        """Regular files of ``path`` inside the tree ending in ``suffix``, sorted by name."""
        return [p for p in self.children(path) if p.name.endswith(suffix) and self.is_file(p)]

    def find_dirs(self, path: str | Path, match: Callable[[Path], bool], max_depth: int) -> list[Path]:
        """Directories at or under ``path`` for which ``match`` holds, not descending into matches."""
        path = Path(path)
        if match(path):
            return [path]
        if max_depth == 0:
            return []
        found: list[Path] = []
        for child in self.subdirs(path):
            found.extend(self.find_dirs(child, match, max_depth - 1))
        return found

    def rglob(self, path: str | Path, name: str, max_depth: int = 6) -> list[Path]:
        """Files called ``name`` below ``path`` (not following links out of the tree), sorted."""
        found: list[Path] = []

        def walk(d: Path, depth: int) -> None:
            for entry in self.children(d):
                if entry.name == name and self.is_file(entry):
                    found.append(entry)
                elif depth < max_depth and self.is_dir(entry) and not entry.is_symlink():
                    walk(entry, depth + 1)

        walk(Path(path), 0)
        return sorted(found)

    # -- reading -----------------------------------------------------------------------

    def _regular(self, path: str | Path) -> Path:
        """``path`` checked to be a regular file of sane size inside the tree; else SourceError."""
        path = self.check(path)
        try:
            st = path.stat()
        except FileNotFoundError:
            raise SourceError("file not found", path, not_found=True) from None
        except OSError as exc:
            raise SourceError(f"cannot read: {exc.strerror}", path) from None
        _check_regular(st, path)
        return path

    def read_bytes(self, path: str | Path) -> bytes:
        """Bytes of a regular file inside the tree; anything else raises SourceError naming it.

        One ``open`` that follows no link and never blocks (a FIFO), then ``fstat`` on what was
        opened: no gap between the check and the read. A link takes the resolving path.
        """
        p = os.fspath(path)
        try:
            fd = os.open(p, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
        except FileNotFoundError:
            raise SourceError("file not found", p, not_found=True) from None
        except OSError as exc:
            if exc.errno != errno.ELOOP:
                raise SourceError(f"cannot read: {exc.strerror}", p) from None
            self.check(p)  # a link: followed only when it stays inside the tree
            try:
                fd = os.open(p, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
            except OSError as exc2:
                raise SourceError(f"cannot read: {exc2.strerror}", p) from None
        else:
            if not self._parent_inside(p):
                os.close(fd)
                self.check(p)
        try:
            st = os.fstat(fd)
            _check_regular(st, p)
            data = _read_all(fd, st.st_size, p)
            if self._read_stats is not None:
                self._read_stats[p] = (st.st_size, st.st_mtime_ns)
            return data
        finally:
            os.close(fd)

    def read_text(self, path: str | Path) -> str:
        """Text of a file (UTF-8, undecodable bytes replaced)."""
        return self.read_bytes(path).decode("utf-8", "replace")

    def read_json(self, path: str | Path) -> Any:
        """Parsed JSON of a file; missing, outside, unreadable or malformed raises SourceError."""
        data = self.read_bytes(path)
        try:
            return orjson.loads(data)
        except orjson.JSONDecodeError as exc:
            raise SourceError(f"invalid JSON: {exc}", path) from None

    def read_json_if_present(self, path: str | Path) -> dict[str, Any] | None:
        """:meth:`read_json_object`, or None when nothing is at ``path`` (a dangling link is
        something: its SourceError is raised like any other problem)."""
        try:
            return self.read_json_object(path)
        except SourceError as exc:
            if exc.exit_code == ExitCode.NOT_FOUND and not os.path.lexists(path):
                return None
            raise

    def read_json_object(self, path: str | Path) -> dict[str, Any]:
        """Like :meth:`read_json`, but the top level must be an object."""
        data = self.read_json(path)
        if not isinstance(data, dict):
            raise SourceError(f"expected a JSON object, got {type(data).__name__}", path)
        return data

    def iter_jsonl(self, path: str | Path) -> Iterator[Any]:
        """Records of a JSONL file; a truncated last line is skipped with a warning (jsonio rule)."""
        yield from iter_jsonl(self._regular(path))


def _split(path: str) -> tuple[str, str]:
    """``os.path.split`` for the common case (one ``/`` before the name), which readers ask for
    tens of times per trial; anything unusual takes ``os.path.split`` itself."""
    i = path.rfind("/")
    if i > 0 and path[i - 1] != "/":
        return path[:i], path[i + 1:]
    return os.path.split(path)


#: What :meth:`SafeTree._cached_entry` returns for a name its directory listing does not hold.
_ABSENT = object()


def _check_regular(st: os.stat_result, path: str | Path) -> None:
    """SourceError unless ``st`` is a regular file of sane size."""
    if stat.S_ISDIR(st.st_mode):
        raise SourceError("expected a file, found a directory", path)
    if not stat.S_ISREG(st.st_mode):
        raise SourceError("not a regular file", path)
    if st.st_size > MAX_FILE_BYTES:
        raise SourceError(f"file too large ({st.st_size} bytes)", path)


def _read_all(fd: int, size: int, path: str) -> bytes:
    """The whole file behind ``fd`` (``size`` from its fstat; a file still growing is read up to
    the cap, never past it)."""
    chunks = []
    left = MAX_FILE_BYTES + 1
    want = size + 1 if size else 65536
    try:
        while left > 0:
            asked = min(max(want, 65536), left)
            chunk = os.read(fd, asked)
            if not chunk:
                break
            chunks.append(chunk)
            left -= len(chunk)
            if len(chunk) < asked:  # a regular file's short read is its end: no extra read for it
                break
    except OSError as exc:
        raise SourceError(f"cannot read: {exc.strerror}", path) from None
    if left <= 0:
        raise SourceError("file too large (grew while read)", path)
    return b"".join(chunks)
