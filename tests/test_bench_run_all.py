"""benchmarks/run_all.py: discovery, headline extraction and the results index (nothing is timed)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import ModuleType

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "run_all.py"


@pytest.fixture(scope="module")
def run_all() -> ModuleType:
    spec = importlib.util.spec_from_file_location("run_all", SCRIPT)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


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


def test_discovery_skips_helpers(run_all: ModuleType) -> None:
    scripts, skipped = run_all.discover()
    names = {p.stem for p in scripts}
    assert "run_all" not in names
    for why in skipped.values():
        assert why
    assert not names & set(skipped)


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


def test_self_locking_scripts_are_not_wrapped(run_all: ModuleType, tmp_path: Path) -> None:
    own = tmp_path / "own.py"
    own.write_text("import fcntl\nwith open(LOCK) as f:\n    fcntl.flock(f, fcntl.LOCK_EX)\n")
    plain = tmp_path / "plain.py"
    plain.write_text('"""flock /tmp/edgevl-bench.lock python plain.py"""\n')
    assert run_all.locks_itself(own) and not run_all.locks_itself(plain)


def test_run_locked_records_command_and_exit(run_all: ModuleType, tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    monkeypatch.setattr(run_all, "LOCK", tmp_path / "bench.lock")
    ok = run_all.run_locked("ok", [sys.executable, "-c", "print('hi')"], tmp_path / "logs")
    assert ok["returncode"] == 0 and ok["command"].startswith(f"flock {tmp_path / 'bench.lock'} python -c")
    assert Path(ok["log"]).read_text().strip() == "hi"
    bad = run_all.run_locked("bad", [sys.executable, "-c", "raise SystemExit(3)"], tmp_path / "logs",
                             lock=False)
    assert bad["returncode"] == 3 and not bad["command"].startswith("flock")
