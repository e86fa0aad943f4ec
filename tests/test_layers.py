"""The package layers of DESIGN.md hold: imports point down only, and no module import loop
(import statements, function-local ones and module names given to importlib included)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1] / "trialbook"

#: Layer of each top-level module or package, lowest first: a module may import its own
#: package, and lower layers, never its layer's siblings or anything above.
LAYERS: list[set[str]] = [
    {"errors", "flock"},
    {"secrets", "untrusted"},
    {"jsonio", "yamlio", "plugins"},
    {"model", "layout", "config_errors", "examples"},
    {"config"},
    {"grading"},
    {"sources"},
    {"block"},
    {"run"},
    {"results"},
    {"index", "inspect", "analysis", "sft", "archive", "exports", "store"},
    {"dashboard"},
    {"app"},
    {"cli"},
]
RANK = {name: i for i, layer in enumerate(LAYERS) for name in layer}
_MODULE_NAME = re.compile(r"trialbook(\.\w+)+")


def _modules() -> dict[str, Path]:
    mods = {}
    for path in ROOT.rglob("*.py"):
        parts = path.relative_to(ROOT.parent).with_suffix("").parts
        mods[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return mods


def _imports(path: Path, mods: dict[str, Path]) -> set[str]:
    """Modules of trialbook that ``path`` imports, however."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        names: list[str] = []
        if isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").startswith("trialbook"):
            names = [f"{node.module}.{a.name}" if f"{node.module}.{a.name}" in mods else node.module
                     for a in node.names]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names if a.name.startswith("trialbook")]
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and _MODULE_NAME.fullmatch(
                node.value.split(":")[0]) and node.value.split(":")[0] in mods:
            names = [node.value.split(":")[0]]
        for name in names:
            while name not in mods:
                name = name.rpartition(".")[0]
            found.add(name)
    return found


def _top(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def test_every_top_level_module_has_a_layer() -> None:
    tops = {_top(m) for m in _modules()} - {""}
    assert tops <= set(RANK), f"add to LAYERS: {sorted(tops - set(RANK))}"


def test_imports_point_down_only() -> None:
    mods = _modules()
    upward = []
    for module, path in mods.items():
        src = _top(module)
        for target in _imports(path, mods):
            dst = _top(target)
            if src and dst and src != dst and RANK[dst] >= RANK[src]:
                upward.append(f"{path.relative_to(ROOT.parent)}: {module} -> {target}")
    assert not upward, "\n".join(sorted(upward))


def test_no_module_import_loops() -> None:
    mods = _modules()
    graph = {m: {t for t in _imports(p, mods) if t != m and not m.startswith(t + ".")} for m, p in mods.items()}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    loops: list[list[str]] = []

    def visit(v: str) -> None:  # Tarjan's strongly connected components
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                loops.append(sorted(component))

    for module in graph:
        if module not in index:
            visit(module)
    assert not loops, loops
