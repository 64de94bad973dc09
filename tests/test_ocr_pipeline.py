"""The OCR pipeline on the real PP-OCRv4 models (built from the rapidocr wheel) and rendered text."""

from __future__ import annotations

import json
import re
from pathlib import Path

import cv2
import numpy as np
import pytest
from benchlib.synth import render_lines, render_shelf, render_vertical, render_word

from edgevl.cli import main
from edgevl.errors import ImageError
from edgevl.models.ppocr import OcrBundles, build_bundles, load_charset
from edgevl.tasks.ocr import AngleClassifier, OcrPipeline, TextDetector, TextRecognizer

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def _norm(s: str) -> str:
    return re.sub(r"[^0-9a-z]", "", s.lower())


@pytest.fixture(scope="module")
def bundles(tmp_path_factory: pytest.TempPathFactory) -> OcrBundles:
    return build_bundles(tmp_path_factory.mktemp("bundles"), model="ppocrv4")


@pytest.fixture(scope="module")
def pipe(bundles: OcrBundles) -> OcrPipeline:
    return OcrPipeline(TextDetector(bundle=bundles.det), AngleClassifier(bundle=bundles.cls),
                       TextRecognizer(bundle=bundles.rec))


@pytest.fixture()
def home(tmp_path: Path, bundles: OcrBundles, monkeypatch: pytest.MonkeyPatch) -> Path:
    """EDGEVL_HOME pointing at the already-built bundles (so CLI tests do not rebuild them)."""
    import edgevl.models.ppocr as ppocr

    h = tmp_path / "home"
    (h / "bundles").mkdir(parents=True)
    for key in ("det", "cls", "rec"):
        (h / "bundles" / ppocr.BUNDLE_NAMES[key]).symlink_to(getattr(bundles, key).path)
    monkeypatch.setenv("EDGEVL_HOME", str(h))
    monkeypatch.setattr(ppocr, "_CACHE", {})
    monkeypatch.setattr(ppocr, "DEFAULT_MODEL", "ppocrv4")  # the CLI tests here read these bundles
    return h


def test_bundles_built_from_the_wheel_with_its_charset(bundles: OcrBundles) -> None:
    assert (bundles.det.manifest.task, bundles.cls.manifest.task, bundles.rec.manifest.task) == (
        "text-detection", "text-orientation", "text-recognition")
    for b in (bundles.det, bundles.cls, bundles.rec):
        assert b.manifest.source["package"] == "rapidocr-onnxruntime"
        assert b.manifest.source["model"] == "ppocrv4"
        assert len(b.manifest.source["sha256"]) == 64
    classes = load_charset(bundles.rec)
    out_classes = bundles.rec.model().outputs[0].shape[-1]
    assert len(classes) == out_classes == bundles.rec.manifest.config["num_classes"]
    assert classes[bundles.rec.manifest.config["blank_index"]] == "<blank>"
    assert classes[-1] == " "
    assert set("abcxyzABCXYZ0123456789") <= set(classes)
    assert len(set(classes)) == len(classes)
    pre = bundles.det.manifest.preprocess
    assert pre["stride"] == 32 and pre["mean"] == [0.5, 0.5, 0.5]
    assert bundles.rec.manifest.preprocess["height"] == 48
    assert bundles.cls.manifest.config["thresh"] == 0.9


def test_horizontal_lines_are_read(pipe: OcrPipeline) -> None:
    words = ["Library", "catalogue", "Barcelona", "inference", "quick", "brown", "shelf", "2024"]
    r = render_lines([" ".join(words[:3]), " ".join(words[3:6]), " ".join(words[6:])])
    lines = pipe(r.image)
    assert len(lines) == 3
    for ln, want in zip(lines, r.texts, strict=True):  # reading order = top to bottom
        assert _norm(ln.text) == _norm(want)
        assert not ln.vertical and ln.score > 0.8


@pytest.mark.parametrize("direction", ["down", "up"])
def test_vertical_word_read_in_both_directions(pipe: OcrPipeline, direction: str) -> None:
    for word in ("Barcelona", "Hamlet 42"):
        lines = pipe(render_vertical(word, direction, size=36))
        assert [_norm(ln.text) for ln in lines] == [_norm(word)]
        assert lines[0].vertical


