"""benchmarks/benchlib: the result-file schema, the Markdown renderer, the timing loop, the paths and
the declared-suite entries that every script in benchmarks/ uses (nothing is timed for real)."""

from __future__ import annotations

import copy
import json
import math
from pathlib import Path
from typing import Any

import pytest
from benchlib import (
    SCHEMA,
    Table,
    bench_paths,
    command_line,
    interleaved,
    load_result,
    machine_line,
    md_table,
    new_result,
    render_markdown,
    validate_result,
    write_result,
)
from suite import Benchmark

from edgevl.errors import InputError


def _doc() -> dict[str, Any]:
    return new_result("demo", "python benchmarks/demo.py --n 3", load_before=[1.5, 1.0, 0.5],
                      packages=("numpy",), machine_extra={"threads": 2}, headline="2.0x", target=">= 1.5x",
                      rows=[{"name": "a|b", "ms": 1.25}])


def test_new_result_carries_the_one_machine_record() -> None:
    doc = _doc()
    validate_result(doc)
    m = doc["machine"]
    assert doc["schema"] == SCHEMA and doc["benchmark"] == "demo"
    assert m["load_average_before"] == [1.5, 1.0, 0.5] and len(m["load_average_after"]) == 3
    assert m["threads"] == 2 and m["packages"]["numpy"]  # numpy is installed: a version string
    assert isinstance(m["cores_logical"], int) and m["cores_logical"] >= 1 and m["cpu"]


@pytest.mark.parametrize(("breakage", "message"), [
    (lambda d: d.pop("command"), "'command' missing"),
    (lambda d: d.update(schema="edgevl-bench/1"), "is not 'edgevl-bench-script/1'"),
    (lambda d: d.update(created="yesterday"), "not an ISO-8601 time"),
    (lambda d: d.update(benchmark=""), "'benchmark' missing, empty"),
    (lambda d: d.update(headline=3), "'headline' is not str"),
    (lambda d: d["machine"].pop("cores_logical"), "machine.cores_logical missing"),
    (lambda d: d["machine"].update(cores_logical=True), "machine.cores_logical missing or not int/null"),
    (lambda d: d["machine"].update(cores_logical=0), "cores_logical 0 < 1"),
    (lambda d: d["machine"].update(load_average_after=["x"]), "machine.load_average_after must be numbers"),
    (lambda d: d["rows"][0].update(ms=math.nan), "rows[0].ms: nan is not a finite number"),
])
def test_validation_names_the_broken_field(breakage: Any, message: str) -> None:
    doc = copy.deepcopy(_doc())
    breakage(doc)
    with pytest.raises(InputError, match=message.replace("(", r"\(").replace("[", r"\[")):
        validate_result(doc, "demo.json")


def test_not_recorded_machine_fields_are_null_not_absent() -> None:
    doc = _doc()
    doc["machine"].update(cpu=None, cores_logical=None, os=None, python=None, onnxruntime=None,
                          load_average_before=None, load_average_after=None)
    validate_result(doc)
    assert machine_line(doc["machine"]).startswith("not recorded; numpy ")


def test_write_result_writes_json_and_markdown_rendered_from_the_json(tmp_path: Path) -> None:
    seen: list[Any] = []

    def render(d: Any) -> str:
        seen.append(d)
        return render_markdown(d, "Demo", [Table(["name", "ms"], [[r["name"], r["ms"]] for r in d["rows"]])])

    js = write_result(_doc(), tmp_path / "sub" / "demo", render, echo=False)
    assert js == tmp_path / "sub" / "demo.json"
    assert load_result(js) == json.loads(js.read_text()) == seen[0]  # rendered from what was written
    md = (tmp_path / "sub" / "demo.md").read_text()
    assert md.startswith("# Demo\n\n- machine: ")
    assert "- command: `python benchmarks/demo.py --n 3`" in md
    assert "| a\\|b | 1.25 |" in md  # a pipe in a cell is escaped
    assert md.endswith("| 1.25 |\n")


def test_write_result_refuses_an_invalid_document(tmp_path: Path) -> None:
    doc = _doc()
    doc["machine"] = {}
    with pytest.raises(InputError, match="'machine' missing, empty"):
        write_result(doc, tmp_path / "bad")
    assert not (tmp_path / "bad.json").exists()


