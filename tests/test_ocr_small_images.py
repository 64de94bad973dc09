"""The detector's size policy for small photos: when the short side is below ``min_side`` (736 for
the PP-OCR models) and the text found is small, the photo is detected again enlarged so labels a
few pixels tall are found; large text on a small image and large photos keep one pass."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from edgevl.models.ppocr import DET_MIN_SIDE, MODELS
from edgevl.tasks.ocr import SMALL_TEXT_PX, small_text
from edgevl.tasks.ocr.sections import DetectorPreprocess
from edgevl.vision.geometry import MAX_UPSCALE, fit_detector

SMALL = Path(__file__).resolve().parent / "fixtures" / "small_shelf.jpg"


def test_small_photo_is_enlarged_to_min_side() -> None:
    nh, nw, s = fit_detector(322, 430, 1792, 736)
    assert (nh, nw) == (736, 992) and s == pytest.approx(736 / 322)


def test_large_photo_is_only_reduced() -> None:
    assert fit_detector(3024, 4032, 1792, 736) == fit_detector(3024, 4032, 1792, 0)
    nh, nw, _ = fit_detector(3024, 4032, 1792, 736)
    assert max(nh, nw) <= 1792


def test_enlargement_is_capped_by_limit_and_factor() -> None:
    nh, nw, s = fit_detector(40, 120, 1792, 736)  # a word crop: at most MAX_UPSCALE
    assert s == MAX_UPSCALE and (nh, nw) == (160, 480)
    nh, nw, s = fit_detector(300, 1000, 1280, 736)  # long side stays within limit_side
    assert nw <= 1280 and s == pytest.approx(1.28)
    assert fit_detector(322, 430, 1792, 0)[:2] == (320, 416)  # min_side 0: the old rule


def test_small_text_is_judged_by_median_box_height() -> None:
    def box(x: float, y: float, w: float, h: float) -> list[list[float]]:
        return [[x, y], [x + w, y], [x + w, y + h], [x, y + h]]

    small = np.array([box(0, 0, 80, 8), box(0, 20, 60, 9), box(0, 40, 90, 40)], np.float32)
    assert small_text(small, 1.0, SMALL_TEXT_PX)  # median height 9
    assert not small_text(small, 3.0, SMALL_TEXT_PX)  # 27 detector pixels
    tall = np.array([box(0, 0, 12, 200)], np.float32)  # a vertical spine title: its width counts
    assert small_text(tall, 1.0, SMALL_TEXT_PX)
    assert small_text(np.zeros((0, 4, 2), np.float32), 1.0, SMALL_TEXT_PX)  # nothing found


def test_policy_is_in_every_models_manifest_and_round_trips() -> None:
    for m in MODELS.values():
        assert m.det_preprocess.min_side == DET_MIN_SIDE
        d = m.det_preprocess.to_manifest()
        assert DetectorPreprocess.from_manifest(d) == m.det_preprocess
    old = replace(MODELS["ppocrv6"].det_preprocess, min_side=0).to_manifest()
    assert "min_side" not in old  # bundles written before the field still read the same


@pytest.fixture(scope="module")
def v6(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    from edgevl.models.ppocr import build_bundles

    return build_bundles(tmp_path_factory.mktemp("v6small"), model="ppocrv6")


def test_small_photo_reads_more_lines_with_the_policy(v6) -> None:  # type: ignore[no-untyped-def]
    from edgevl.backends import EngineOptions
    from edgevl.tasks.ocr import AngleClassifier, OcrPipeline, TextDetector, TextRecognizer
    from edgevl.vision.io import read_image

    img = read_image(SMALL)
    opts = EngineOptions(backend="ort-cpu")
    cls, rec = AngleClassifier(bundle=v6.cls, options=opts), TextRecognizer(bundle=v6.rec, options=opts)
    det = TextDetector(bundle=v6.det, options=opts)
    assert det.min_side == DET_MIN_SIDE
    with_policy = OcrPipeline(det, cls, rec)(img)
    det_old = TextDetector(bundle=v6.det, options=opts)
    det_old.min_side = 0
    without = OcrPipeline(det_old, cls, rec)(img)
    words = [ln.text for ln in with_policy if sum(ch.isalpha() for ch in ln.text) >= 4]
    words_old = [ln.text for ln in without if sum(ch.isalpha() for ch in ln.text) >= 4]
    # measured: 26 lines vs 6 on this 640x480 photo (3.1x the detector input, 0.2 s more)
    assert len(with_policy) >= 2 * len(without), ([ln.text for ln in with_policy],
                                                  [ln.text for ln in without])
    assert len(words) >= len(words_old) + 4, (words, words_old)


def test_large_text_on_a_small_image_keeps_one_pass(v6) -> None:  # type: ignore[no-untyped-def]
    # enlarged 3.5x, the word gaps of 36-px text split its lines: the policy must not apply here
    from benchlib.synth import render_lines

    from edgevl.backends import EngineOptions
    from edgevl.tasks.ocr import TextDetector

    page = render_lines(["Library catalogue Barcelona", "inference quick brown", "shelf 2024"]).image
    assert min(page.shape[:2]) < DET_MIN_SIDE
    opts = EngineOptions(backend="ort-cpu")
    det = TextDetector(bundle=v6.det, options=opts)
    calls: list[int] = []
    real = det.probability_map
    det.probability_map = lambda im, ms=0: calls.append(ms) or real(im, ms)  # type: ignore[method-assign]
    quads, _ = det(page)
    assert calls == [0] and len(quads) == 3