def test_vertical_both_policy_agrees(bundles: OcrBundles, pipe: OcrPipeline) -> None:
    both = OcrPipeline(pipe.detector, pipe.classifier, pipe.recognizer, vertical="both")
    img = render_vertical("Regenta", "up")
    res = both(img)
    assert [_norm(ln.text) for ln in res] == ["regenta"]
    assert res.timings.reads == 2 * res.timings.boxes


def test_shelf_of_spines_left_to_right(pipe: OcrPipeline) -> None:
    titles = ["MOBY DICK", "Don Quijote", "ULYSSES", "Hamlet", "La Regenta"]
    r = render_shelf(titles)
    lines = pipe(r.image)
    assert [_norm(ln.text) for ln in lines] == [_norm(t) for t in titles]
    for ln, (x0, _, x1, _) in zip(lines, r.boxes, strict=True):
        xs = [p[0] for p in ln.quad]
        assert x0 <= min(xs) and max(xs) <= x1


def test_recognizer_reads_word_crops_batched(pipe: OcrPipeline) -> None:
    words = ["a", "Spine", "Fuenteovejuna", "OCR", "edge", "1984", "Quijote", "x" * 3]
    crops = [render_word(w, size=s) for w, s in zip(words, [30, 40, 28, 50, 36, 32, 44, 30], strict=True)]
    rec = pipe.recognizer
    small = TextRecognizer(rec.engine, rec.bundle, batch_size=3)
    out = rec.read(crops)
    assert [_norm(r.text) for r in out] == [_norm(w) for w in words]
    assert [_norm(r.text) for r in small.read(crops)] == [_norm(r.text) for r in out]
    for r in out:
        assert len(r.char_scores) == len(r.text) and 0 < r.score <= 1
    assert rec.read([]) == []


def test_read_crops_handles_vertical_words(pipe: OcrPipeline) -> None:
    crops = [render_vertical("Cervantes", "down"), render_vertical("Quevedo", "up"), render_word("Lorca")]
    assert [_norm(r.text) for r in pipe.read_crops(crops)] == ["cervantes", "quevedo", "lorca"]
    # the plain recogniser reads crops as they are: a vertical word is not readable that way
    assert _norm(pipe.recognizer.read(crops[:1])[0].text) != "cervantes"


