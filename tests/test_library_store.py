"""The results folder (commit log, torn-tail repair, resume set, tables), the photo list, the shared
memory-mapped index and the `library run` command-line edge cases. Fast: no OCR here."""

from __future__ import annotations

import csv
import errno
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from edgevl.books import BookMatcher, Catalogue, build_index
from edgevl.books.index import index_arrays, index_from_arrays, index_meta, load_shared, save_shared
from edgevl.errors import InputError
from edgevl.library.records import Counts, error_record, table_rows
from edgevl.library.run import read_photo_list
from edgevl.library.store import LogReport, ResultStore, read_log, record_key, record_problem


def ok_record(photo: str, matched: list[bool]) -> dict[str, Any]:
    spines = [{"spine": i, "quad": [[0, 0], [1, 0], [1, 2], [0, 2]], "ocr": f"text {i}", "matched": m,
               "work": i if m else None, "book_id": 10 + i if m else None, "title": f"T{i}" if m else "",
               "author": "", "tag": "", "score": 0.9 if m else 0.1} for i, m in enumerate(matched)]
    return {"photo": photo, "status": "ok", "error": "", "lines": len(spines), "spines": spines,
            "seconds": {"total": 0.1}, "worker": {"pid": 1}}


def test_table_rows_cover_matches_rejections_empty_photos_and_errors() -> None:
    rows = list(table_rows(ok_record("a.jpg", [True, False])))
    got = [(r["spine"], r["status"], r["book_id"]) for r in rows]
    assert got == [(0, "matched", 10), (1, "rejected", None)]
    assert rows[0]["quad"] == [0.0, 0.0, 1.0, 0.0, 1.0, 2.0, 0.0, 2.0]
    assert [r["status"] for r in table_rows(ok_record("b.jpg", []))] == ["no_spines"]
    err = list(table_rows(error_record("c.jpg", ValueError("broken"))))
    assert [(r["spine"], r["status"], r["error"]) for r in err] == [(-1, "error", "ValueError: broken")]
    c = Counts.of([ok_record("a", [True, False, True]), ok_record("b", []), error_record("c", "x")])
    assert (c.photos, c.spines, c.matched, c.rejected, c.failures, c.no_spines) == (3, 3, 2, 1, 1, 1)


