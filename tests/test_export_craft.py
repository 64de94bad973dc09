"""CRAFT (craft_mlt_25k.pth) → text-detection bundle: dispatch by keys, parity, boxes on the example photo."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("onnx")
easyocr_en_models = pytest.importorskip("easyocr_en_models")

from edgevl.bundle import Bundle, load_bundle  # noqa: E402
from edgevl.cli import main  # noqa: E402
from edgevl.tasks.ocr import TextDetector  # noqa: E402

CRAFT = Path(easyocr_en_models.model_dir()) / "craft_mlt_25k.pth"
SHELF = Path(__file__).resolve().parents[1] / "examples" / "shelf.png"


@pytest.fixture(scope="session")
def craft_bundle(tmp_path_factory: pytest.TempPathFactory) -> Bundle:
    out = tmp_path_factory.mktemp("craft") / "b"
    assert main(["export", "--checkpoint", str(CRAFT), "--out", str(out)]) == 0
    return load_bundle(out)


def test_manifest(craft_bundle: Bundle) -> None:
    m = craft_bundle.manifest
    assert m.task == "text-detection"
    assert m.source["md5"] == "2f8227d2def4037cdb3b34389dcf9ec1"  # EasyOCR's published md5sum
    (p,) = m.extra["parity"]
    assert p["ok"] and p["rel_error"] <= 1e-4
    assert m.preprocess["color"] == "RGB"


def _box(q: np.ndarray) -> tuple[float, float, float, float]:
    return float(q[:, 0].min()), float(q[:, 1].min()), float(q[:, 0].max()), float(q[:, 1].max())


def test_boxes_cover_the_titles_ppocr_finds(craft_bundle: Bundle) -> None:
    img = cv2.imread(str(SHELF))
    craft, _ = TextDetector(bundle=craft_bundle)(img)
    ref, _ = TextDetector(model="ppocrv6")(img)
    assert len(ref) >= 8
    # CRAFT finds words, PP-OCR lines: every line box holds at least one CRAFT box's centre
    centres = [((a + c) / 2, (b + d) / 2) for a, b, c, d in map(_box, craft)]
    for q in ref:
        x0, y0, x1, y1 = _box(q)
        assert any(x0 <= cx <= x1 and y0 <= cy <= y1 for cx, cy in centres), _box(q)
    # and no CRAFT box sits on bare background: each centre is inside some line box (grown by 10 px)
    for cx, cy in centres:
        assert any(x0 - 10 <= cx <= x1 + 10 and y0 - 10 <= cy <= y1 + 10
                   for x0, y0, x1, y1 in map(_box, ref)), (cx, cy)


def test_bad_craft_checkpoint(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    p = tmp_path / "craft.pth"
    torch.save({"basenet.slice1.0.weight": torch.zeros(64, 3, 3, 3)}, p)
    capfd.readouterr()
    assert main(["export", "-c", str(p), "-o", str(tmp_path / "out")]) == 2
    err = capfd.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "not a CRAFT detector" in err[0], err
