"""Every hostile or mistaken CLI input of issue 11: exit code 2 and exactly one stderr line.

One table: (id, argv, expected exit code, pattern the single stderr line must match). stderr is
captured at the file-descriptor level (capfd), so a line printed by a C library (libpng, OpenCV's
logger) counts too. Placeholders in argv are filled from the ``paths`` fixture.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import re
import shutil
import struct
import sys
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from edgevl.cli import main

sys.path.insert(0, str(Path(__file__).resolve().parent))
from tiny_encoders import make_text_embedding_bundle

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


@pytest.fixture(scope="module")
def paths(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    d = tmp_path_factory.mktemp("cli")
    te = make_text_embedding_bundle(d)
    shelf = EXAMPLES / "shelf.png"
    data = shelf.read_bytes()
    (d / "trunc.png").write_bytes(data[:300])
    crc = bytearray(data)
    crc[100] ^= 0xFF
    (d / "badcrc.png").write_bytes(bytes(crc))
    # a valid PNG header declaring 100000 x 100000 pixels: refused before any decoding
    ihdr = struct.pack(">IIBBBBB", 100_000, 100_000, 8, 2, 0, 0, 0)
    (d / "huge.png").write_bytes(b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr) + _png_chunk(b"IDAT", b"")
                                 + _png_chunk(b"IEND", b""))
    os.mkfifo(d / "fifo.png")
    (d / "quote.csv").write_text('title,author\n"Moby Dick,Melville\nHamlet,Shakespeare\n', encoding="utf-8")
    (d / "dup.csv").write_text("title,author,title\nMoby Dick,Melville,Other\n", encoding="utf-8")
    (d / "cat.csv").write_text("title,author\nMoby Dick,Melville\nHamlet,Shakespeare\n", encoding="utf-8")
    (d / "seg.csv").write_text("image_name,mask_id,ocr,title,author\na.jpg,1,MOBY DICK,Moby Dick,Melville\n",
                               encoding="utf-8")
    (d / "cal.json").write_text(json.dumps({"w": [1.0], "b": "x", "stage2": [0, 1, 0], "reject": 0}))
    _bundle_variants(te.path, d)
    return {"te": str(te.path), "tmp": str(d), "shelf": str(shelf)}


def _bundle_variants(src: Path, d: Path) -> None:
    """Copies of the tiny text bundle, each with one hostile or malformed manifest (issue 11)."""
    secret = d / "secret.txt"
    secret.write_text("not for bundles\n")
    sha = hashlib.sha256(secret.read_bytes()).hexdigest()

    def variant(name: str, edit: Callable[[dict[str, Any]], None] | None = None,
                text: Callable[[str], str] | None = None) -> Path:
        b = d / f"b-{name}"
        shutil.copytree(src, b, symlinks=True)
        m = b / "manifest.json"
        if edit is not None:
            doc = json.loads(m.read_text())
            edit(doc)
            m.write_text(json.dumps(doc))
        if text is not None:
            m.write_text(text(m.read_text()))
        return b

    up = "../" * 12 + str(secret).lstrip("/")
    variant("dotdot", lambda m: m["files"].update({up: sha}))
    variant("absolute", lambda m: m["files"].update({str(secret): sha}))
    variant("model-outside", lambda m: m["models"]["text"].update(file=up))
    link = variant("symlink")
    (link / "tokenizer.json").unlink()
    (link / "tokenizer.json").symlink_to(secret)
    variant("config-string", lambda m: m.update(config="max_length=8"))
    variant("preprocess-list", lambda m: m.update(preprocess=[0.5]))
    variant("inputs-dict", lambda m: m["models"]["text"].update(inputs={"input_ids": 1}))
    variant("pad-id-huge", lambda m: m["config"].update(pad_id=10**30))
    deep = "[" * 100_000 + "]" * 100_000
    variant("deep", text=lambda t: t.replace('"extra": {}', '"extra": {"x": ' + deep + "}"))
    corrupt = variant("corrupt-onnx")
    onnx = corrupt / "text.onnx"
    onnx.write_bytes(onnx.read_bytes()[:200])
    doc = json.loads((corrupt / "manifest.json").read_text())
    doc["files"]["text.onnx"] = hashlib.sha256(onnx.read_bytes()).hexdigest()  # checksum updated too
    (corrupt / "manifest.json").write_text(json.dumps(doc))


# id, argv, exit code, pattern of the one stderr line
CASES: list[tuple[str, list[str], int, str]] = [
    ("bundle-dotdot", ["info", "{tmp}/b-dotdot"], 2, r"is not a relative path inside the bundle"),
    ("bundle-absolute", ["info", "{tmp}/b-absolute"], 2, r"is not a relative path inside the bundle"),
    ("bundle-model-outside", ["embed", "{tmp}/b-model-outside", "--text", "red"], 2,
     r"is not a relative path inside the bundle"),
    ("bundle-symlink-out", ["embed", "{tmp}/b-symlink", "--text", "red"], 2,
     r"tokenizer\.json.*is not a relative path inside the bundle"),
    ("bundle-config-string", ["info", "{tmp}/b-config-string"], 2, r"\.config: expected a JSON object"),
    ("bundle-preprocess-list", ["info", "{tmp}/b-preprocess-list"], 2,
     r"\.preprocess: expected a JSON object"),
    ("bundle-inputs-dict", ["info", "{tmp}/b-inputs-dict"], 2, r"models\.text\.inputs: expected a list"),
    ("bundle-pad-id-huge", ["embed", "{tmp}/b-pad-id-huge", "--text", "red"], 2, r"pad_id"),
    ("bundle-deep-json", ["info", "{tmp}/b-deep"], 2, r"nested"),
    ("bundle-corrupt-onnx", ["info", "--verify", "{tmp}/b-corrupt-onnx"], 2, r"not a loadable ONNX model"),
    ("unknown-flag", ["--bogus"], 2, r"No such option: --bogus"),
    ("unknown-flag-sub", ["ocr", "{shelf}", "--bogus"], 2, r"No such option: --bogus"),
    ("missing-arg", ["ocr"], 2, r"Missing argument"),
    ("bad-int", ["ocr", "{shelf}", "--limit-side", "x"], 2, r"--limit-side"),
    ("text-invalid-utf8", ["embed", "{te}", "--text", "a\udcffb"], 2, r"not valid UTF-8 .*\\xff"),
    ("bench-seconds-nan", ["bench", "{te}", "--seconds", "nan"], 2, r"--seconds.*finite.*nan"),
    ("bench-seconds-inf", ["bench", "{te}", "--seconds", "inf"], 2, r"--seconds.*finite"),
    ("bench-seconds-zero", ["bench", "{te}", "--seconds", "0"], 2, r"--seconds.*> 0"),
    ("bench-batch-huge", ["bench", "{te}", "--batch", "99999999999"], 2,
     r"nothing could be measured: batch 99999999999: .* outside the bundle's range 1\.\.1024"),
    ("bench-batch-seq", ["bench", "{te}", "--batch", "2000", "--dim", "seq=256"], 2,
     r"nothing could be measured: batch 2000: .* outside the bundle's range"),
    ("bench-memory-limit", ["bench", "{te}", "--batch", "1024", "--dim", "seq=8",
                            "--max-memory-gb", "1e-5"], 2,
     r"batch 1024: estimated memory .* over the limit 0\.00 GiB \(--max-memory-gb\)"),
    ("bench-max-memory-nan", ["bench", "{te}", "--max-memory-gb", "nan"], 2, r"--max-memory-gb"),
    ("bench-tensorrt-missing", ["bench", "{te}", "--backend", "tensorrt", "--iters", "1"], 2,
     r"--backend tensorrt: tensorrt is not installed"),
    ("bench-cuda-missing", ["bench", "{te}", "--backend", "ort-cuda", "--iters", "1"], 2,
     r"--backend ort-cuda: CUDAExecutionProvider is not in"),
    ("draw-extension", ["match-books", "{shelf}", "-c", "{tmp}/cat.csv", "--draw", "{tmp}/sub/d.txt"], 2,
     r"d\.txt: --draw expects an image file name"),
    ("image-fifo", ["ocr", "{tmp}/fifo.png"], 2, r"fifo\.png: not a regular file \(a FIFO\)"),
    ("image-dev-zero", ["ocr", "/dev/zero"], 2, r"/dev/zero: not a regular file \(a character device\)"),
    ("image-truncated-png", ["ocr", "{tmp}/trunc.png"], 2, r"trunc\.png: not a readable PNG \(truncated"),
    ("image-bad-crc-png", ["ocr", "{tmp}/badcrc.png"], 2, r"badcrc\.png: not a readable PNG .*CRC"),
    ("image-huge-header", ["ocr", "{tmp}/huge.png"], 2, r"huge\.png: 100000x100000 is over 200 megapixels"),
    ("image-over-max-mp", ["--max-image-mp", "0.1", "ocr", "{shelf}"], 2, r"525x536 is over 0\.1 megapixels"),
    ("ocr-limit-side-neg", ["ocr", "{shelf}", "--limit-side", "-5"], 2, r"--limit-side.*>= 64 or 0, got -5"),
    ("ocr-limit-side-one", ["ocr", "{shelf}", "--limit-side", "1"], 2, r"--limit-side.*got 1"),
    ("ocr-min-score-nan", ["ocr", "{shelf}", "--min-score", "nan"], 2, r"--min-score.*got nan"),
    ("ocr-min-score-two", ["ocr", "{shelf}", "--min-score", "2"], 2, r"--min-score.*<= 1, got 2"),
    ("ocr-threads-neg", ["ocr", "{shelf}", "--threads", "-1"], 2, r"--threads.*got -1"),
    ("ocr-threads-huge", ["ocr", "{shelf}", "--threads", "99999999999"], 2, r"--threads.*<= 1024"),
    ("bench-threads-huge", ["bench", "{te}", "--threads", "99999999999"], 2, r"--threads.*<= 1024"),
    ("draw-max-side-neg", ["match-books", "{shelf}", "-c", "{tmp}/cat.csv", "--draw-max-side", "-5"], 2,
     r"--draw-max-side.*got -5"),
    ("match-limit-side-small", ["match-books", "{shelf}", "-c", "{tmp}/cat.csv", "--limit-side", "5"], 2,
     r"--limit-side.*got 5"),
    ("min-recall-5", ["books", "index", "-c", "{tmp}/cat.csv", "--calibrate", "{tmp}/seg.csv",
                      "--min-recall", "5"], 2, r"--min-recall.*got 5"),
    ("min-recall-neg", ["books", "index", "-c", "{tmp}/cat.csv", "--calibrate", "{tmp}/seg.csv",
                        "--min-recall", "-3"], 2, r"--min-recall.*got -3"),
    ("catalogue-quote", ["books", "index", "-c", "{tmp}/quote.csv", "--cache-dir", "{tmp}/cache"], 2,
     r"quote\.csv: unbalanced quote: the quoted field on line 2"),
    ("catalogue-dup-column", ["books", "index", "-c", "{tmp}/dup.csv", "--cache-dir", "{tmp}/cache"], 2,
     r"dup\.csv: column name\(s\) title appear more than once"),
]


@pytest.mark.parametrize(("argv", "code", "pattern"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_cli_error_is_one_line(argv: list[str], code: int, pattern: str, paths: dict[str, str],
                               capfd: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    real_find = importlib.util.find_spec  # "tensorrt missing" holds on a machine that has it too
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "tensorrt" else real_find(name, *a))
    monkeypatch.setenv("EDGEVL_HOME", str(Path(paths["tmp"]) / "home"))
    args = [a.format(**paths) for a in argv]
    assert main(args) == code
    lines = capfd.readouterr().err.splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith("edgevl: error: ")
    assert re.search(pattern, lines[0]), lines[0]


def test_draw_extension_refused_before_creating_anything(paths: dict[str, str]) -> None:
    out = Path(paths["tmp"]) / "fresh" / "d.txt"
    assert main(["match-books", paths["shelf"], "-c", f"{paths['tmp']}/cat.csv", "--draw", str(out)]) == 2
    assert not out.parent.exists()


def test_plain_embed_output_is_one_line_per_input(paths: dict[str, str],
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["embed", paths["te"], "--text", "red\nblue", "--text", "a\tb\\c"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 2
    assert out[0].split("\t")[0] == "red\\nblue"
    assert out[1].split("\t")[0] == "a\\tb\\\\c"
    assert len(out[0].split("\t")) == 2


def test_no_arguments_still_shows_the_help(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2
    cap = capsys.readouterr()
    assert "Usage" in cap.out + cap.err and "edgevl: error" not in cap.err


def test_opencv_warning_level_restored(paths: dict[str, str]) -> None:
    from edgevl.errors import ImageError
    from edgevl.vision.io import read_image

    level = cv2.utils.logging.getLogLevel()
    with pytest.raises(ImageError):
        read_image(Path(paths["tmp"]) / "trunc.png")
    assert cv2.utils.logging.getLogLevel() == level
    assert read_image(paths["shelf"]).shape == (536, 525, 3)
    assert np.asarray(read_image(paths["shelf"])).dtype == np.uint8


def test_bundle_error_does_not_reveal_whether_an_outside_file_exists(
        paths: dict[str, str], tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    errs = []
    for target in ("secret.txt", "absent.txt"):  # same length: messages may cut long names
        b = tmp_path / target
        shutil.copytree(paths["te"], b)
        doc = json.loads((b / "manifest.json").read_text())
        doc["files"]["../" * 12 + str(Path(paths["tmp"]) / target).lstrip("/")] = "0" * 64
        (b / "manifest.json").write_text(json.dumps(doc))
        assert main(["info", str(b)]) == 2
        err = capfd.readouterr().err.replace(str(b), "B")
        errs.append(re.sub(r"'[^']*'", "'NAME'", err))  # the refused name itself may be cut short
    assert errs[0] == errs[1]


def test_bench_refuses_over_the_default_memory_limit(paths: dict[str, str], monkeypatch: pytest.MonkeyPatch,
                                                     capfd: pytest.CaptureFixture[str]) -> None:
    """Without --max-memory-gb the limit is 75% of the available memory (made tiny here)."""
    import edgevl.bench.memory as memory

    monkeypatch.setattr(memory, "default_limit", lambda: 4096)
    assert main(["bench", paths["te"], "--batch", "64", "--iters", "1"]) == 2
    err = capfd.readouterr().err.splitlines()
    assert len(err) == 1 and "75% of the memory available now" in err[0] and "batch 64" in err[0]
    assert main(["bench", paths["te"], "--batch", "64", "--iters", "1", "--max-memory-gb", "1"]) == 0