def test_store_commits_whole_photos_and_resumes_after_a_torn_write(tmp_path: Path) -> None:
    store = ResultStore(tmp_path / "out")
    done, _ = store.open({"catalogue_sha256": "abc"})
    assert done == set()
    store.append(ok_record("/p/1.jpg", [True, False]))
    store.append(error_record("/p/2.jpg", "ImageError: bad"))
    store.close()
    log = tmp_path / "out" / "photos.jsonl"
    committed = log.read_bytes()
    # a run killed in the middle of writing photo 3: half a line, no newline
    with log.open("ab") as f:
        f.write(json.dumps(ok_record("/p/3.jpg", [True]))[:40].encode())
    assert [r["photo"] for r in read_log(log)] == ["/p/1.jpg", "/p/2.jpg"]  # the torn line does not count
    store = ResultStore(tmp_path / "out")
    done, counts = store.open({"catalogue_sha256": "abc"})
    assert done == {"/p/1.jpg", "/p/2.jpg"} and counts.spines == 2 and counts.failures == 1
    assert log.read_bytes() == committed  # the torn tail was cut off before appending
    store.append(ok_record("/p/3.jpg", [True]))
    tables = store.write_tables()
    store.close()
    with open(tables["csv"], encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert [(r["photo"], r["spine"], r["status"]) for r in rows] == [
        ("/p/1.jpg", "0", "matched"), ("/p/1.jpg", "1", "rejected"), ("/p/2.jpg", "-1", "error"),
        ("/p/3.jpg", "0", "matched")]
    assert rows[0]["quad"] == "0.0,0.0 1.0,0.0 1.0,2.0 0.0,2.0" and rows[0]["book_id"] == "10"
    if "parquet" in tables:
        import pyarrow.parquet as pq

        t = pq.read_table(tables["parquet"]).to_pylist()
        assert [(r["photo"], r["spine"], r["book_id"]) for r in t] == [
            ("/p/1.jpg", 0, 10), ("/p/1.jpg", 1, None), ("/p/2.jpg", -1, None), ("/p/3.jpg", 0, 10)]


def test_store_skips_a_damaged_line_and_never_counts_a_photo_twice(tmp_path: Path) -> None:
    log = tmp_path / "photos.jsonl"
    lines = [json.dumps(ok_record("/a", [True])), "{not json", json.dumps(ok_record("/a", [False])),
             json.dumps(ok_record("/b", []))]
    log.write_text("\n".join(lines) + "\n")
    recs = list(read_log(log))
    assert [r["photo"] for r in recs] == ["/a", "/b"] and recs[0]["spines"][0]["matched"] is True


def test_store_refuses_another_catalogue_and_a_concurrent_run(tmp_path: Path) -> None:
    first = ResultStore(tmp_path)
    first.open({"catalogue_sha256": "abc"})
    with pytest.raises(InputError, match="another run"):
        ResultStore(tmp_path).open({"catalogue_sha256": "abc"})
    first.close()
    with pytest.raises(InputError, match="catalogue_sha256"):
        ResultStore(tmp_path).open({"catalogue_sha256": "def"})
    ResultStore(tmp_path).open({"catalogue_sha256": "abc"})  # the lock was released


def test_an_unknown_ocr_model_fails_before_anything_is_written(tmp_path: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    from edgevl.cli import main

    cat = tmp_path / "cat.csv"
    cat.write_text("title,author\nA,B\n")
    out = tmp_path / "o"
    assert main(["library", "run", str(tmp_path / "a.jpg"), "-c", str(cat), "-o", str(out),
                 "--model", "nope"]) == 2
    assert "unknown OCR model 'nope'" in capsys.readouterr().err and not out.exists()


def test_photo_list_from_arguments_and_a_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    lst = tmp_path / "list.txt"
    lst.write_text("# shelf photos\nb.jpg\n\n  a.jpg  \n/abs/c.jpg\n")
    got = read_photo_list([Path("a.jpg")], lst)
    assert got == [str(tmp_path / "a.jpg"), str(tmp_path / "b.jpg"), "/abs/c.jpg"]
    with pytest.raises(InputError, match="no photos"):
        read_photo_list([], None)
    with pytest.raises(InputError, match=r"nope\.txt"):
        read_photo_list([], tmp_path / "nope.txt")


def small_catalogue() -> Catalogue:
    rng = np.random.default_rng(0)
    words = ["vida", "mar", "noche", "tiempo", "guerra", "amor", "ciudad", "casa", "libro", "luz"]
    recs = [{"title": " ".join(rng.choice(words, size=3)).capitalize(), "author": f"Autor{i}, Nombre",
             "tag": f"N Au{i % 7}"} for i in range(300)]
    recs.append({"title": "La sombra del viento", "author": "Ruiz Zafón, Carlos", "tag": "N Rui"})
    recs.append({"title": "La sombra del viento", "author": "Ruiz Zafón, Carlos", "tag": "N Rui"})  # a copy
    return Catalogue.from_records(recs)


def test_shared_index_is_memory_mapped_and_matches_like_the_built_one(tmp_path: Path) -> None:
    built = build_index(small_catalogue())
    save_shared(built, tmp_path)
    stamp = (tmp_path / "shared" / "complete.json").stat().st_mtime_ns
    save_shared(built, tmp_path)  # already complete: not rewritten
    assert (tmp_path / "shared" / "complete.json").stat().st_mtime_ns == stamp
    shared = load_shared(tmp_path)
    for arr in (shared.vectors.data, shared.vectors.indices, shared.postings.data, shared.postings.indptr,
                shared.rows):
        assert not arr.flags.writeable  # a read-only view of the mapped file, not a copy
        base = arr
        while not isinstance(base, np.memmap) and base.base is not None:
            base = base.base
        assert isinstance(base, np.memmap)
    texts = ["RUIZ ZAFON LA SOMBRA DEL VIENTO N Rui", "vida mar noche Autor12", "zzz qqq"]
    a, b = BookMatcher(built).match(texts), BookMatcher(shared).match(texts)
    def key(ms: list[Any]) -> list[Any]:
        return [(m.work, m.rows, round(m.score, 6)) for m in ms]

    assert key(a) == key(b)
    assert a[0].title == "La sombra del viento" and len(a[0].rows) == 2
    # the in-memory form (what Ray puts in its object store) gives the same index
    again = index_from_arrays(index_arrays(built), index_meta(built))
    assert [m.work for m in BookMatcher(again).match(texts)] == [m.work for m in a]


def test_shared_index_missing_is_a_typed_error(tmp_path: Path) -> None:
    from edgevl.errors import CatalogueError

    with pytest.raises(CatalogueError, match="no shared index"):
        load_shared(tmp_path)


def test_ray_address_after_the_switch() -> None:
    from edgevl.cli.library import rewrite_ray_option

    base = ["library", "run", "a.jpg", "-c", "c.csv", "-o", "out"]
    assert rewrite_ray_option([*base, "--ray"]) == [*base, "--ray"]
    assert rewrite_ray_option([*base, "--ray", "auto"]) == [*base, "--ray", "--ray-address", "auto"]
    assert rewrite_ray_option([*base, "--ray", "10.0.0.5:6379"])[-1] == "10.0.0.5:6379"
    assert rewrite_ray_option([*base, "--ray=ray://head:10001"])[-2:] == ["--ray-address", "ray://head:10001"]
    # a photo after --ray stays a photo
    assert rewrite_ray_option(["library", "run", "--ray", "b.jpg"]) == ["library", "run", "--ray", "b.jpg"]
    assert rewrite_ray_option(["ocr", "--ray", "auto"]) == ["ocr", "--ray", "auto"]


def test_ray_without_the_scale_extra_says_how_to_install_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    from edgevl.cli import main

    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` raises ImportError
    cat = tmp_path / "cat.csv"
    cat.write_text("title,author\nA,B\n")
    code = main(["library", "run", str(tmp_path / "a.jpg"), "-c", str(cat), "-o", str(tmp_path / "o"),
                 "--ray"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and err == ["edgevl: error: --ray needs Ray: pip install 'edgevl[scale]'"]
    assert not (tmp_path / "o").exists()


# -- the commit-log reader: validation, duplicates, odd files, full disks, undecodable names ---------------


def write_log(path: Path, lines: list[str | bytes]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"".join((ln if isinstance(ln, bytes) else ln.encode()) + b"\n" for ln in lines))


@pytest.mark.parametrize("dup", [0, 1, 2])
def test_a_duplicated_line_never_loses_or_doubles_a_row(tmp_path: Path, dup: int) -> None:
    """The same log with one of its lines duplicated (at once, or at the end) reads to the same
    photos, the first copy winning, every time; the tables hold each photo's rows exactly once."""
    recs = [ok_record("/p/a.jpg", [True, False]), error_record("/p/b.jpg", "x"),
            ok_record("/p/c.jpg", [True])]
    lines = [json.dumps(r) for r in recs]
    for where in (dup + 1, len(lines)):
        doubled = [*lines[:where], lines[dup], *lines[where:]]
        log = tmp_path / f"{where}" / "photos.jsonl"
        write_log(log, doubled)
        for _ in range(3):  # deterministic: the same answer on every read
            report = LogReport()
            got = list(read_log(log, report))
            assert [r["photo"] for r in got] == ["/p/a.jpg", "/p/b.jpg", "/p/c.jpg"]
            assert got == recs and report.duplicates == 1 and report.damaged == []
        store = ResultStore(log.parent)
        done, counts = store.open({"catalogue_sha256": "abc"})
        assert done == {"/p/a.jpg", "/p/b.jpg", "/p/c.jpg"} and counts.photos == 3 and counts.spines == 3
        tables = store.write_tables(parquet=False)
        store.close()
        with open(tables["csv"], encoding="utf-8") as f:
            keys = [(r["photo"], r["spine"]) for r in csv.DictReader(f)]
        assert sorted(keys) == sorted(set(keys)) == [("/p/a.jpg", "0"), ("/p/a.jpg", "1"), ("/p/b.jpg", "-1"),
                                                    ("/p/c.jpg", "0")]


BAD_RECORDS: list[tuple[str, Any]] = [
    ("no status", {"photo": "/p/x.jpg", "spines": []}),
    ("list photo", {**ok_record("/p/x.jpg", []), "photo": ["/p/x.jpg"]}),
    ("spines null", {**ok_record("/p/x.jpg", [True]), "spines": None}),
    ("unknown status", {**ok_record("/p/x.jpg", [True]), "status": "done"}),
    ("spine without matched", {**ok_record("/p/x.jpg", []), "spines": [{"spine": 0}]}),
    ("score NaN-like string", {**ok_record("/p/x.jpg", [True]),
                               "spines": [{**ok_record("/p/x.jpg", [True])["spines"][0], "score": "0.9"}]}),
    ("bad photo_raw", {**ok_record("/p/x.jpg", []), "photo_raw": "zz"}),
    ("a list", [1, 2]),
    ("a number", 7),
]


@pytest.mark.parametrize("name,bad", BAD_RECORDS, ids=[n for n, _ in BAD_RECORDS])
def test_a_valid_json_line_that_is_no_record_does_not_count_and_is_reported(tmp_path: Path, name: str,
                                                                            bad: Any) -> None:
    assert record_problem(bad) is not None
    log = tmp_path / "photos.jsonl"
    write_log(log, [json.dumps(ok_record("/p/a.jpg", [True])), json.dumps(bad), "{not json", b"\xff\xfe",
                    json.dumps(ok_record("/p/c.jpg", []))])
    report = LogReport()
    assert [r["photo"] for r in read_log(log, report)] == ["/p/a.jpg", "/p/c.jpg"]
    assert [n for n, _ in report.damaged] == [2, 3, 4]
    note = report.summary(log)
    assert note is not None and "3 line(s)" in note and "line 2" in note
    store = ResultStore(tmp_path)
    done, _ = store.open({"catalogue_sha256": "abc"})
    store.close()
    assert "/p/x.jpg" not in done  # that photo is done again
    # a valid record of it appended later counts (the damaged line stays, harmless)
    with log.open("ab") as f:
        f.write(json.dumps(ok_record("/p/x.jpg", [False])).encode() + b"\n")
    assert [r["photo"] for r in read_log(log)] == ["/p/a.jpg", "/p/c.jpg", "/p/x.jpg"]


def test_many_damaged_lines_are_counted_and_a_few_kept(tmp_path: Path) -> None:
    log = tmp_path / "photos.jsonl"
    write_log(log, [*(["{}"] * 500), json.dumps(error_record("/b", "e"))])
    report = LogReport()
    assert [r["photo"] for r in read_log(log, report)] == ["/b"]
    assert report.n_damaged == 500 and len(report.damaged) == report.keep
    assert (report.summary(log) or "").count("500 line(s)") == 1


def test_temporaries_of_a_killed_table_write_are_removed_on_open(tmp_path: Path) -> None:
    stale = [tmp_path / n for n in (".results.csv.abc123.tmp", ".results.parquet.tmp", ".run.json.x.tmp")]
    for p in stale:
        p.write_text("half")
    keep = tmp_path / ".notes.tmp"
    keep.write_text("not ours")
    store = ResultStore(tmp_path)
    store.open({"catalogue_sha256": "abc"})
    store.close()
    assert not any(p.exists() for p in stale) and keep.exists()


def test_an_over_long_line_is_damage_not_a_memory_blow_up(tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    from edgevl.library import store as store_mod

    monkeypatch.setattr(store_mod, "MAX_LINE", 1000)
    log = tmp_path / "photos.jsonl"
    write_log(log, ['{"photo": "' + "x" * 3000 + '"}', json.dumps(error_record("/b", "e"))])
    report = LogReport()
    assert [r["photo"] for r in read_log(log, report)] == ["/b"] and report.damaged[0][0] == 1


def test_photo_names_that_are_not_utf8_round_trip(tmp_path: Path) -> None:
    name = os.fsdecode(b"/p/estanter\xeda.jpg")  # Latin-1 bytes: a surrogate escape in Python
    store = ResultStore(tmp_path)
    store.open({"catalogue_sha256": "abc"})
    store.append(error_record(name, f"ImageError: {name}: not a readable image"))
    store.append(ok_record(name + "2", [True]))
    tables = store.write_tables()
    store.close()
    raw = (tmp_path / "photos.jsonl").read_bytes()
    raw.decode("utf-8")  # the log is UTF-8 throughout
    recs = list(read_log(tmp_path / "photos.jsonl"))
    assert [record_key(r) for r in recs] == [name, name + "2"]
    assert recs[0]["photo"] == "/p/estanter\\xeda.jpg"
    assert recs[0]["photo_raw"] == b"/p/estanter\xeda.jpg".hex()
    store = ResultStore(tmp_path)
    done, _ = store.open({"catalogue_sha256": "abc"})
    store.close()
    assert done == {name, name + "2"}  # resuming knows the exact names again
    with open(tables["csv"], encoding="utf-8") as f:
        assert next(r["photo"] for r in csv.DictReader(f)) == "/p/estanter\\xeda.jpg"


@pytest.mark.parametrize("kind", ["symlink", "directory", "hardlink", "fifo"])
def test_a_log_that_is_no_plain_file_is_one_clear_error_and_nothing_is_written(tmp_path: Path,
                                                                               kind: str) -> None:
    out = tmp_path / "out"
    out.mkdir()
    victim = tmp_path / "victim.txt"
    victim.write_text("precious\n")
    log = out / "photos.jsonl"
    if kind == "symlink":
        log.symlink_to(victim)
    elif kind == "directory":
        log.mkdir()
    elif kind == "hardlink":
        os.link(victim, log)
    else:
        os.mkfifo(log)
    with pytest.raises(InputError, match=r"photos\.jsonl: the commit log is"):
        ResultStore(out).open({"catalogue_sha256": "abc"})
    assert victim.read_text() == "precious\n"
    with pytest.raises(InputError, match="commit log"):
        list(read_log(log))


@pytest.mark.parametrize("content", [b"not json", b"[1,2]", b"", b"{\"a\": 1, \"a\": 2}", b"\"text\""])
def test_a_damaged_run_json_is_refused_when_results_exist_and_rewritten_when_none(tmp_path: Path,
                                                                                 content: bytes) -> None:
    empty, full = tmp_path / "empty", tmp_path / "full"
    for d in (empty, full):
        d.mkdir()
        (d / "run.json").write_bytes(content)
    write_log(full / "photos.jsonl", [json.dumps(ok_record("/p/a.jpg", [True]))])
    with pytest.raises(InputError, match=r"run\.json.*are unknown"):
        ResultStore(full).open({"catalogue_sha256": "abc"})
    assert (full / "run.json").read_bytes() == content  # left for the user to restore
    store = ResultStore(empty)
    assert store.open({"catalogue_sha256": "abc"})[0] == set()
    store.close()
    assert json.loads((empty / "run.json").read_text()) == {"catalogue_sha256": "abc"}


def test_the_catalogue_is_compared_by_digest_not_by_path(tmp_path: Path) -> None:
    s = ResultStore(tmp_path)
    s.open({"catalogue_sha256": "abc", "catalogue": "/a/cat.csv", "ocr_model": "m"})
    s.close()
    s = ResultStore(tmp_path)
    s.open({"catalogue_sha256": "abc", "catalogue": "cat.csv", "ocr_model": "m"})  # another path: fine
    s.close()
    with pytest.raises(InputError, match="ocr_model"):
        ResultStore(tmp_path).open({"catalogue_sha256": "abc", "catalogue": "/a/cat.csv", "ocr_model": "n"})


@pytest.mark.parametrize("err", [errno.ENOSPC, errno.EFBIG, errno.EDQUOT])
def test_a_full_disk_during_a_commit_cuts_the_torn_line_and_is_one_error(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, err: int) -> None:
    store = ResultStore(tmp_path)
    store.open({"catalogue_sha256": "abc"})
    store.append(ok_record("/p/a.jpg", [True]))
    committed = (tmp_path / "photos.jsonl").read_bytes()
    real_write = os.write

    def half_then_fail(fd: int, data: Any) -> int:  # the disk takes 10 bytes, then is full
        if len(data) > 10:
            return real_write(fd, bytes(data[:10]))
        raise OSError(err, os.strerror(err))

    monkeypatch.setattr(os, "write", half_then_fail)
    with pytest.raises(InputError, match=r"cannot commit a photo .*1 photos committed by this run are kept"):
        store.append(ok_record("/p/b.jpg", [True, True]))
    monkeypatch.setattr(os, "write", real_write)
    store.close()
    assert (tmp_path / "photos.jsonl").read_bytes() == committed  # no torn line left behind
    store = ResultStore(tmp_path)
    assert store.open({"catalogue_sha256": "abc"})[0] == {"/p/a.jpg"}
    store.close()


def test_a_file_size_limit_during_commits_and_tables_is_one_error(tmp_path: Path) -> None:
    """A real RLIMIT_FSIZE in a child process (SIGXFSZ ignored, as `edgevl` does): commits stop
    with an InputError, the log holds only whole records, the next open resumes from them."""
    code = f"""
import json, os, resource, signal, sys
sys.path.insert(0, {str(Path(__file__).parent)!r})
from test_library_store import ok_record
from edgevl.errors import InputError
from edgevl.library.store import ResultStore
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
store = ResultStore({str(tmp_path)!r})
store.open({{"catalogue_sha256": "abc"}})
resource.setrlimit(resource.RLIMIT_FSIZE, (3000, 3000))
n = 0
try:
    for i in range(100):
        store.append(ok_record(f"/p/{{i}}.jpg", [True, False, True]))
        n += 1
except InputError as e:
    print(n, str(e))
"""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    n, msg = proc.stdout.split(" ", 1)
    assert 0 < int(n) < 100 and "cannot commit a photo (File too large)" in msg
    log = tmp_path / "photos.jsonl"
    assert log.read_bytes().endswith(b"\n")
    assert [r["photo"] for r in read_log(log)] == [f"/p/{i}.jpg" for i in range(int(n))]
