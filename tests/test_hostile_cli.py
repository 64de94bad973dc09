"""Issue 24's hostile and mistaken CLI cases (outputs, bounded readers, option bounds, partial batches).

One table: each row is (id, argv, exit code, pattern of the one ``edgevl: error:`` line or None for a
success, pattern stdout must match or None). Every row asserts: the exit code, exactly one stderr
line starting ``edgevl: error:`` (none for a success), no traceback, and that every file present
before the run (the inputs: photos, catalogue, segments, calibration, bundles, result files) has the
same bytes and modification time afterwards. Placeholders: ``{d}`` the shared folder of input
files, ``{te}`` a tiny text-embedding bundle, ``{clip}`` a tiny CLIP bundle.

The OCR stage is replaced by a fake that reads every catalogue title on its own spine (the real
models are tested in test_ocr_pipeline.py): these cases are about what the CLI does around it.
Cases that could hang (FIFOs) or need a real stdout on /dev/full run in a subprocess with a timeout.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from tiny_encoders import make_clip_bundle, make_text_embedding_bundle, solid_image

from edgevl.cli import main
from edgevl.tasks.ocr import OcrResult, Reading, TextLine, Timings

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
EVIL_TITLE = "=HYPERLINK(\"http://x\",\"y\")"
ESC_TITLE = "Red \x1b[31mAlert\x1b[0m"
TITLES = ("Moby Dick", "Hamlet", EVIL_TITLE, ESC_TITLE)


class FakeOcr:
    """Stands in for OcrPipeline: one vertical line per catalogue title, spaced across the photo."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        pass

    def __call__(self, image: np.ndarray) -> OcrResult:
        h, w = image.shape[:2]
        step = w / (len(TITLES) + 1)
        lines = []
        for i, t in enumerate(TITLES):
            x = step * (i + 0.6)
            quad = ((x, 5.0), (x + step * 0.8, 5.0), (x + step * 0.8, h - 5.0), (x, h - 5.0))
            lines.append(TextLine(quad, t, 0.99, vertical=True))
        return OcrResult(tuple(lines), Timings())

    def read_crops(self, images: list[np.ndarray]) -> list[Reading]:
        return [Reading("word", 0.9) for _ in images]


@pytest.fixture(autouse=True)
def fake_ocr(monkeypatch: pytest.MonkeyPatch, files: dict[str, str]) -> None:
    import edgevl.cli.ocr as cli_ocr
    import edgevl.tasks.ocr as tasks_ocr

    monkeypatch.setattr(cli_ocr, "OcrPipeline", FakeOcr)
    monkeypatch.setattr(cli_ocr, "TextDetector", FakeOcr)
    monkeypatch.setattr(tasks_ocr, "OcrPipeline", FakeOcr)  # ShelfMatcher imports it from here
    monkeypatch.setenv("EDGEVL_HOME", str(Path(files["d"]) / "home"))


