"""benchmarks/run_all.py: the declared suite, headline extraction, rendering and the results index
(nothing is timed)."""

from __future__ import annotations

import json
from pathlib import Path
from types import ModuleType

import pytest
from conftest import load_script

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "run_all.py"


@pytest.fixture(scope="module")
def run_all() -> ModuleType:
    return load_script(SCRIPT, "run_all")


def test_headlines_are_read_defensively(run_all: ModuleType) -> None:
    h = run_all.headline
    assert h({"headline": "3.1x faster"}) == "3.1x faster"
    summary = [{"image": "a.jpg", "speed_ratio": 2.5}, {"image": "b.jpg", "speed_ratio": 6.0}]
    assert h({"summary": summary}) == "speed_ratio 2.50 (a.jpg); speed_ratio 6.00 (b.jpg)"
    assert h({"summary": {"speedup": 1.234}}) == "speedup 1.23"
    assert h({"results": [1, 2]}) == "" and h([1, 2]) == "" and h(None) == ""
    assert h({"speedup": True}) == ""  # a bool is not a ratio
    assert h({"target_speedup": 2.0}) == ""  # a target is not a measurement
    rows = [{"model": "m", "input": f"batch {b}", "speedup": float(b)} for b in range(1, 7)]
    assert h({"rows": rows}) == ("speedup 1.00 (m, batch 1); speedup 2.00 (m, batch 2); "
                                 "speedup 3.00 (m, batch 3); speedup 4.00 (m, batch 4) (+2 more)")
    bench = {"schema": "edgevl-bench/1", "results": [
        {"bundle": "det", "role": "model", "backend": "ort-cpu", "batch": 1, "stats": {"p50_ms": 770.4}},
        {"bundle": "det", "role": "model", "backend": "ort-cpu", "batch": 8, "stats": {"p50_ms": 9000.0}}]}
    assert h(bench) == "det/model ort-cpu b1 p50 770 ms"


def test_index_links_every_result(run_all: ModuleType, tmp_path: Path) -> None:
    (tmp_path / "a.json").write_text(json.dumps({"command": "python benchmarks/a.py", "headline": "2x",
                                                 "machine": {"cpu": "X", "cores": 2}, "date": "2026-01-01"}))
    (tmp_path / "a.md").write_text("# a")
    (tmp_path / "b.png").write_bytes(b"\x89PNG")
    (tmp_path / "broken.json").write_text("{")
    text = run_all.write_index(tmp_path).read_text()
    assert "[md](a.md) · [json](a.json)" in text and "| 2x |" in text and "`python benchmarks/a.py`" in text
    assert "X, 2 cores" in text
    assert "[png](b.png)" in text and "**broken**" in text


BENCH = SCRIPT.parent


def test_declared_suite_resolves_to_existing_scripts(run_all: ModuleType) -> None:
    names = [b.name for b in run_all.SUITE]
    assert len(names) == len(set(names)), "a result name is declared twice"
    for b in run_all.SUITE:
        if b.runner == "script":
            assert (BENCH / b.script).is_file(), f"{b.name}: benchmarks/{b.script} does not exist"
            src = (BENCH / b.script).read_text(encoding="utf-8")
            assert "__main__" in src and "def render(" in src, f"{b.script}: not a runnable benchmark"
            for flag in (a for a in (*b.args, *(b.quick or ())) if a.startswith("--")):
                assert f'"{flag}"' in src, f"{b.name}: {b.script} takes no {flag}"
        # every declared output is committed, so the index links it
        for out in b.outputs:
            assert (BENCH / "results" / out).is_file(), f"{b.name}: results/{out} is not committed"


def test_every_script_is_declared_or_a_helper(run_all: ModuleType) -> None:
    declared = {b.script for b in run_all.SUITE if b.script} | set(run_all.HELPERS)
    present = {p.name for p in BENCH.glob("*.py")}
    assert present - declared == set(), "a script in benchmarks/ is neither in SUITE nor in HELPERS"
    assert declared - present == set(), "SUITE or HELPERS names a file that is not there"


def test_every_committed_result_is_declared(run_all: ModuleType) -> None:
    outputs = {o for b in run_all.SUITE for o in b.outputs} | {"README.md", "run_all.json"}
    committed = {p.name for p in (BENCH / "results").iterdir() if p.is_file()}
    assert committed - outputs == set(), "a committed result is made by no declared benchmark"


