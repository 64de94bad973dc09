"""`edgevl library run` against hostile options, files and results folders, as a table.

Each case prepares a workspace, runs the command in this process and asserts: the exit code, the
stderr (one ``edgevl: error:`` line for a refusal; no traceback ever), that no input file changed
(every regular file under ``in/`` hashed before and after) and that no committed row was lost (the
photos of the valid log records before the run are all still there, once). Cases that refuse before
any work are fast; those marked ``ocr`` start real worker processes on tiny rendered shelves.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from test_library_store import ok_record

from edgevl.errors import InputError
from edgevl.library.records import error_record
from edgevl.library.store import read_log, record_key

Setup = Callable[["Ws"], list[str]]


@dataclass
class Ws:
    """A workspace: inputs under ``inp``, the results folder ``out``, the default photo list."""

    root: Path
    inp: Path
    out: Path
    catalogue: Path
    photos: list[Path] = field(default_factory=list)

    def argv(self, *extra: str, photos: list[str] | None = None) -> list[str]:
        ps = [str(p) for p in self.photos] if photos is None else photos
        return ["library", "run", *ps, "-c", str(self.catalogue), "-o", str(self.out), "--cache-dir",
                str(self.root / "cache"), "--workers", "1", "--threads", "1", *extra]

    def log(self, records: list[dict[str, Any]], *extra_lines: str) -> None:
        self.out.mkdir(exist_ok=True)
        lines = [json.dumps(r) for r in records] + list(extra_lines)
        (self.out / "photos.jsonl").write_text("".join(ln + "\n" for ln in lines))

    def done_records(self) -> list[dict[str, Any]]:
        return [ok_record(str(p), [True, False]) for p in self.photos]


def make_ws(tmp_path: Path, *, real_photos: bool = False) -> Ws:
    inp = tmp_path / "in"
    inp.mkdir()
    from test_library_run import write_catalogue

    cat = write_catalogue(inp / "cat.csv")
    ws = Ws(tmp_path, inp, tmp_path / "out", cat)
    for k in range(2):
        p = inp / f"shelf_{k}.png"
        if real_photos:
            import cv2
            from test_books_shelf import render_spines
            from test_library_run import shelf_items

            cv2.imwrite(str(p), render_spines(shelf_items(k)))
        else:
            p.write_bytes(b"\x89PNG never read: these photos are already done or the run is refused")
        ws.photos.append(p)
    return ws


def snapshot(folder: Path) -> dict[str, str]:
    out = {}
    for p in sorted(folder.rglob("*")):
        if p.is_file() and not p.is_symlink():
            out[str(p.relative_to(folder))] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


# -- setups -----------------------------------------------------------------------------------------


def opt(*extra: str) -> Setup:
    return lambda ws: ws.argv(*extra)


def list_file(make: Callable[[Path], Path]) -> Setup:
    def setup(ws: Ws) -> list[str]:
        return ws.argv("--from-list", str(make(ws.inp)), photos=[])
    return setup


def fifo(d: Path) -> Path:
    os.mkfifo(d / "list.fifo")
    return d / "list.fifo"


def log_symlink(ws: Ws) -> list[str]:
    (ws.inp / "victim.txt").write_text("a file the log must never be appended to\n")
    ws.out.mkdir()
    (ws.out / "photos.jsonl").symlink_to(ws.inp / "victim.txt")
    return ws.argv()


def log_dir(ws: Ws) -> list[str]:
    (ws.out / "photos.jsonl").mkdir(parents=True)
    return ws.argv()


def log_hardlink(ws: Ws) -> list[str]:
    (ws.inp / "victim.txt").write_text("precious\n")
    ws.out.mkdir()
    os.link(ws.inp / "victim.txt", ws.out / "photos.jsonl")
    return ws.argv()


def log_fifo(ws: Ws) -> list[str]:
    ws.out.mkdir()
    os.mkfifo(ws.out / "photos.jsonl")
    return ws.argv()


def run_json(content: str, with_log: bool = True) -> Setup:
    def setup(ws: Ws) -> list[str]:
        ws.log(ws.done_records()[:1] if with_log else [])
        (ws.out / "run.json").write_text(content)
        return ws.argv()
    return setup


def other_catalogue(ws: Ws) -> list[str]:
    ws.log(ws.done_records()[:1])
    (ws.out / "run.json").write_text(json.dumps({"catalogue_sha256": "0" * 64, "ocr_model": "ppocrv6"}))
    return ws.argv()


def out_is_a_file(ws: Ws) -> list[str]:
    ws.out.write_text("not a folder\n")
    return ws.argv()


def lock_symlink(ws: Ws) -> list[str]:
    ws.out.mkdir()
    (ws.inp / "victim.txt").write_text("precious\n")
    (ws.out / ".lock").symlink_to(ws.inp / "victim.txt")
    return ws.argv()


def table_is_a_dir(ws: Ws) -> list[str]:
    ws.log(ws.done_records())
    (ws.out / "results.csv").mkdir()
    return ws.argv()


def cache_is_a_file(ws: Ws) -> list[str]:
    (ws.root / "cache").write_text("a file where the index cache folder should be\n")
    return ws.argv()


def duplicated_lines(ws: Ws) -> list[str]:
    recs = ws.done_records()
    lines = [json.dumps(r) for r in recs]
    ws.log([], lines[0], lines[1], lines[0], lines[1], lines[0])
    return ws.argv()


def catalogue_by_other_path(how: str) -> Setup:
    def setup(ws: Ws) -> list[str]:
        ws.log(ws.done_records())
        ws.out.mkdir(exist_ok=True)
        digest = hashlib.sha256(ws.catalogue.read_bytes()).hexdigest()
        (ws.out / "run.json").write_text(json.dumps({"catalogue_sha256": digest, "ocr_model": "ppocrv6",
                                                     "catalogue": "/elsewhere/cat.csv"}))
        if how == "symlink":
            link = ws.root / "link.csv"
            link.symlink_to(ws.catalogue)
            ws.catalogue = link
        else:
            ws.catalogue = Path(os.path.relpath(ws.catalogue))
        return ws.argv()
    return setup


def ray_unreachable(ws: Ws) -> list[str]:
    pytest.importorskip("ray")
    return ws.argv("--ray", "127.0.0.1:9")


def ray_address_of_another_service(ws: Ws) -> list[str]:
    """A listening port that is not Ray (an HTTP/1 server answering 400): Ray itself would retry
    for minutes; edgevl's probe sees no gRPC answer."""
    import socket
    import threading

    pytest.importorskip("ray")
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen()

    def answer() -> None:
        with srv:
            conn, _ = srv.accept()
            with conn:
                conn.recv(100)
                conn.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")

    threading.Thread(target=answer, daemon=True).start()
    return ws.argv("--ray", f"127.0.0.1:{srv.getsockname()[1]}")


