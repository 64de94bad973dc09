"""No import cycle in ``edgevl/``: every ``import``/``from … import`` of every module, at top
level or inside a function, is an edge; the graph must be acyclic. Also the layering rules of
docs/architecture.md: the bundle layer imports no backend, backends import nothing of the
benchmark package, and the task registry and the families' sections stay below the bundle layer."""

from __future__ import annotations

import ast
from pathlib import Path

import edgevl

ROOT = Path(edgevl.__file__).parent


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph() -> dict[str, set[str]]:
    files = {module_name(p): p for p in ROOT.rglob("*.py")}
    graph: dict[str, set[str]] = {m: set() for m in files}
    for mod, path in files.items():
        package = mod if path.name == "__init__.py" else mod.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    pkg = package.split(".")
                    base = ".".join(pkg[: len(pkg) - node.level + 1] + ([base] if base else []))
                # ``from pkg import sub`` imports the submodule; ``from mod import name`` the module
                # (a package's own __init__ running first is Python's business, not an edge)
                targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in files else base for a in node.names]
            for t in targets:
                # the longest prefix that is a module of edgevl (``from edgevl.x import f`` → edgevl.x)
                while t and t not in files:
                    t = t.rpartition(".")[0]
                if t and t != mod:
                    graph[mod].add(t)
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(n: str) -> list[str] | None:
        state[n] = 1
        stack.append(n)
        for m in sorted(graph[n]):
            if state.get(m) == 1:
                return [*stack[stack.index(m):], m]
            if m not in state and (c := visit(m)):
                return c
        stack.pop()
        state[n] = 2
        return None

    for n in sorted(graph):
        if n not in state and (c := visit(n)):
            return c
    return None


def test_no_import_cycle_in_edgevl() -> None:
    graph = import_graph()
    assert len(graph) > 40  # the walk found the package
    assert find_cycle(graph) is None, " -> ".join(find_cycle(graph) or [])


def test_the_cycle_finder_finds_cycles() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_layering() -> None:
    graph = import_graph()

    def reach(start: str) -> set[str]:
        seen, todo = set(), [start]
        while todo:
            for m in graph[todo.pop()]:
                if m not in seen:
                    seen.add(m)
                    todo.append(m)
        return seen

    assert not {m for m in reach("edgevl.bundle") if m.startswith("edgevl.backends")}
    assert not {m for m in reach("edgevl.manifest") if m != "edgevl.errors"}
    # the task families' sections sit on the manifest core alone; their registrations and the
    # registry the loader dispatches through stay below the bundle layer (no backend, no bundle)
    for sections in ("edgevl.tasks.ocr.sections", "edgevl.tasks.encoders.sections"):
        assert reach(sections) <= {"edgevl.manifest", "edgevl.errors"}, sections
    below_bundle = reach("edgevl.tasks.registry")
    assert {"edgevl.tasks.ocr.spec", "edgevl.tasks.encoders.spec"} <= below_bundle
    assert not {m for m in below_bundle if m.startswith(("edgevl.backends", "edgevl.bench", "edgevl.bundle",
                                                          "edgevl.schema", "edgevl.models"))}
    for b in ("edgevl.backends.ort", "edgevl.backends.tensorrt", "edgevl.backends.registry"):
        assert not {m for m in reach(b) if m.startswith("edgevl.bench")}, b