def _run_json(d: Path, te: str) -> Path:
    out = d / "run.json"
    assert main(["bench", te, "--iters", "2", "--warmup", "0", "--out", str(out)]) == 0
    return out


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    d = tmp_path_factory.mktemp("hostile")
    te = make_text_embedding_bundle(d / "te")
    clip = make_clip_bundle(d / "clip")
    shutil.copy(EXAMPLES / "shelf.png", d / "shelf.png")
    (d / "bad.png").write_bytes(b"\x89PNG\r\n\x1a\nnot a picture")
    cv2.imwrite(str(d / "red.png"), solid_image("red"))
    with (d / "cat.csv").open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["title", "author"])
        for i, t in enumerate(TITLES):
            w.writerow([t, f"Author {i}"])
    (d / "seg.csv").write_text("image_name,mask_id,ocr,title,author\na.jpg,1,MOBY DICK,Moby Dick,Author 0\n"
                               "a.jpg,2,HAMLET,Hamlet,Author 1\n", encoding="utf-8")
    (d / "adir.png").mkdir()
    (d / "afile.txt").write_text("a file, not a folder\n")
    os.mkfifo(d / "fifo.json")
    os.mkfifo(d / "fifo.txt")
    deep = "[" * 5000 + "]" * 5000
    (d / "deep.json").write_text('{"k": 10, "x": ' + deep + "}")
    shipped = json.loads((Path(__file__).resolve().parents[1] / "edgevl" / "data"
                          / "books_calibration.json").read_text())

    def cal(name: str, **change: Any) -> None:
        doc = {**shipped, **change}
        (d / name).write_text(json.dumps(doc))

    cal("cal-k-neg.json", k=-1)
    cal("cal-k-zero.json", k=0)
    cal("cal-k-huge.json", k=10**9)
    cal("cal-k-frac.json", k=2.5)
    cal("cal-weight-str-nan.json", weights={**shipped["weights"], "cos": "nan"})
    inf = json.dumps(shipped).replace('"scale": ', '"scale": 1e400, "x": ', 1)  # JSON reads 1e400 as inf
    (d / "cal-scale-inf.json").write_text(inf)
    (d / "cal-nan.json").write_text(json.dumps(shipped).replace('"bias": ', '"bias": NaN, "x": ', 1))
    (d / "cal-dup.json").write_text(json.dumps(shipped)[:-1] + ', "k": 10}')
    (d / "labels.txt").write_text("red\nblue\n")
    (d / "desc-deep.json").write_text('{"red": ' + "[" * 200 + "]" * 200 + "}")
    (d / "ckpt").mkdir()
    (d / "ckpt" / "config.json").write_text('{"model_type": "bert", "x": ' + deep + "}")
    _run_json(d, str(te.path))
    return {"d": str(d), "te": str(te.path), "clip": str(clip.path)}


_ROOT = os.geteuid() == 0 if hasattr(os, "geteuid") else False

