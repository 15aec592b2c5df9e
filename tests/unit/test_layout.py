"""The package reads as the data flows: each layer imports only the layers below it.

``read`` (one wheel to facts) < ``rules`` (facts to a verdict) < ``mirror`` (many wheels, the
pool, the store) < ``report`` (the store to reports) < ``cli``; the top-level modules (facts,
errors, limits, safe_text) and the native extensions sit below all of them. Imports inside
functions count too: a lazy import is still a dependency. And ``mirror.store`` is the only code
that speaks SQL.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src" / "wheelscan"
STORE = SRC / "mirror" / "store"
LAYERS = {"read": 1, "rules": 2, "mirror": 3, "report": 4, "cli": 5}


def _layer(module: str) -> int:
    parts = module.split(".")
    if parts[0] != "wheelscan" or len(parts) == 1:
        return 0 if parts[0] == "wheelscan" else -1
    return LAYERS.get(parts[1], 0)


def _module_of(path: Path) -> str:
    rel = path.relative_to(SRC.parent).with_suffix("")
    parts = list(rel.parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> list[tuple[int, str]]:
    """(line, absolute module) of every ``import`` and ``from ... import`` in the file."""
    me = _module_of(path)
    package = me if path.name == "__init__.py" else me.rpartition(".")[0]
    out = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                target = ".".join([*base, *([node.module] if node.module else [])])
            else:
                target = node.module or ""
            out.append((node.lineno, target))
            for a in node.names:  # ``from package import module``
                sub = SRC.parent / f"{target}.{a.name}".replace(".", "/")
                if sub.is_dir() or sub.with_suffix(".py").is_file():
                    out.append((node.lineno, f"{target}.{a.name}"))
        elif isinstance(node, ast.Import):
            out.extend((node.lineno, a.name) for a in node.names)
    return out


def test_no_layer_imports_a_higher_one() -> None:
    wrong = []
    for path in sorted(SRC.rglob("*.py")):
        mine = _layer(_module_of(path))
        for line, target in _imports(path):
            if target.startswith("wheelscan") and _layer(target) > mine:
                wrong.append(f"{path.relative_to(SRC)}:{line} imports {target}")
    # the package root and ``python -m wheelscan`` are entry points above every layer
    wrong = [w for w in wrong if not w.startswith(("__init__.py", "__main__.py"))]
    assert wrong == []


def test_no_import_circles_between_modules() -> None:
    graph: dict[str, set[str]] = {}
    for path in SRC.rglob("*.py"):
        graph[_module_of(path)] = {t for _, t in _imports(path)}
    graph = {m: {t for t in deps if t in graph and t != m} for m, deps in graph.items()}
    circles: list[str] = []
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(node: str, trail: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                circles.append(" -> ".join([*trail[trail.index(nxt):], nxt]))
            elif nxt not in state:
                visit(nxt, [*trail, nxt])
        state[node] = 2

    for m in sorted(graph):
        if m not in state:
            visit(m, [m])
    # a package's __init__ may import its own modules (the root's lazy API does not count)
    assert circles == []


#: a string that starts like a SQL statement or a condition for one
_SQL = re.compile(r"\s*(SELECT|INSERT|UPDATE|DELETE|CREATE|DROP|ALTER|PRAGMA|WITH|WHERE|AND)\s")


def test_only_the_store_speaks_sql() -> None:
    """No module outside ``mirror.store`` imports sqlite3 or holds SQL in a string: a change
    to the store's tables then touches the store alone."""
    wrong = []
    for path in sorted(SRC.rglob("*.py")):
        if STORE in path.parents:
            continue
        rel = path.relative_to(SRC)
        wrong += [f"{rel}:{line} imports {target}" for line, target in _imports(path)
                  if target == "sqlite3" or target.startswith("sqlite3.")]  # fmt: skip
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and _SQL.match(
                node.value
            ):
                wrong.append(f"{rel}:{node.lineno} {node.value.strip()[:40]!r}")
    assert wrong == []