def test_committed_script_results_validate_and_render_from_their_json(run_all: ModuleType) -> None:
    """Each script result follows the schema, and its Markdown is what the script's renderer makes of
    the JSON: the .md never says something the .json does not hold."""
    from benchlib import load_result

    checked = 0
    for b in run_all.SUITE:
        if b.runner != "script":
            continue
        doc = load_result(BENCH / "results" / f"{b.name}.json")
        assert doc["benchmark"] == b.name
        md = (BENCH / "results" / f"{b.name}.md").read_text(encoding="utf-8")
        assert run_all.import_script(b.script).render(doc) == md, f"{b.name}.md is not rendered from its JSON"
        checked += 1
    assert checked >= 10


def test_quick_variants_and_lock_owners(run_all: ModuleType) -> None:
    by = run_all.by_name()
    # the int8 script takes the lock around its timed loops itself: run_all must not hold it too
    assert {b.name for b in run_all.SUITE if b.lock == "self"} == {"int8_minilm", "int8_ppocr", "int8_clip",
                                                                   "ov_int8_det"}
    assert "lock=True" in (BENCH / "int8_bench.py").read_text()
    cmd = run_all.script_command(by["encoders_speed"], quick=True)
    assert cmd[1].endswith("benchmarks/encoders_speed.py") and cmd[2:] == ["--rounds", "20"]
    # the quick calibration decides and ships the same way; it only skips the nested search comparison
    assert run_all.script_command(by["books_calibration"], quick=True)[2:] == ["--no-nested"]


def test_render_all_rewrites_markdown_from_json(run_all: ModuleType, tmp_path: Path) -> None:
    import shutil

    for suffix in (".json", ".md"):
        shutil.copy(BENCH / "results" / f"books_match{suffix}", tmp_path / f"books_match{suffix}")
    doc = json.loads((tmp_path / "books_match.json").read_text())
    doc["results"]["edgevl BookMatcher (warm)"]["f1"] = 0.123456
    (tmp_path / "books_match.json").write_text(json.dumps(doc))
    assert run_all.render_all(tmp_path) == [tmp_path / "books_match.md"]
    assert "| 0.1235 |" in (tmp_path / "books_match.md").read_text()


def test_merge_bench_makes_one_valid_result(run_all: ModuleType, tmp_path: Path) -> None:
    from edgevl.bench import BenchResult, BenchRun, load_run, summarize, write_run

    def part(name: str, batch: int) -> Path:
        r = BenchResult(kind="model", bundle=name, task="t", role="model", precision="fp32",
                        backend="ort-cpu", batch=batch, threads=0, status="ok",
                        stats=summarize([1.0, 2.0, 3.0], batch))
        run = BenchRun(created="2026-01-01T00:00:00+00:00", command=f"edgevl bench {name}",
                       machine={"cpu": "X", "cores_logical": 2, "os": "L", "python": "3", "onnxruntime": "1"},
                       settings={"batches": [batch]}, results=(r,))
        return write_run(run, tmp_path / f"{name}.json")

    run_all.merge_bench([part("a", 1), part("b", 8)], tmp_path / "merged", ["cmd a", "cmd b"])
    merged = load_run(tmp_path / "merged.json")
    assert [(r.bundle, r.batch) for r in merged.results] == [("a", 1), ("b", 8)]
    assert merged.command == "cmd a && cmd b"
    assert "| a/model | ort-cpu | fp32 | 1 |" in (tmp_path / "merged.md").read_text()
    assert (tmp_path / "merged.png").read_bytes()[:4] == b"\x89PNG"


def test_run_locked_records_command_and_exit(run_all: ModuleType, tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    monkeypatch.setenv("EDGEVL_BENCH_LOCK", str(tmp_path / "bench.lock"))
    ok = run_all.run_locked("ok", [sys.executable, "-c", "print('hi')"], tmp_path / "logs")
    assert ok["returncode"] == 0 and ok["command"].startswith(f"flock {tmp_path / 'bench.lock'} python -c")
    assert Path(ok["log"]).read_text().strip() == "hi"
    bad = run_all.run_locked("bad", [sys.executable, "-c", "raise SystemExit(3)"], tmp_path / "logs",
                             lock=False)
    assert bad["returncode"] == 3 and not bad["command"].startswith("flock")


def test_children_under_the_lock_are_told_so(run_all: ModuleType, tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    monkeypatch.setenv("EDGEVL_BENCH_LOCK", str(tmp_path / "bench.lock"))
    monkeypatch.delenv("EDGEVL_BENCH_LOCKED", raising=False)
    show = [sys.executable, "-c", "import os; print(os.environ.get('EDGEVL_BENCH_LOCKED'))"]
    held = run_all.run_locked("held", show, tmp_path / "logs")
    own = run_all.run_locked("own", show, tmp_path / "logs", lock=False)
    assert Path(held["log"]).read_text().strip() == "1"  # must not take the lock again
    assert Path(own["log"]).read_text().strip() == "None"  # takes it around its own timed loops
