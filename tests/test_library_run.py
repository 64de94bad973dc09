"""`library run` end to end on small photos: the local process pool, a real local Ray (one session for
the module) giving the same matches, and a run killed midway that resumes without lost or duplicated
rows. Photos are rendered shelves of known books (and, where the library data is present, downscaled
crops of the real shelf photos)."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
from conftest import LIBRARY_DIR
from test_books_shelf import BOOKS, render_spines

from edgevl.library import RunConfig, read_photo_list, run_library

pytestmark = pytest.mark.slow


def shelf_items(k: int) -> list[tuple[str, str, str]]:
    """Three of the known books, a different choice per k, as they are printed on spines."""
    books = [BOOKS[(k + j) % len(BOOKS)] for j in range(3)]
    return [(t, a.split(",")[1].strip() + " " + a.split(",")[0], g) for t, a, g in books]


def write_catalogue(path: Path, extra: Iterable[Sequence[str]] = ()) -> Path:
    """A catalogue CSV (title, author, tag) of the known books, then ``extra`` rows."""
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["title", "author", "tag"])
        w.writerows(BOOKS)
        w.writerows(extra)
    return path


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    pytest.importorskip("PIL")
    d = tmp_path_factory.mktemp("library")
    rng = np.random.default_rng(3)
    words = ["vida", "mar", "noche", "tiempo", "guerra", "amor", "ciudad", "casa", "libro", "luz", "agua"]
    others = [(" ".join(rng.choice(words, size=int(rng.integers(2, 5)))).capitalize(), f"Autor{i}, Nombre",
               f"N Au{i % 10}") for i in range(200)]
    cat = write_catalogue(d / "cat.csv", others)
    photos, expected = [], {}
    for k in range(4):
        p = d / f"shelf_{k}.png"
        cv2.imwrite(str(p), render_spines(shelf_items(k)))
        photos.append(p)
        expected[str(p)] = {t for t, _, _ in shelf_items(k)}
    bad = d / "truncated.jpg"
    bad.write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    real = []
    if (LIBRARY_DIR / "shelf_one.jpg").is_file():  # small copies of the real photos: crop + downscale
        for name in ("shelf_one", "shelf_two"):
            img = cv2.imread(str(LIBRARY_DIR / f"{name}.jpg"))
            h, w = img.shape[:2]
            crop = cv2.resize(img[h // 3: 2 * h // 3, : w // 2], None, fx=0.4, fy=0.4,
                              interpolation=cv2.INTER_AREA)
            p = d / f"{name}_crop.jpg"
            cv2.imwrite(str(p), crop)
            real.append(p)
    return {"dir": d, "catalogue": cat, "photos": photos, "bad": bad, "real": real, "expected": expected}


def rows_by_photo(out: Path) -> dict[str, list[tuple[str, str, str, str]]]:
    got: dict[str, list[tuple[str, str, str, str]]] = {}
    for r in csv.DictReader((out / "results.csv").open(encoding="utf-8")):
        got.setdefault(r["photo"], []).append((r["spine"], r["book_id"], r["status"], r["ocr"]))
    return got


def run(ws: dict[str, Any], out: Path, **kw: Any) -> Any:
    photos = read_photo_list([*ws["photos"], ws["bad"], *ws["real"]])
    cfg = RunConfig(catalogue=ws["catalogue"], out=out, cache_dir=ws["dir"] / "cache", threads=1, **kw)
    return run_library(photos, cfg)


@pytest.fixture(scope="module")
def local_result(workspace: dict[str, Any]) -> tuple[Any, Path]:
    out = workspace["dir"] / "local"
    return run(workspace, out, workers=2), out


def test_local_pool_matches_every_shelf_and_records_the_bad_photo(workspace: dict[str, Any],
                                                                  local_result: tuple[Any, Path]) -> None:
    summary, out = local_result
    n = len(workspace["photos"]) + 1 + len(workspace["real"])
    assert summary.processed == n and summary.skipped == 0 and summary.total.photos == n
    assert summary.total.failures == 1 and summary.failed_now == 1
    assert len(summary.peak_rss_mb) == 2  # two worker processes did the work
    rows = list(csv.DictReader((out / "results.csv").open(encoding="utf-8")))
    for photo, titles in workspace["expected"].items():
        found = {r["title"] for r in rows if r["photo"] == photo and r["status"] == "matched"}
        assert found == titles, photo
    bad = [r for r in rows if r["photo"] == str(workspace["bad"])]
    assert len(bad) == 1 and bad[0]["status"] == "error" and "not a readable image" in bad[0]["error"]
    assert summary.total.matched == sum(r["status"] == "matched" for r in rows)
    assert summary.total.spines == sum(r["status"] in ("matched", "rejected") for r in rows)
    # catalogue rows of the matched works: book_id points at the right catalogue line
    cat = list(csv.DictReader(workspace["catalogue"].open(encoding="utf-8")))
    for r in rows:
        if r["status"] == "matched":
            assert cat[int(r["book_id"])]["title"] == r["title"]
    if "parquet" in summary.tables:
        import pyarrow.parquet as pq

        assert pq.read_table(summary.tables["parquet"]).num_rows == len(rows)


@pytest.fixture(scope="module")
def ray_session() -> Iterator[Any]:
    ray = pytest.importorskip("ray")
    import logging

    ray.init(num_cpus=2, include_dashboard=False, logging_level=logging.WARNING, log_to_driver=False)
    yield ray
    ray.shutdown()


def test_ray_gives_the_same_matches_as_the_local_pool(
        workspace: dict[str, Any], local_result: tuple[Any, Path], ray_session: Any) -> None:
    out = workspace["dir"] / "ray"
    summary = run(workspace, out, ray=True, actors=2, num_cpus=1.0)
    assert summary.backend == "ray" and summary.processed == local_result[0].processed
    assert len(summary.peak_rss_mb) == 2  # both actors took photos
    assert summary.total == local_result[0].total
    assert rows_by_photo(out) == rows_by_photo(local_result[1])
    # actors reading the paths themselves (a shared file system) give the same rows
    out2 = workspace["dir"] / "ray-paths"
    run(workspace, out2, ray=True, actors=1, send_bytes=False)
    assert rows_by_photo(out2) == rows_by_photo(local_result[1])


def test_the_address_probe_accepts_a_real_ray(ray_session: Any) -> None:
    from edgevl.library.ray_runner import check_reachable

    check_reachable(ray_session._private.worker._global_node.gcs_address)  # a GCS answers as gRPC


def _log_photos(log: Path) -> list[str]:
    if not log.is_file():
        return []
    return [json.loads(ln)["photo"] for ln in log.read_bytes().split(b"\n") if ln.strip()]


def test_a_killed_run_resumes_with_only_the_remaining_photos(workspace: dict[str, Any],
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    d = workspace["dir"] / "resume"
    d.mkdir()
    photos = []
    for k in range(10):
        p = d / f"p{k}.png"
        img = render_spines(shelf_items(k))
        cv2.imwrite(str(p), img if k % 2 else cv2.resize(img, None, fx=0.9, fy=0.9))
        photos.append(str(p))
    lst = d / "photos.txt"
    lst.write_text("\n".join(photos) + "\n")
    out = d / "out"
    args = ["library", "run", "--from-list", str(lst), "-c", str(workspace["catalogue"]), "-o", str(out),
            "--cache-dir", str(workspace["dir"] / "cache"), "--workers", "1", "--threads", "1"]
    proc = subprocess.Popen([sys.executable, "-m", "edgevl", *args], start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    log = out / "photos.jsonl"
    try:
        deadline = time.monotonic() + 120
        while len(_log_photos(log)) < 2 and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # the driver and its worker process, no clean-up
        proc.wait()
    before = _log_photos(log)
    assert 2 <= len(before) < len(photos), f"not killed midway: {len(before)} photos done"
    assert not (out / "results.csv").exists()  # the tables are made at the end of a run
    from edgevl.cli import main

    assert main([*args, "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["skipped"] == len(before) and summary["processed"] == len(photos) - len(before)
    after = _log_photos(log)
    assert after[: len(before)] == before  # nothing rewritten
    assert sorted(after[len(before):]) == sorted(set(photos) - set(before))  # only the remaining ones
    assert Counter(after) == Counter(photos)  # each photo exactly once
    rows = list(csv.DictReader((out / "results.csv").open(encoding="utf-8")))
    keys = [(r["photo"], r["spine"]) for r in rows]
    assert len(keys) == len(set(keys))  # no duplicated row
    assert {r["photo"] for r in rows} == set(photos)  # no lost photo
    for k, p in enumerate(photos):
        assert {r["title"] for r in rows if r["photo"] == p and r["status"] == "matched"} == \
            {t for t, _, _ in shelf_items(k)}
    assert summary["total"]["photos"] == len(photos) and summary["total"]["spines"] == len(rows)
    # a third run has nothing left to do; the text summary says so
    assert main(args) == 0
    text = " ".join(capsys.readouterr().out.split())
    assert f"{len(photos)} photos, {len(rows)} spines" in text and f"{len(photos)} already done" in text
    assert _log_photos(log) == after
