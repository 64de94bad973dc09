"""``ppocrv6-int8`` (issue 23): PP-OCRv6 small's recogniser quantised on this machine from rendered
lines, behind the accuracy guard; reachable as ``--rec ppocrv6-int8``."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import edgevl.models.recognizers as recognizers
from edgevl.bundle import load_bundle
from edgevl.cli import main
from edgevl.models import ppocr_int8
from edgevl.tasks.ocr import OcrPipeline


def test_calibration_lines_are_deterministic_and_drawn() -> None:
    a = list(ppocr_int8.calibration_lines(12, seed=3))
    b = list(ppocr_int8.calibration_lines(12, seed=3))
    c = list(ppocr_int8.calibration_lines(12, seed=4))
    assert [t for t, _ in a] == [t for t, _ in b]
    assert all(np.array_equal(x, y) for (_, x), (_, y) in zip(a, b, strict=True))
    assert [t for t, _ in a] != [t for t, _ in c]
    for text, img in a:
        assert text.strip() and text.isascii()
        assert img.dtype == np.uint8 and img.ndim == 3 and img.shape[2] == 3
        assert img.shape[1] > img.shape[0] >= 8  # a line: wider than tall
        assert img.std() > 10  # ink on a background, not a blank box


def test_calibration_folder_has_labels_for_every_image(tmp_path: Path) -> None:
    folder = ppocr_int8.write_calibration(tmp_path / "cal", 5, seed=1)
    rows = (folder / "labels.tsv").read_text(encoding="utf-8").splitlines()
    assert rows[0] == "file\tlabel" and len(rows) == 6
    for row in rows[1:]:
        name, label = row.split("\t")
        assert (folder / name).is_file() and label


def test_the_name_is_a_recogniser_name() -> None:
    assert "ppocrv6-int8" in recognizers.rec_names()
    recognizers.check_rec("ppocrv6-int8")


def test_no_tensorrt_build_for_it(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Only a recogniser with a TensorRT builder takes --target tensorrt (this one was once built as
    svtrv2's TensorRT bundle); nothing is written."""
    assert main(["models", "build", "ppocrv6-int8", "--target", "tensorrt", "--out", str(tmp_path)]) == 2
    assert "--target tensorrt builds the svtrv2 recogniser only" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


@pytest.mark.slow
def test_built_bundle_is_int8_guarded_current_and_reads_like_fp32(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    b = ppocr_int8.build_bundle(tmp_path, samples=24, holdout=12)
    assert b.path == tmp_path / ppocr_int8.BUNDLE_NAME
    assert b.manifest.precision == "int8" and b.manifest.task == "text-recognition"
    q = b.manifest.extra["quantization"]
    assert q["guard"]["passed"] is True
    assert q["data"]["path"] == ppocr_int8.CALIBRATION
    # the stem starts in float (no sweep needed for it); every other weight node may be int8
    role = q["roles"]["model"]
    assert set(ppocr_int8.STEM_FLOAT) <= set(role["kept_float"])
    assert role["quantized"] >= role["candidates"] // 2
    assert ppocr_int8.is_current(load_bundle(b.path))
    # another calibration generator, or another fp32 source, makes the cached bundle stale
    monkeypatch.setattr(ppocr_int8, "CALIBRATION", "edgevl-rendered-lines-v0")
    assert not ppocr_int8.is_current(b)
    monkeypatch.undo()

    lines = list(ppocr_int8.calibration_lines(6, seed=99))
    int8 = OcrPipeline(rec=b.path).read_crops([img for _, img in lines])
    fp32 = OcrPipeline().read_crops([img for _, img in lines])
    agree = sum(x.text == y.text for x, y in zip(int8, fp32, strict=True))
    assert agree >= 4, ([x.text for x in int8], [y.text for y in fp32])

    # the CLI takes the built folder like any recogniser bundle
    crop = tmp_path / "line.png"
    import cv2

    cv2.imwrite(str(crop), lines[0][1])
    assert main(["ocr", "--crops", "--rec", str(b.path), "--json", str(crop)]) == 0


def test_a_stale_cached_bundle_is_rebuilt(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """ensure() reuses a current bundle and rebuilds one that is_current refuses."""
    built: list[Path] = []

    def fake_build(root: Path) -> object:
        built.append(root)
        (root / ppocr_int8.BUNDLE_NAME).mkdir(parents=True, exist_ok=True)
        return "rebuilt"

    rec = recognizers.standalone("ppocrv6-int8")
    assert rec is not None
    monkeypatch.setitem(recognizers.STANDALONE, "ppocrv6-int8",
                        lambda: recognizers.Recognizer(**{**rec.__dict__, "build": fake_build,
                                                          "is_current": lambda _b: False}))
    # no bundle there at all: built
    assert recognizers.ensure("ppocrv6-int8", tmp_path) == "rebuilt"
    assert built == [tmp_path]
    (tmp_path / ppocr_int8.BUNDLE_NAME / "manifest.json").write_text(json.dumps({"x": 1}))
    assert recognizers.ensure("ppocrv6-int8", tmp_path) == "rebuilt"  # unreadable manifest: rebuilt
    assert built == [tmp_path, tmp_path]