# id, argv, exit code, pattern of the one error line (None: success, no stderr), stdout pattern or None
CASES: list[tuple[str, list[str], int, str | None, str | None]] = [
    # -- outputs never overwrite an input, never go to a folder or device (checked before any work)
    ("ocr-draw-is-the-photo", ["ocr", "{d}/shelf.png", "--draw", "{d}/shelf.png"], 2,
     r"shelf\.png: the --draw picture is also an input", None),
    ("ocr-draw-is-a-folder", ["ocr", "{d}/shelf.png", "--draw", "{d}/adir.png"], 2,
     r"adir\.png: the --draw picture must be a regular file path, this is a directory", None),
    ("ocr-draw-is-a-fifo", ["ocr", "{d}/shelf.png", "--draw", "{d}/fifo.png"], 2,
     r"fifo\.png: the --draw picture must be a regular file path, this is a FIFO", None),
    ("ocr-draw-not-a-picture", ["ocr", "{d}/shelf.png", "--draw", "{d}/out.txt"], 2,
     r"out\.txt: --draw expects an image file name", None),
    ("ocr-draw-under-a-file", ["ocr", "{d}/shelf.png", "--draw", "{d}/afile.txt/x.png"], 2,
     r"afile\.txt/x\.png: cannot use it as the --draw picture \(Not a directory\)", None),
    ("match-books-draw-is-the-photo", ["match-books", "{d}/shelf.png", "-c", "{d}/cat.csv",
                                       "--cache-dir", "{d}/cache", "--draw", "{d}/shelf.png"], 2,
     r"the --draw picture is also an input", None),
    ("match-books-csv-is-the-catalogue", ["match-books", "{d}/shelf.png", "-c", "{d}/cat.csv",
                                          "--cache-dir", "{d}/cache", "--csv", "{d}/cat.csv"], 2,
     r"cat\.csv: the --csv file is also an input", None),
    ("match-books-csv-is-the-photo", ["match-books", "{d}/shelf.png", "-c", "{d}/cat.csv",
                                      "--cache-dir", "{d}/cache", "--csv", "{d}/shelf.png"], 2,
     r"the --csv file is also an input", None),
    ("match-books-csv-is-a-folder", ["match-books", "{d}/shelf.png", "-c", "{d}/cat.csv",
                                     "--cache-dir", "{d}/cache", "--csv", "{d}/adir.png"], 2,
     r"the --csv file must be a regular file path, this is a directory", None),
    ("match-books-csv-is-a-device", ["match-books", "{d}/shelf.png", "-c", "{d}/cat.csv",
                                     "--cache-dir", "{d}/cache", "--csv", "/dev/null"], 2,
     r"the --csv file must be a regular file path, this is a device", None),
    ("match-books-csv-and-draw-same", ["match-books", "{d}/shelf.png", "-c", "{d}/cat.csv", "--cache-dir",
                                       "{d}/cache", "--csv", "{d}/o.png", "--draw", "{d}/o.png"], 2,
     r"o\.png: used for both the --csv file and the --draw picture", None),
    ("index-calibration-out-is-the-catalogue", ["books", "index", "-c", "{d}/cat.csv", "--cache-dir",
                                                "{d}/cache", "--calibrate", "{d}/seg.csv",
                                                "--calibration-out", "{d}/cat.csv"], 2,
     r"the --calibration-out file is also an input", None),
    ("index-calibration-out-is-the-segments", ["books", "index", "-c", "{d}/cat.csv", "--cache-dir",
                                               "{d}/cache", "--calibrate", "{d}/seg.csv",
                                               "--calibration-out", "{d}/seg.csv"], 2,
     r"seg\.csv: the --calibration-out file is also an input", None),
    ("eval-predictions-out-is-the-segments", ["books", "eval", "-c", "{d}/cat.csv", "-s", "{d}/seg.csv",
                                              "--cache-dir", "{d}/cache", "--predictions-out", "{d}/seg.csv"],
     2, r"seg\.csv: the --predictions-out file is also an input", None),
    ("eval-predictions-out-is-the-calibration", ["books", "eval", "-c", "{d}/cat.csv", "-s", "{d}/seg.csv",
                                                 "--calibration", "{d}/cal-k-neg.json",
                                                 "--predictions-out", "{d}/cal-k-neg.json"], 2,
     r"the --predictions-out file is also an input", None),
    ("eval-predictions-out-is-a-folder", ["books", "eval", "-c", "{d}/cat.csv", "-s", "{d}/seg.csv",
                                          "--cache-dir", "{d}/cache", "-o", "{d}/adir.png"], 2,
     r"must be a regular file path, this is a directory", None),
    ("cache-dir-is-a-file", ["books", "index", "-c", "{d}/cat.csv", "--cache-dir", "{d}/afile.txt"], 2,
     r"afile\.txt: the --cache-dir must be a folder, this is a file", None),
    ("match-books-cache-dir-is-a-file", ["match-books", "{d}/shelf.png", "-c", "{d}/cat.csv",
                                         "--cache-dir", "{d}/afile.txt"], 2,
     r"the --cache-dir must be a folder", None),
    ("bench-out-is-the-manifest", ["bench", "{te}", "--iters", "1", "--out", "{te}/manifest.json"], 2,
     r"manifest\.json: the --out result file is also an input", None),
    ("bench-md-is-the-model", ["bench", "{te}", "--iters", "1", "--md", "{te}/text.onnx"], 2,
     r"text\.onnx: the --md file is also an input", None),
    ("bench-plot-is-a-folder", ["bench", "{te}", "--iters", "1", "--plot", "{d}/adir.png"], 2,
     r"the --plot picture must be a regular file path, this is a directory", None),
    ("bench-out-is-a-device", ["bench", "{te}", "--iters", "1", "--out", "/dev/full"], 2,
     r"/dev/full: the --out result file must be a regular file path, this is a device", None),
    ("bench-compare-md-is-an-input", ["bench", "compare", "{d}/run.json", "{d}/run.json",
                                      "--md", "{d}/run.json"], 2,
     r"run\.json: the --md file is also an input", None),
    ("bench-old-json-path", ["bench", "{te}", "--iters", "1", "--json", "{d}/r.json"], 2,
     r"--json is a flag now .* --out .*r\.json", None),
    # -- bounded readers: deep JSON, absurd values, FIFOs and devices refused before anything hangs
    ("calibration-deep", ["books", "eval", "-c", "{d}/cat.csv", "-s", "{d}/seg.csv", "--cache-dir",
                          "{d}/cache", "--calibration", "{d}/deep.json"], 2, r"deep\.json: .*nested", None),
    ("calibration-k-negative", ["books", "eval", "-c", "{d}/cat.csv", "-s", "{d}/seg.csv", "--cache-dir",
                                "{d}/cache", "--calibration", "{d}/cal-k-neg.json"], 2,
     r"k \(candidates per segment\) must be an integer in 1\.\.200, got -1", None),
    ("calibration-k-zero", ["books", "eval", "-c", "{d}/cat.csv", "-s", "{d}/seg.csv", "--cache-dir",
                            "{d}/cache", "--calibration", "{d}/cal-k-zero.json"], 2, r"got 0$", None),
    ("calibration-k-huge", ["books", "eval", "-c", "{d}/cat.csv", "-s", "{d}/seg.csv", "--cache-dir",
                            "{d}/cache", "--calibration", "{d}/cal-k-huge.json"], 2, r"got 1000000000", None),
    ("calibration-k-fraction", ["books", "eval", "-c", "{d}/cat.csv", "-s", "{d}/seg.csv", "--cache-dir",
                                "{d}/cache", "--calibration", "{d}/cal-k-frac.json"], 2,
     r"k must be an integer, got 2\.5", None),
    ("calibration-nan-literal", ["books", "eval", "-c", "{d}/cat.csv", "-s", "{d}/seg.csv", "--cache-dir",
                                 "{d}/cache", "--calibration", "{d}/cal-nan.json"], 2,
     r"NaN is not a number JSON allows", None),
    ("calibration-nan-string-weight", ["books", "eval", "-c", "{d}/cat.csv", "-s", "{d}/seg.csv",
                                       "--cache-dir", "{d}/cache", "--calibration",
                                       "{d}/cal-weight-str-nan.json"], 2,
     r"weight 'cos' must be a finite number", None),
    ("calibration-scale-infinite", ["books", "eval", "-c", "{d}/cat.csv", "-s", "{d}/seg.csv", "--cache-dir",
                                    "{d}/cache", "--calibration", "{d}/cal-scale-inf.json"], 2,
     r"scale must be a finite number", None),
    ("calibration-duplicate-key", ["books", "eval", "-c", "{d}/cat.csv", "-s", "{d}/seg.csv", "--cache-dir",
                                   "{d}/cache", "--calibration", "{d}/cal-dup.json"], 2,
     r"duplicate key 'k'", None),
    ("calibration-dev-zero", ["books", "eval", "-c", "{d}/cat.csv", "-s", "{d}/seg.csv", "--cache-dir",
                              "{d}/cache", "--calibration", "/dev/zero"], 2,
     r"/dev/zero: the matcher calibration must be a regular file, this is a device", None),
    ("match-books-calibration-k-huge", ["match-books", "{d}/shelf.png", "-c", "{d}/cat.csv", "--cache-dir",
                                        "{d}/cache", "--calibration", "{d}/cal-k-huge.json"], 2,
     r"got 1000000000", None),
    ("classify-labels-dev-zero", ["classify", "{d}/red.png", "-b", "{clip}", "--labels-file", "/dev/zero"], 2,
     r"/dev/zero: the labels file must be a regular file, this is a device", None),
    ("classify-templates-dev-zero", ["classify", "{d}/red.png", "-b", "{clip}", "--labels", "red,blue",
                                     "--templates", "/dev/zero"], 2,
     r"the template file must be a regular file", None),
    ("classify-labels-is-a-folder", ["classify", "{d}/red.png", "-b", "{clip}", "--labels-file",
                                     "{d}/adir.png"], 2, r"the labels file must be a regular file", None),
    ("classify-descriptions-deep", ["classify", "{d}/red.png", "-b", "{clip}", "--descriptions",
                                    "{d}/desc-deep.json"], 2, r"desc-deep\.json: .*nested", None),
    ("bench-compare-deep", ["bench", "compare", "{d}/deep.json", "{d}/run.json"], 2,
     r"deep\.json: .*nested", None),
    ("bench-compare-dev-zero", ["bench", "compare", "/dev/zero", "{d}/run.json"], 2,
     r"/dev/zero: the result file must be a regular file", None),
    ("export-config-deep", ["export", "-c", "{d}/ckpt", "-o", "{d}/exported"], 2,
     r"config\.json: .*nested", None),
    # -- option bounds: one cap for --threads, counts bounded, NaN/inf refused everywhere
    ("ocr-threads-5000", ["ocr", "{d}/shelf.png", "--threads", "5000"], 2, r"--threads.*<= 1024, got 5000",
     None),
    ("bench-threads-5000", ["bench", "{te}", "--threads", "5000"], 2, r"--threads.*<= 1024, got 5000", None),
    ("bench-warmup-huge", ["bench", "{te}", "--warmup", "1000000000"], 2, r"--warmup.*<= 100000", None),
    ("bench-iters-huge", ["bench", "{te}", "--iters", "1000000000000"], 2, r"--iters.*<= 1e\+07", None),
    ("bench-repeats-huge", ["bench", "{te}", "--repeats", "1000000000"], 2, r"--repeats.*<= 1000", None),
    ("bench-max-seconds-nan", ["bench", "{te}", "--max-seconds", "nan"], 2, r"--max-seconds.*got nan", None),
    ("bench-max-seconds-inf", ["bench", "{te}", "--max-seconds", "inf"], 2, r"--max-seconds.*got inf", None),
    ("bench-dim-not-an-input", ["bench", "{te}", "--iters", "1", "--dim", "height=1000000000000"], 2,
     r"--dim height: no input of the benchmarked models has such a dimension", None),
    ("bench-dim-out-of-range", ["bench", "{te}", "--iters", "1", "--dim", "seq=1000000000000"], 2,
     r"seq 1000000000000 is outside the bundle's range 1\.\.8", None),
    ("classify-top-k-zero", ["classify", "{d}/red.png", "-b", "{clip}", "--labels", "red", "-k", "0"], 2,
     r"--top-k.*got 0", None),
    ("quantize-min-cosine-nan", ["quantize", "{te}", "-c", "{d}/labels.txt", "-o", "{d}/q",
                                 "--min-cosine", "nan"], 2, r"--min-cosine.*got nan", None),
    ("quantize-smooth-alpha-inf", ["quantize", "{te}", "-c", "{d}/labels.txt", "-o", "{d}/q",
                                   "--smooth-alpha", "inf"], 2, r"--smooth-alpha.*got inf", None),
    ("engine-workspace-zero", ["engine", "build", "{te}", "--workspace-mb", "0"], 2, r"--workspace-mb.*got 0",
     None),
    # -- partial batches: the good inputs are read and printed, each bad one is one line, exit 2
    ("ocr-partial-batch", ["ocr", "{d}/shelf.png", "{d}/bad.png", "{d}/shelf.png"], 2,
     r"bad\.png: not a readable PNG", r"(?s)== .*shelf\.png\n.*Moby Dick.*== .*shelf\.png\n.*Hamlet"),
    ("ocr-crops-partial-batch", ["ocr", "--crops", "{d}/red.png", "{d}/bad.png"], 2,
     r"bad\.png: not a readable PNG", r"red\.png\tword\t0\.900"),
    ("match-books-partial-batch", ["match-books", "{d}/bad.png", "{d}/shelf.png", "-c", "{d}/cat.csv",
                                   "--cache-dir", "{d}/cache"], 2, r"bad\.png: not a readable PNG",
     r"Hamlet"),
    ("classify-partial-batch", ["classify", "{d}/red.png", "{d}/bad.png", "-b", "{clip}", "--labels",
                                "red,blue", "-k", "1"], 2, r"bad\.png: not a readable PNG",
     r"red\.png: red 1\.000"),
    ("embed-image-partial-batch", ["embed", "{clip}", "-i", "{d}/bad.png", "-i", "{d}/red.png"], 2,
     r"bad\.png: not a readable PNG", r"^.*red\.png\t1 -1 -1\n$"),
    # -- successes that used to misbehave
    ("version", ["--version"], 0, None, r"^edgevl \d+\.\d+\.\d+\n$"),
    ("match-books-escapes-the-terminal", ["match-books", "{d}/shelf.png", "-c", "{d}/cat.csv",
                                          "--cache-dir", "{d}/cache"], 0, None, r"\\x1b\[31mAlert"),
]