def test_load_result_errors(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no such result file"):
        load_result(tmp_path / "none.json")
    (tmp_path / "x.json").write_text("{")
    with pytest.raises(InputError, match="not valid JSON"):
        load_result(tmp_path / "x.json")


def test_md_table_and_renderer_layout() -> None:
    assert md_table(["a", "b"], [[1, "x|y"]]) == "| a | b |\n| --- | --- |\n| 1 | x\\|y |"
    doc = _doc()
    doc["git"] = {"commit": "abc123", "uncommitted": ["edgevl/x.py"]}
    text = render_markdown(doc, "T", ["para", Table(["h"], [["v"]]), "after"], ["note one"])
    lines = text.splitlines()
    assert lines[0] == "# T" and lines[1] == ""
    assert lines[2].startswith("- machine: ") and "load average (1 min) 1.5 before" in lines[2]
    assert lines[3:7] == ["- command: `python benchmarks/demo.py --n 3`", f"- date: {doc['created']}",
                          "- code: commit abc123, with uncommitted changes in edgevl/x.py", "- note one"]
    assert lines[7:] == ["", "para", "| h |", "| --- |", "| v |", "", "after"]


def test_machine_line_reads_old_and_new_records() -> None:
    new = {"cpu": "Xeon", "cores_logical": 2, "os": "Linux", "python": "3.11", "onnxruntime": "1.32",
           "gpus": [{"name": "Orin", "driver": "36.4"}], "packages": {"torch": "2.13", "absent": None},
           "load_average_before": [3.25, 1, 1], "load_average_after": None}
    assert machine_line(new) == ("Xeon (2 logical cores); Linux; Python 3.11; onnxruntime 1.32; "
                                 "torch 2.13; GPU: Orin (driver 36.4); load average (1 min) 3.2 before, "
                                 "? after on 2 cores")
    assert machine_line({"cpu": "Xeon", "cores": 4, "gpus": []}) == "Xeon (4 logical cores); no GPU"


class _Clock:
    """A fake clock: each call to a timed function advances it by that function's cost."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_interleaved_rotates_the_order_and_times_each_call() -> None:
    clock = _Clock()
    calls: list[str] = []

    def fn(name: str, cost: float) -> Any:
        def f() -> None:
            calls.append(name)
            clock.now += cost
        return f

    fns = {"a": fn("a", 0.001), "b": fn("b", 0.003), "c": fn("c", 0.002)}
    ms = interleaved(fns, 3, warmup=1, clock=clock)
    assert calls == ["a", "b", "c", "a", "b", "c", "b", "c", "a", "c", "a", "b"]  # warm-up, then rotated
    assert ms == {"a": pytest.approx([1.0] * 3), "b": pytest.approx([3.0] * 3), "c": pytest.approx([2.0] * 3)}
    calls.clear()
    interleaved({"a": fn("a", 0), "b": fn("b", 0)}, 2, warmup=0, clock=clock, rotate=False)
    assert calls == ["a", "b", "a", "b"]
    with pytest.raises(ValueError):
        interleaved({"a": fn("a", 0)}, 0)


def test_interleaved_can_hold_the_bench_lock(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import fcntl

    lock = tmp_path / "bench.lock"
    monkeypatch.setenv("EDGEVL_BENCH_LOCK", str(lock))
    held: list[bool] = []

    def probe() -> None:  # another open file cannot take the lock while the loop holds it
        with open(lock, "a") as f:
            try:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
                held.append(False)
                fcntl.flock(f, fcntl.LOCK_UN)
            except BlockingIOError:
                held.append(True)

    interleaved({"p": probe}, 2, warmup=0, lock=True)
    interleaved({"p": probe}, 1, warmup=0, lock=False)
    assert held == [True, True, False]


def test_paths_follow_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    script = tmp_path / "repo" / "benchmarks" / "x.py"
    monkeypatch.delenv("EDGEVL_BENCH_RESULTS", raising=False)
    monkeypatch.delenv("EDGEVL_LIBRARY_DATA", raising=False)
    p = bench_paths(script)
    assert p.repo == tmp_path / "repo" and p.results == tmp_path / "repo" / "benchmarks" / "results"
    assert p.library == tmp_path / "shared" / "data" / "library"
    assert p.stem("name") == p.results / "name" and p.stem("a/b") == Path("a/b")
    monkeypatch.setenv("EDGEVL_BENCH_RESULTS", str(tmp_path / "out"))
    monkeypatch.setenv("EDGEVL_LIBRARY_DATA", str(tmp_path / "lib"))
    p = bench_paths(script)
    assert p.results == tmp_path / "out" and p.library == tmp_path / "lib"


def test_command_line_is_relative_to_the_repo(tmp_path: Path) -> None:
    script = tmp_path / "benchmarks" / "x.py"
    assert command_line(tmp_path, [str(script), "--n", "a b"]) == "python benchmarks/x.py --n 'a b'"
    assert command_line(tmp_path, [str(script)], locked=True) == \
        "flock /tmp/edgevl-bench.lock python benchmarks/x.py"


def test_benchmark_entries_are_checked() -> None:
    b = Benchmark("x", ("x.json",), "x.py", ("--full",), quick=("--quick",))
    assert b.argv() == ["--full"] and b.argv(quick=True) == ["--quick"]
    assert Benchmark("y", ("y.json",), "y.py", ("--a",)).argv(quick=True) == ["--a"]
    for bad in (dict(runner="nope"), dict(lock="both"), dict(script=None), dict(outputs=())):
        kw: dict[str, Any] = {"name": "z", "outputs": ("z.json",), "script": "z.py", **bad}
        with pytest.raises(ValueError):
            Benchmark(**kw)
    with pytest.raises(ValueError, match="says the command"):
        Benchmark("m", ("m.json",), runner="manual")


def test_bench_lock_is_not_taken_twice_under_a_holding_parent(tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    import fcntl

    from benchlib import bench_lock

    lock = tmp_path / "bench.lock"
    monkeypatch.setenv("EDGEVL_BENCH_LOCK", str(lock))
    with open(lock, "a") as parent:  # a "parent" holds the lock (flock ... run_all.py --locked)
        fcntl.flock(parent, fcntl.LOCK_EX)
        monkeypatch.setenv("EDGEVL_BENCH_LOCKED", "1")
        with bench_lock() as waited:  # would block forever without the variable
            assert waited == 0.0
        monkeypatch.delenv("EDGEVL_BENCH_LOCKED")
        with open(lock, "a") as other, pytest.raises(BlockingIOError):
            fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)  # the lock really is held