def ray_missing_auto(ws: Ws) -> list[str]:
    pytest.importorskip("ray")
    return ws.argv("--ray", "auto")


@dataclass(frozen=True)
class Case:
    name: str
    setup: Setup
    code: int
    err: str  # a regex one stderr line must match (code 2: the only line, an edgevl: error:)
    after: Callable[[Ws], None] | None = None
    ocr: bool = False
    max_s: float = 60.0


def each_photo_once(ws: Ws) -> None:
    with (ws.out / "results.csv").open(encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    keys = [(r["photo"], r["spine"]) for r in rows]
    assert len(keys) == len(set(keys))
    assert {r["photo"] for r in rows} == {str(p) for p in ws.photos}


def victim_intact(ws: Ws) -> None:
    assert (ws.inp / "victim.txt").stat().st_size > 0
    assert not (ws.out / "results.csv").exists()


CASES = [
    Case("num-cpus 0", opt("--ray", "--num-cpus", "0"), 2, r"--num-cpus must be .*> 0"),
    Case("num-cpus nan", opt("--ray", "--num-cpus", "nan"), 2, r"--num-cpus must be .*not nan"),
    Case("num-cpus inf", opt("--ray", "--num-cpus", "inf"), 2, r"--num-cpus must be .*not inf"),
    Case("num-gpus nan", opt("--ray", "--num-gpus", "nan"), 2, r"--num-gpus must be .*not nan"),
    Case("num-gpus -1", opt("--num-gpus", "-1"), 2, r"--num-gpus must be"),
    Case("backend bogus", opt("--backend", "bogus"), 2,
         r"--backend 'bogus' is unknown; choose one of ort-cpu"),
    Case("threads 5000", opt("--threads", "5000"), 2, r"--threads must be between 0 and 1024"),
    Case("workers 100000", opt("--workers", "100000"), 2, r"--workers must be between 0 and 1024"),
    Case("actors -1", opt("--actors", "-1"), 2, r"--actors must be between"),
    Case("unknown model", opt("--model", "nope"), 2, r"unknown OCR model 'nope'"),
    Case("list FIFO", list_file(fifo), 2,
         r"list\.fifo: the photo list must be a regular file, this is a FIFO", max_s=10),
    Case("list /dev/zero", list_file(lambda d: Path("/dev/zero")), 2,
         r"/dev/zero: the photo list must be a regular file, this is a device", max_s=10),
    Case("list directory", list_file(lambda d: d), 2,
         r"the photo list must be a regular file, this is a dir"),
    Case("list missing", list_file(lambda d: d / "nope.txt"), 2, r"nope\.txt: photo list not found"),
    Case("list empty", list_file(lambda d: (d / "e.txt", (d / "e.txt").write_text("# none\n\n"))[0]), 2,
         r"no photos"),
    Case("log symlink", log_symlink, 2, r"photos\.jsonl: the commit log is a symbolic link", victim_intact),
    Case("log directory", log_dir, 2, r"photos\.jsonl: the commit log is a directory"),
    Case("log hard link", log_hardlink, 2, r"photos\.jsonl: the commit log is a hard link", victim_intact),
    Case("log FIFO", log_fifo, 2, r"photos\.jsonl: the commit log is not a regular file", max_s=10),
    Case("run.json not JSON", run_json("{nope"), 2, r"run\.json: run settings: not valid JSON.*are unknown"),
    Case("run.json a list", run_json("[1, 2]"), 2, r"run\.json: holds a JSON list.*are unknown"),
    Case("run.json duplicate keys", run_json('{"ocr_model": "a", "ocr_model": "b"}'), 2,
         r"run\.json: .*duplicate key"),
    Case("cache dir is a file", cache_is_a_file, 2, r"cache: cannot use it as the index cache folder"),
    Case("other catalogue", other_catalogue, 2, r"holds results of a run with catalogue_sha256="),
    Case("out is a file", out_is_a_file, 2, r"out: cannot create the results folder"),
    Case("lock symlink", lock_symlink, 2, r"\.lock: cannot create the lock file", victim_intact),
    Case("results.csv a directory", table_is_a_dir, 2,
         r"results\.csv: the results table must be a regular file path, this is a directory"),
    Case("duplicated log lines", duplicated_lines, 0, r"warning: .*3 duplicated record\(s\) were skipped",
         each_photo_once),
    Case("catalogue via a symlink", catalogue_by_other_path("symlink"), 0, r"resuming: 2 photos already done",
         each_photo_once),
    Case("catalogue via a relative path", catalogue_by_other_path("relative"), 0,
         r"resuming: 2 photos already done", each_photo_once),
    Case("ray unreachable", ray_unreachable, 2, r"cannot reach the Ray cluster at 127\.0\.0\.1:9", max_s=20),
    Case("ray address of another service", ray_address_of_another_service, 2,
         r"127\.0\.0\.1:\d+ does not answer as a Ray cluster", max_s=20),
    Case("ray auto without a cluster", ray_missing_auto, 2, r"cannot start or reach Ray", max_s=30),
]


def damaged_records(ws: Ws) -> list[str]:
    a, b = (str(p) for p in ws.photos)
    ws.log([ok_record(a, [True])], json.dumps({"photo": b, "spines": []}), json.dumps({**ok_record(b, []),
           "photo": [b]}), json.dumps({**ok_record(b, [True]), "spines": None}))
    return ws.argv()


def non_utf8_name(ws: Ws) -> list[str]:
    odd = ws.inp / os.fsdecode(b"estanter\xeda_\xff.png")
    ws.photos[0].rename(odd)
    ws.photos[0] = odd
    return ws.argv()


def odd_files_in_the_list(ws: Ws) -> list[str]:
    os.mkfifo(ws.inp / "photo.fifo")
    ws.photos += [ws.inp / "photo.fifo", Path("/dev/zero"), ws.inp]
    return ws.argv()


def redone(ws: Ws) -> None:
    recs = list(read_log(ws.out / "photos.jsonl"))
    assert sorted(record_key(r) for r in recs) == sorted(str(p) for p in ws.photos)
    b = next(r for r in recs if record_key(r) == str(ws.photos[1]))
    assert b["status"] == "ok" and any(s["matched"] for s in b["spines"])  # really done this time


def processed_and_resumable(ws: Ws) -> None:
    from edgevl.cli import main

    recs = list(read_log(ws.out / "photos.jsonl"))
    assert sorted(record_key(r) for r in recs) == sorted(str(p) for p in ws.photos)
    assert all(r["status"] == "ok" and r["spines"] for r in recs)
    assert main([*ws.argv(), "--json"]) == 0  # resumed: the odd name is recognised as done
    assert len(list(read_log(ws.out / "photos.jsonl"))) == len(ws.photos)


def odd_files_are_error_rows(ws: Ws) -> None:
    with (ws.out / "results.csv").open(encoding="utf-8") as f:
        rows = {r["photo"]: r for r in csv.DictReader(f)}
    for p, why in (("photo.fifo", "FIFO"), ("/dev/zero", "device"), (str(ws.inp), "directory")):
        row = next(r for k, r in rows.items() if k.endswith(p))
        assert row["status"] == "error" and why in row["error"], row


OCR_CASES = [
    Case("damaged records", damaged_records, 0, r"warning: .*3 line\(s\) that are not valid records", redone,
         ocr=True, max_s=180),
    Case("non-UTF-8 photo name", non_utf8_name, 0, r"", processed_and_resumable, ocr=True, max_s=180),
    Case("FIFO, /dev/zero and a folder as photos", odd_files_in_the_list, 0, r"", odd_files_are_error_rows,
         ocr=True, max_s=180),
    Case("run.json a list, nothing done yet", run_json("[1, 2]", with_log=False), 0, r"", each_photo_once,
         ocr=True, max_s=180),
]


def run_case(case: Case, tmp_path: Path, capsys: pytest.CaptureFixture[str],
             monkeypatch: pytest.MonkeyPatch) -> None:
    from edgevl.cli import main

    if case.ocr:
        pytest.importorskip("PIL")
    ws = make_ws(tmp_path, real_photos=case.ocr)
    monkeypatch.chdir(tmp_path)
    argv = case.setup(ws)
    before_inputs = snapshot(ws.inp)
    log = ws.out / "photos.jsonl"
    try:
        before = {record_key(r) for r in read_log(log)}
    except InputError:  # a log the case made unreadable on purpose
        before = set()
    capsys.readouterr()
    t0 = time.monotonic()
    code = main(argv)
    elapsed = time.monotonic() - t0
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert "Traceback" not in err, err
    assert code == case.code, err
    assert elapsed < case.max_s, f"took {elapsed:.1f} s"
    if case.code == 2:
        assert len(lines) == 1 and lines[0].startswith("edgevl: error: "), lines
    if case.err:
        import re

        assert any(re.search(case.err, ln) for ln in lines), lines
    assert snapshot(ws.inp) == before_inputs  # no input changed
    if before:  # no committed row lost, none doubled
        after = [record_key(r) for r in read_log(log)]
        assert before <= set(after) and len(after) == len(set(after))
    if case.after is not None:
        case.after(ws)


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_hostile_library_run(case: Case, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                             monkeypatch: pytest.MonkeyPatch) -> None:
    run_case(case, tmp_path, capsys, monkeypatch)


@pytest.mark.slow
@pytest.mark.parametrize("case", OCR_CASES, ids=[c.name for c in OCR_CASES])
def test_hostile_library_run_with_workers(case: Case, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    run_case(case, tmp_path, capsys, monkeypatch)


def test_the_error_record_of_the_driver_names_no_worker() -> None:
    assert error_record("/p", "x", worker={})["worker"] == {}