def _snapshot(root: Path) -> dict[str, tuple[str, int]]:
    out = {}
    for dirpath, _, names in os.walk(root):
        for n in names:
            p = Path(dirpath) / n
            if p.is_fifo() or "cache" in p.parts or "home" in p.parts:
                continue
            st = p.stat()
            out[str(p)] = (hashlib.sha256(p.read_bytes()).hexdigest(), st.st_mtime_ns)
    return out


def _check(code: int, want_code: int, out: str, err: str, err_pattern: str | None,
           out_pattern: str | None) -> None:
    assert "Traceback" not in err and "Traceback" not in out, err
    assert "\x1b" not in out and "\x1b" not in err  # no title, path or message drives the terminal
    lines = err.splitlines()
    assert code == want_code, (code, err)
    if err_pattern is None:
        assert not [ln for ln in lines if ln.startswith("edgevl: error:")], lines
    else:
        assert len(lines) == 1, lines
        assert lines[0].startswith("edgevl: error: "), lines
        assert re.search(err_pattern, lines[0]), lines[0]
    if out_pattern is not None:
        assert re.search(out_pattern, out, re.M), out


@pytest.mark.parametrize(("argv", "code", "err_pattern", "out_pattern"), [c[1:] for c in CASES],
                         ids=[c[0] for c in CASES])
