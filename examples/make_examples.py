"""Regenerate the example images shipped in examples/ (needs Pillow: pip install 'edgevl[dev]').

    python examples/make_examples.py

``shelf.png``: a small shelf of book spines whose titles run top-to-bottom and bottom-to-top, with a
horizontal shelf label below — the case edgevl's OCR pipeline is built for.
"""

from __future__ import annotations

import sys
from pathlib import Path

import cv2
import numpy as np

# the renderer is repository tooling in benchmarks/benchlib (not part of the runtime package)
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from benchlib.synth import render_shelf, render_word

TITLES = ("MOBY DICK", "Don Quijote", "ULYSSES", "Hamlet", "La Regenta", "FUTBOL SALA", "Atlas")
LABEL = "796.4 Sports"


def make_shelf() -> np.ndarray:
    shelf = render_shelf(TITLES, size=30, height=420).image
    label = render_word(LABEL, size=28, pad=10)
    h = shelf.shape[0] + label.shape[0] + 30
    out = np.full((h, shelf.shape[1], 3), (40, 70, 110), np.uint8)
    out[: shelf.shape[0]] = shelf
    x = (shelf.shape[1] - label.shape[1]) // 2
    out[shelf.shape[0] + 10 : shelf.shape[0] + 10 + label.shape[0], x : x + label.shape[1]] = label
    return out


if __name__ == "__main__":
    here = Path(__file__).resolve().parent
    cv2.imwrite(str(here / "shelf.png"), make_shelf(), [cv2.IMWRITE_PNG_COMPRESSION, 9])
    print(f"wrote {here / 'shelf.png'}")
