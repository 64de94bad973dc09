"""Real `edgevl library run` drivers, stopped the hard ways: SIGTERM, SIGKILL of the driver alone,
a file-size limit in the middle of the run, and a local Ray driver (started from a folder that holds
a folder named ``edgevl``) killed with SIGKILL. Each test checks that no worker (or Ray process)
outlives the driver, that the log holds only whole records, and that a resumed run ends with every
photo exactly once. Every wait is bounded."""

from __future__ import annotations

import csv
import os
import resource
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from edgevl.library.reaper import descendants, process_table
from edgevl.library.store import read_log, record_key

pytestmark = pytest.mark.slow

#: the CLI's own entry point (it ignores SIGXFSZ); -P keeps the working folder off sys.path
ENTRY = [sys.executable, "-P", "-c", "from edgevl.cli import run; run()"]


@pytest.fixture(scope="module")
def shelves(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    pytest.importorskip("PIL")
    import cv2
    from test_books_shelf import render_spines
    from test_library_run import shelf_items, write_catalogue

    d = tmp_path_factory.mktemp("kill")
    cat = write_catalogue(d / "cat.csv")
    photos = []
    for k in range(8):
        p = d / f"shelf_{k}.png"
        cv2.imwrite(str(p), render_spines(shelf_items(k)))
        photos.append(str(p))
    return {"dir": d, "catalogue": cat, "photos": photos}


def wait_for(cond: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.05)


def committed(log: Path) -> list[str]:
    try:
        return [record_key(r) for r in read_log(log)]
    except Exception:
        return []


def alive(pids: dict[int, int]) -> list[int]:
    table = process_table()
    return [p for p, start in pids.items() if p in table and table[p][1] == start]


def gone_or_reaped(kids: dict[int, int], timeout: float, what: str) -> None:
    """Wait for ``kids`` to end; if they do not, kill them (a failing test leaks nothing) and fail."""
    try:
        wait_for(lambda: not alive(kids), timeout, what)
    except AssertionError:
        for p in alive(kids):
            os.kill(p, signal.SIGKILL)
        raise


def start_driver(args: list[str], cwd: Path, **kw: Any) -> subprocess.Popen[bytes]:
    return subprocess.Popen([*ENTRY, *args], cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            start_new_session=True, **kw)


def run_args(ws: dict[str, Any], out: Path, *extra: str, photos: list[str] | None = None) -> list[str]:
    return ["library", "run", *(photos or ws["photos"]), "-c", str(ws["catalogue"]), "-o", str(out),
            "--cache-dir", str(ws["dir"] / "cache"), "--threads", "1", *extra]


def stop_midway(proc: subprocess.Popen[bytes], log: Path, sig: int, *,
                min_done: int = 1, timeout: float = 180) -> tuple[list[str], dict[int, int]]:
    """Wait for ``min_done`` commits, note the driver's descendants, send ``sig`` to the driver."""
    try:
        wait_for(lambda: len(committed(log)) >= min_done or proc.poll() is not None, timeout, "first commits")
        assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
        kids = descendants({proc.pid}, process_table())
        os.kill(proc.pid, sig)
        proc.wait(timeout=60)
    except BaseException:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
        raise
    return committed(log), kids


def resume_and_check(ws: dict[str, Any], out: Path, before: list[str], *extra: str) -> None:
    from edgevl.cli import main

    assert main([*run_args(ws, out, "--workers", "1", *extra), "--json"]) == 0
    after = committed(out / "photos.jsonl")
    assert after[: len(before)] == before  # nothing committed was rewritten or lost
    assert Counter(after) == Counter(ws["photos"])  # each photo exactly once
    rows = list(csv.DictReader((out / "results.csv").open(encoding="utf-8")))
    keys = [(r["photo"], r["spine"]) for r in rows]
    assert len(keys) == len(set(keys)) and {r["photo"] for r in rows} == set(ws["photos"])


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_terminated_driver_ends_its_workers_and_keeps_the_log(shelves: dict[str, Any], tmp_path: Path,
                                                                sig: int) -> None:
    out = tmp_path / "out"
    proc = start_driver(run_args(shelves, out, "--workers", "2"), tmp_path)
    before, kids = stop_midway(proc, out / "photos.jsonl", sig)
    err = proc.stderr.read().decode() if proc.stderr else ""
    assert proc.returncode == 128 + sig, err
    assert "Traceback" not in err and "edgevl: interrupted" in err.strip().splitlines()[-1]
    assert len(kids) >= 2  # the pool's workers (and multiprocessing's resource tracker)
    gone_or_reaped(kids, 10, "the workers to end")
    raw = (out / "photos.jsonl").read_bytes()
    assert raw.endswith(b"\n") and len(raw.splitlines()) == len(before)  # only whole, valid records
    assert 1 <= len(before) < len(shelves["photos"])
    resume_and_check(shelves, out, before)


def test_workers_do_not_outlive_a_killed_driver(shelves: dict[str, Any], tmp_path: Path) -> None:
    out = tmp_path / "out"
    proc = start_driver(run_args(shelves, out, "--workers", "2"), tmp_path)
    before, kids = stop_midway(proc, out / "photos.jsonl", signal.SIGKILL)  # the driver alone, no clean-up
    assert proc.returncode == -signal.SIGKILL and len(kids) >= 2
    gone_or_reaped(kids, 10, "the orphaned workers to end")
    resume_and_check(shelves, out, before)


def test_a_file_size_limit_mid_run_is_one_error_and_resumes(shelves: dict[str, Any], tmp_path: Path) -> None:
    from edgevl.cli import main

    out = tmp_path / "out"
    first = shelves["photos"][:1]
    assert main([*run_args(shelves, out, "--workers", "1", photos=first), "--json"]) == 0  # index cached
    limit = (out / "photos.jsonl").stat().st_size + 2500  # room for one or two more photos

    def cap() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    proc = subprocess.run([*ENTRY, *run_args(shelves, out, "--workers", "1")], cwd=tmp_path,
                          capture_output=True, timeout=300, preexec_fn=cap)
    err = proc.stderr.decode()
    lines = [ln for ln in err.splitlines() if ln.strip() and not ln.startswith("resuming")]
    assert proc.returncode == 2 and "Traceback" not in err, err
    assert len(lines) == 1 and lines[0].startswith("edgevl: error: ") and "File too large" in lines[0], lines
    before = committed(out / "photos.jsonl")
    assert (out / "photos.jsonl").read_bytes().endswith(b"\n")
    assert 1 <= len(before) < len(shelves["photos"])
    resume_and_check(shelves, out, before)


def watched_run(args: list[str], cwd: Path, timeout: float) -> tuple[int, str, dict[int, int]]:
    """Run a driver to its end, noting every process below it (polled) on the way."""
    proc = start_driver(args, cwd)
    kids: dict[int, int] = {}
    deadline = time.monotonic() + timeout
    try:
        while proc.poll() is None:
            if time.monotonic() > deadline:
                raise AssertionError(f"the run took over {timeout} s")
            kids.update(descendants({proc.pid}, process_table()))
            time.sleep(0.1)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)
    err = proc.stderr.read().decode() if proc.stderr else ""
    return proc.returncode, err, kids