def test_hostile_case(argv: list[str], code: int, err_pattern: str | None, out_pattern: str | None,
                      files: dict[str, str], capfd: pytest.CaptureFixture[str]) -> None:
    d = Path(files["d"])
    (d / "fifo.png").unlink(missing_ok=True)
    os.mkfifo(d / "fifo.png")
    before = _snapshot(d)
    capfd.readouterr()
    rc = main([a.format(**files) for a in argv])
    cap = capfd.readouterr()
    _check(rc, code, cap.out, cap.err, err_pattern, out_pattern)
    assert _snapshot(d) == {k: v for k, v in before.items() if Path(k).exists()} and all(
        Path(k).exists() for k in before), "an input changed"


# -- cases that could hang, or need a real file descriptor: a subprocess with a timeout

SUBPROCESS_CASES: list[tuple[str, list[str], str | None, int, str]] = [
    ("calibration-fifo", ["books", "eval", "-c", "{d}/cat.csv", "-s", "{d}/seg.csv", "--cache-dir",
                          "{d}/cache", "--calibration", "{d}/fifo.json"], None, 2,
     r"fifo\.json: the matcher calibration must be a regular file, this is a FIFO"),
    ("classify-labels-fifo", ["classify", "{d}/red.png", "-b", "{clip}", "--labels-file", "{d}/fifo.txt"],
     None, 2, r"fifo\.txt: the labels file must be a regular file, this is a FIFO"),
    ("bench-compare-fifo", ["bench", "compare", "{d}/fifo.json", "{d}/run.json"], None, 2,
     r"fifo\.json: the result file must be a regular file, this is a FIFO"),
    ("embed-stdout-dev-full", ["embed", "{te}", "--text", "red"], "/dev/full", 2,
     r"cannot write the output \(No space left on device\)"),
    ("info-stdout-dev-full", ["info", "{te}"], "/dev/full", 2, r"cannot write the output"),
]