class _SureButWrongClassifier:
    """A 0/180 classifier that calls every crop upside down with full confidence."""

    thresh = 0.9

    def __call__(self, crops: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        return np.ones(len(crops), bool), np.ones(len(crops), np.float32)


def test_horizontal_word_survives_a_wrong_flip(pipe: OcrPipeline) -> None:
    wrong = OcrPipeline(pipe.detector, _SureButWrongClassifier(), pipe.recognizer)  # type: ignore[arg-type]
    words = ["Lorca", "Machado"]
    out = wrong.read_crops([render_word(w, size=40) for w in words])
    assert [_norm(r.text) for r in out] == [_norm(w) for w in words]


def test_tiled_detection_matches_whole_image(pipe: OcrPipeline) -> None:
    r = render_lines(["Tiles are stitched before", "one DB pass so that", "no seam cuts a word"], size=40)
    whole = TextDetector(pipe.detector.engine, pipe.detector.bundle, limit_side=0, tile_size=0)
    tiled = TextDetector(pipe.detector.engine, pipe.detector.bundle, limit_side=0, tile_size=384)
    tiled.tile_overlap, tiled.tile_above = 96, 0
    assert r.image.shape[1] > 1.5 * 384  # words straddle tile seams
    qa, _ = whole(r.image)
    qb, _ = tiled(r.image)
    assert len(qa) == len(qb) == 3  # no line split at a seam, none duplicated
    ca = np.sort(qa.mean(axis=1), axis=0)
    cb = np.sort(qb.mean(axis=1), axis=0)
    np.testing.assert_allclose(ca, cb, atol=8)
    both = OcrPipeline(tiled, pipe.classifier, pipe.recognizer)
    assert [_norm(ln.text) for ln in both(r.image)] == [_norm(t) for t in r.texts]


def test_image_forms(pipe: OcrPipeline) -> None:
    img = render_word("Granada", size=48, pad=40)
    grey = cv2.cvtColor(img, cv2.COLOR_BGR2GRAY)
    sixteen = grey.astype(np.uint16) * 257
    rgba = np.dstack([img, np.full(img.shape[:2], 255, np.uint8)])
    for arr in (img, grey, sixteen, rgba):
        assert [_norm(ln.text) for ln in pipe(arr)] == ["granada"]
    assert list(pipe(np.full((64, 64, 3), 255, np.uint8))) == []  # blank image: no text, no error
    with pytest.raises(ImageError):
        pipe(np.zeros((0, 10, 3), np.uint8))


def test_bad_files_exit_2_with_one_line(tmp_path: Path, home: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "empty.png").write_bytes(b"")
    (tmp_path / "corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    huge = tmp_path / "huge.png"
    import edgevl.vision.io as vio

    cv2.imwrite(str(huge), np.zeros((40, 30), np.uint8))
    for bad in ("missing.png", "empty.png", "corrupt.png"):
        assert main(["ocr", str(tmp_path / bad)]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("edgevl: error:") and bad in err[0]
    old = vio.MAX_PIXELS
    vio.MAX_PIXELS = 1000  # a 'huge' image without allocating gigabytes
    try:
        assert main(["ocr", str(huge)]) == 2
        assert "megapixels" in capsys.readouterr().err
    finally:
        vio.MAX_PIXELS = old


def test_cli_json_draw_and_crops(tmp_path: Path, home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    shelf = EXAMPLES / "shelf.png"
    assert main(["ocr", str(shelf), str(shelf), "--json", "--draw", str(tmp_path / "out.png")]) == 0
    doc = json.loads(capsys.readouterr().out)
    texts = [_norm(ln["text"]) for ln in doc["images"][0]["lines"]]
    assert "mobydick" in texts and "hamlet" in texts and "7964sports" in texts
    for i in (0, 1):
        drawn = cv2.imread(str(tmp_path / f"out_{i}.png"))
        assert drawn is not None and drawn.shape == cv2.imread(str(shelf)).shape
    word = tmp_path / "w.png"
    cv2.imwrite(str(word), render_word("Cervantes"))
    assert main(["ocr", "--crops", str(word)]) == 0
    assert "Cervantes" in capsys.readouterr().out
    assert main(["ocr", "--crops", str(word), "--draw", str(tmp_path / "x.png")]) == 2
    tall = tmp_path / "tall.png"
    cv2.imwrite(str(tall), render_vertical("Quevedo", "up"))
    assert main(["ocr", "--crops", str(tall), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["crops"][0]["text"] == "Quevedo"


def test_models_build_and_list(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "b"

    def v4() -> dict[str, object]:
        assert main(["models", "list", "--dir", str(out), "--json"]) == 0
        row: dict[str, object] = next(r for r in json.loads(capsys.readouterr().out)["models"]
                                      if r["name"] == "ppocrv4")
        return row

    assert v4()["verified"] is False
    assert v4()["problems"] == ["det: not built", "cls: not built", "rec: not built"]
    assert main(["models", "build", "--model", "ppocrv4", "--out", str(out)]) == 0
    capsys.readouterr()
    assert v4()["verified"] is True and v4()["fused"] == ["det", "cls", "rec"]
    (out / "ppocrv4-rec" / "charset.txt").write_text("tampered\n")
    row = v4()
    assert row["verified"] is False and len(row["problems"]) == 1  # type: ignore[arg-type]
    assert "rec:" in row["problems"][0] and "sha256" in row["problems"][0]  # type: ignore[index]


def test_cached_bundles_rebuilt_when_corrupt(tmp_path: Path) -> None:
    from edgevl.models.ppocr import ensure_bundles

    b = ensure_bundles(tmp_path, model="ppocrv4")
    (b.det.path / "model.onnx").write_bytes(b"junk")
    b2 = ensure_bundles(tmp_path, model="ppocrv4")
    assert b2.det.manifest.files == b.det.manifest.files


def test_ocr_engines_run_without_per_shape_memory_plans(bundles: OcrBundles) -> None:
    from edgevl.backends import EngineOptions

    rec = TextRecognizer(bundle=bundles.rec, options=EngineOptions(threads=1))
    so = rec.engine._sess.get_session_options()  # type: ignore[attr-defined]
    assert so.enable_mem_pattern is False and so.intra_op_num_threads == 1  # the caller's options kept
    det = TextDetector(bundle=bundles.det, options=EngineOptions())  # no options: auto, maybe OpenVINO
    assert det.engine._sess.get_session_options().enable_mem_pattern is False  # type: ignore[attr-defined]
