"""Config validation errors a person can act on: every error, its line, and "did you mean".

pydantic reports where in the data a value is wrong; this module adds the line of
``config.yaml`` it sits on (from the YAML node tree) and, for an unknown key, the closest
known key at that place (``varaints`` -> ``variants``). A required key that is missing
because it was misspelt is reported once, as the misspelling.
"""

from __future__ import annotations

import difflib
import types
import typing
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

Loc = tuple[str | int, ...]


def key_lines(text: str) -> dict[Loc, int]:
    """1-based line of every mapping key and sequence item in a YAML document, by its path."""
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError:
        return {}
    lines: dict[Loc, int] = {}

    def walk(node: yaml.Node | None, loc: Loc) -> None:
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                if isinstance(key, yaml.ScalarNode):
                    here = (*loc, key.value)
                    lines.setdefault(here, key.start_mark.line + 1)
                    walk(value, here)
        elif isinstance(node, yaml.SequenceNode):
            for i, item in enumerate(node.value):
                lines.setdefault((*loc, i), item.start_mark.line + 1)
                walk(item, (*loc, i))

    walk(root, ())
    return lines


def _inner_model(annotation: Any) -> type[BaseModel] | None:
    """The pydantic model inside an annotation (``X``, ``X | None``, ``list[X]``), if any."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType, list, tuple, set, dict):
        for arg in typing.get_args(annotation):
            found = _inner_model(arg)
            if found is not None:
                return found
    return None


def model_at(model: type[BaseModel], loc: Loc) -> type[BaseModel] | None:
    """The model whose fields are valid keys at ``loc`` (list indexes skipped)."""
    current: type[BaseModel] | None = model
    for part in loc:
        if current is None:
            return None
        if isinstance(part, int):
            continue
        field = current.model_fields.get(part)
        current = _inner_model(field.annotation) if field is not None else None
    return current


def _path(loc: Loc) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "top level"


def describe_errors(exc: ValidationError, model: type[BaseModel], text: str | None = None) -> list[str]:
    """One readable line per problem: ``line 3: varaints: unknown key (did you mean variants?)``."""
    lines = key_lines(text) if text else {}
    errors = exc.errors()
    unknown = {tuple(e["loc"]) for e in errors if e["type"] == "extra_forbidden"}
    suggestions: dict[Loc, str] = {}
    for loc in unknown:
        where = model_at(model, loc[:-1])
        if where is None or not isinstance(loc[-1], str):
            continue
        close = difflib.get_close_matches(loc[-1], list(where.model_fields), n=1, cutoff=0.6)
        if close:
            suggestions[loc] = close[0]
    explained_missing = {(*loc[:-1], name) for loc, name in suggestions.items()}
    out: list[tuple[int, str]] = []
    for e in errors:
        loc = tuple(e["loc"])
        if e["type"] == "missing" and loc in explained_missing:
            continue  # reported as the misspelling that hides it
        line = lines.get(loc) or next((lines[loc[:i]] for i in range(len(loc) - 1, 0, -1) if loc[:i] in lines), None)
        prefix = f"line {line}: " if line else ""
        if e["type"] == "extra_forbidden":
            hint = f" (did you mean {suggestions[loc]}?)" if loc in suggestions else ""
            text_ = f"{prefix}{_path(loc)}: unknown key{hint}"
        elif e["type"] == "missing":
            text_ = f"{prefix}{_path(loc)}: required, but missing"
        else:
            text_ = f"{prefix}{_path(loc)}: {e['msg'].removeprefix('Value error, ')}"
        out.append((line or 10**9, text_))
    return [message for _, message in sorted(out, key=lambda item: item[0])]


def format_errors(exc: ValidationError, model: type[BaseModel], text: str | None = None) -> str:
    """All problems in one line: ``2 problems: line 3: ...; line 9: ...``."""
    problems = describe_errors(exc, model, text)
    if len(problems) == 1:
        return problems[0]
    return f"{len(problems)} problems: " + "; ".join(problems)