def test_ray_from_a_folder_named_edgevl_and_a_stopped_ray_driver(shelves: dict[str, Any],
                                                                 tmp_path: Path) -> None:
    pytest.importorskip("ray")
    cwd = tmp_path / "work"
    (cwd / "edgevl" / "books").mkdir(parents=True)  # what shadowed the package on the actors
    fifo = tmp_path / "photo.fifo"
    os.mkfifo(fifo)
    out = tmp_path / "ray-out"
    photos = [*shelves["photos"][:2], str(fifo)]
    code, err, kids = watched_run(run_args(shelves, out, "--ray", "--actors", "1", photos=photos), cwd, 300)
    assert code == 0, err
    assert "Traceback" not in err and "Token authentication" not in err, err
    recs = {record_key(r): r for r in read_log(out / "photos.jsonl")}
    assert set(recs) == set(photos)
    assert all(recs[p]["status"] == "ok" and recs[p]["spines"] for p in photos[:2])
    assert recs[str(fifo)]["status"] == "error" and "FIFO" in recs[str(fifo)]["error"]
    assert len(kids) >= 3
    gone_or_reaped(kids, 20, "the local Ray to stop after a clean run")

    # SIGTERM (Ray installs its own handler at ray.init; edgevl's must win), then SIGKILL, same folder
    out2 = tmp_path / "ray-stopped"
    proc = start_driver(run_args(shelves, out2, "--ray", "--actors", "1"), cwd)
    before, kids = stop_midway(proc, out2 / "photos.jsonl", signal.SIGTERM, timeout=240)
    err = proc.stderr.read().decode() if proc.stderr else ""
    assert proc.returncode == 128 + signal.SIGTERM, err
    assert "edgevl: interrupted" in err and "SIGTERM received" not in err, err
    gone_or_reaped(kids, 30, "every Ray process to end after SIGTERM")
    proc = start_driver(run_args(shelves, out2, "--ray", "--actors", "1"), cwd)
    before, kids = stop_midway(proc, out2 / "photos.jsonl", signal.SIGKILL, min_done=len(before) + 1,
                               timeout=240)
    assert len(kids) >= 3  # gcs, raylet, agents, the actor, the guardian
    gone_or_reaped(kids, 30, "every Ray process to end after SIGKILL")
    if len(before) < len(shelves["photos"]):
        resume_and_check(shelves, out2, before)
