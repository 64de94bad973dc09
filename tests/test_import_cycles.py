"""No import cycle in ``edgevl/``: every ``import``/``from … import`` of every module, at top
level or inside a function, is an edge; the graph must be acyclic. Also the layering rules of
docs/architecture.md: the bundle layer imports no backend, backends import nothing of the
benchmark package, the task registry and the families' sections stay below the bundle layer, and the
runtime package holds and imports none of the repository's tooling (benchmarks/, tests/, examples/,
scripts/, kernels/)."""

from __future__ import annotations

import ast
import importlib.util
from pathlib import Path

import pytest

import edgevl

ROOT = Path(edgevl.__file__).parent
REPO = Path(__file__).resolve().parents[1]
#: the repository's folders that are not shipped: their code may use edgevl, never the other way round
TOOLING = ("benchmarks", "tests", "examples", "scripts", "kernels")


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_names(path: Path) -> set[str]:
    """Every absolute module name ``path`` imports, at top level or inside a function."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
            names.add(node.module)
    return names


def tooling_modules() -> set[str]:
    """Top-level names the tooling folders make importable (``python benchmarks/x.py`` puts
    benchmarks/ on sys.path, so ``benchlib``, ``suite``, ... and the folders' own names)."""
    names = set(TOOLING)
    for d in TOOLING:
        for p in (REPO / d).iterdir():
            if p.suffix == ".py":
                names.add(p.stem)
            elif (p / "__init__.py").is_file():
                names.add(p.name)
    return names


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


def test_runtime_imports_no_repository_tooling() -> None:
    tooling = tooling_modules()
    assert {"benchlib", "suite", "benchmarks", "conftest"} <= tooling  # the walk found the folders
    bad = {f"{p.relative_to(ROOT.parent)}: {name}" for p in ROOT.rglob("*.py")
           for name in imported_names(p) if name.partition(".")[0] in tooling}
    assert not bad, sorted(bad)


def test_tooling_modules_moved_out_of_the_runtime(tmp_path: Path) -> None:
    """Issue 20: the benchmark scripts' report module and the synthetic-text renderer are repository
    tooling (benchmarks/benchlib), not modules a runtime install ships."""
    for gone in ("edgevl.bench.script", "edgevl.synth"):
        assert importlib.util.find_spec(gone) is None, f"{gone} is back in the runtime package"
    assert (REPO / "benchmarks" / "benchlib" / "result.py").is_file()
    assert (REPO / "benchmarks" / "benchlib" / "synth.py").is_file()
    # what `edgevl bench` itself needs of the old module stayed in the runtime
    from edgevl.bench.report import machine_line, md_table
    from edgevl.bench.results import read_json
    from edgevl.errors import InputError

    assert md_table(["a"], [["x|y"]]) == "| a |\n| --- |\n| x\\|y |"
    assert machine_line({"cpu": "X", "cores_logical": 2}) == "X (2 logical cores)"
    with pytest.raises(InputError, match="no such result file"):
        read_json(tmp_path / "none.json")


def test_tooling_walk_catches_an_import(tmp_path: Path) -> None:
    src = tmp_path / "m.py"
    src.write_text("def f():\n    from benchlib.synth import render_word\n    import suite\n")
    assert {n.partition(".")[0] for n in imported_names(src)} & tooling_modules() == {"benchlib", "suite"}
