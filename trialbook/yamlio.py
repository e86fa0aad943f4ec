"""Reading YAML files (config.yaml, job snapshots, index.yaml, metadata.yaml, gold files) safely.

``yaml.safe_load`` builds no objects, but it still accepts two hostile shapes: an alias bomb
("billion laughs": a few lines whose aliases expand to billions of values, harmless in
memory because PyYAML shares them, fatal to whatever walks or copies the data next) and
nesting so deep that PyYAML itself overflows the stack. Both are refused here with a
one-line error naming the file, so no reader of these files hangs or prints a traceback.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from trialbook.errors import ConfigError, TrialbookError

#: How many more values aliases may add once expanded (a file without aliases is never refused).
MAX_ALIAS_EXPANSION = 100_000
#: Deepest nesting accepted (no config comes close; PyYAML's own recursion fails near 1,000).
MAX_DEPTH = 100


def load_yaml(text: str, path: Path | None = None, error: type[TrialbookError] = ConfigError) -> Any:
    """Safe-load YAML ``text``; a syntax error, an alias bomb or too deep nesting raises ``error``."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}: " if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise error(f"{where}invalid YAML: {problem}", path) from None
    except RecursionError:
        raise error(f"YAML nested more than {MAX_DEPTH} levels deep", path) from None
    problem = _shape_problem(data)
    if problem:
        raise error(problem, path)
    return data


def read_yaml(path: Path, error: type[TrialbookError] = ConfigError) -> Any:
    """:func:`load_yaml` of a UTF-8 file; a missing, unreadable or non-UTF-8 file raises ``error``."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise error("file not found", path, not_found=True) from None
    except IsADirectoryError:
        raise error("expected a file, found a directory", path) from None
    except OSError as exc:
        raise error(f"cannot read: {exc.strerror}", path) from None
    except UnicodeDecodeError as exc:
        raise error(f"not valid UTF-8 (byte {exc.start})", path) from None
    return load_yaml(text, path, error)


def read_yaml_or_none(path: Path) -> Any:
    """:func:`read_yaml`, or None for a file that is missing or unusable (for best-effort readers)."""
    try:
        return read_yaml(path)
    except TrialbookError:
        return None


def _shape_problem(data: Any) -> str | None:
    """Why ``data`` is unsafe to walk (an alias bomb, a cycle, too deep), or None.

    Sizes are memoised per object, so this is linear in what was parsed, however far the
    aliases would expand.
    """
    expanded: dict[int, int] = {}
    physical = 0
    too_big = MAX_ALIAS_EXPANSION * 10  # anything larger counts the same

    class _Deep(Exception):
        pass

    def size(node: Any, depth: int) -> int:
        nonlocal physical
        if not isinstance(node, dict | list):
            return 1
        if depth > MAX_DEPTH:
            raise _Deep
        key = id(node)
        if key in expanded:
            return expanded[key]
        expanded[key] = too_big  # a cycle (an alias inside itself) is too big
        children = list(node.values()) if isinstance(node, dict) else node
        physical += 1 + len(children)
        total = 1
        for item in children:
            total = min(total + size(item, depth + 1), too_big)
        expanded[key] = total
        return total

    try:
        total = size(data, 0)
    except _Deep:
        return f"YAML nested more than {MAX_DEPTH} levels deep"
    if total - physical > MAX_ALIAS_EXPANSION:
        return (f"YAML aliases expand to more than {MAX_ALIAS_EXPANSION:,} extra values "
                "(an alias bomb?); write the values out")
    return None