@pytest.mark.parametrize(("argv", "stdout", "code", "pattern"), [c[1:] for c in SUBPROCESS_CASES],
                         ids=[c[0] for c in SUBPROCESS_CASES])
def test_hostile_case_in_a_subprocess(argv: list[str], stdout: str | None, code: int, pattern: str,
                                      files: dict[str, str]) -> None:
    d = Path(files["d"])
    before = _snapshot(d)
    env = {**os.environ, "EDGEVL_HOME": str(d / "home")}
    args = [sys.executable, "-m", "edgevl", *(a.format(**files) for a in argv)]
    if stdout is None:
        p = subprocess.run(args, capture_output=True, text=True, timeout=60, env=env)
        out = p.stdout
    else:
        with open(stdout, "w") as sink:
            p = subprocess.run(args, stdout=sink, stderr=subprocess.PIPE, text=True, timeout=60, env=env)
        out = ""
    _check(p.returncode, code, out, p.stderr, pattern, None)
    assert _snapshot(d) == before


def test_ocr_on_a_full_stdout_is_one_line(files: dict[str, str], capfd: pytest.CaptureFixture[str],
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """`edgevl ocr PHOTO > /dev/full`: the OCR ran, its output cannot be written: one line, exit 2."""
    with open("/dev/full", "w") as full:
        monkeypatch.setattr(sys, "stdout", full)
        rc = main(["ocr", f"{files['d']}/shelf.png"])
        monkeypatch.undo()
    err = capfd.readouterr().err.splitlines()
    assert rc == 2 and err == ["edgevl: error: cannot write the output (No space left on device)"]


@pytest.mark.skipif(_ROOT, reason="root writes into read-only folders")
def test_output_into_a_read_only_folder(files: dict[str, str], tmp_path: Path,
                                        capfd: pytest.CaptureFixture[str]) -> None:
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        rc = main(["ocr", f"{files['d']}/shelf.png", "--draw", str(ro / "x.png")])
        cap = capfd.readouterr()
        _check(rc, 2, cap.out, cap.err, r"x\.png: the --draw picture's folder .* is not writable", None)
    finally:
        ro.chmod(0o755)


def test_csv_outputs_are_escaped_for_spreadsheets_and_written_whole(
        files: dict[str, str], tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    d = Path(files["d"])
    out = tmp_path / "sub" / "spines.csv"  # a missing folder is made
    assert main(["match-books", str(d / "shelf.png"), "-c", str(d / "cat.csv"), "--cache-dir",
                 str(d / "cache"), "--csv", str(out), "--draw", str(tmp_path / "d.jpg")]) == 0
    rows = list(csv.DictReader(out.open(encoding="utf-8")))
    titles = {r["title"] for r in rows}
    assert "'" + EVIL_TITLE in titles and EVIL_TITLE not in titles  # a formula becomes text
    assert "Moby Dick" in titles  # ordinary titles as they are
    assert cv2.imread(str(tmp_path / "d.jpg")) is not None
    assert not [p for p in out.parent.iterdir() if p.name.endswith(".tmp")]  # no temporary left
    pred = tmp_path / "pred.csv"
    (tmp_path / "seg.csv").write_text("image_name,mask_id,ocr\n=cmd|' /C calc'!A0,1,HYPERLINK\n"
                                      "a.jpg,2,MOBY DICK\n", encoding="utf-8")
    assert main(["books", "eval", "-c", str(d / "cat.csv"), "-s", str(tmp_path / "seg.csv"), "--cache-dir",
                 str(d / "cache"), "-o", str(pred)]) == 0
    cells = [r["image_name"] for r in csv.DictReader(pred.open(encoding="utf-8"))]
    assert cells == ["'=cmd|' /C calc'!A0", "a.jpg"]
    capfd.readouterr()


def test_flags_show_no_value_type_in_help(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["ocr", "--help"]) == 0
    text = capsys.readouterr().out
    json_line = next(ln for ln in text.splitlines() if "--json" in ln)
    crops_line = next(ln for ln in text.splitlines() if "--crops" in ln)
    assert "<bool>" not in json_line and "<bool>" not in crops_line
    assert "<int>" in next(ln for ln in text.splitlines() if "--threads" in ln)  # valued options keep it


def test_first_ocr_in_a_fresh_home_says_it_builds_the_bundles(
        files: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capfd: pytest.CaptureFixture[str]) -> None:
    import edgevl.models.ppocr as ppocr

    built: list[str] = []
    monkeypatch.setattr(ppocr, "build_bundle", lambda base, m, role, pkg=None: built.append(role))
    monkeypatch.setattr(ppocr, "_announced", set())
    monkeypatch.setattr(ppocr, "BUILD_NOTICE", lambda s: print(f"edgevl: {s}", file=sys.stderr))
    ppocr.ensure_bundles(tmp_path / "fresh")
    ppocr.ensure_bundle("det", root=tmp_path / "fresh")
    err = capfd.readouterr().err.splitlines()
    assert built == ["det", "cls", "rec", "det"]
    assert err == [f"edgevl: building the {ppocr.DEFAULT_MODEL} bundles once under {tmp_path / 'fresh'} "
                   "(about 10 s; later runs load them)"]  # once per process, not once per role
