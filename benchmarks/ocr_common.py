"""Helpers shared by the OCR benchmarks (ocr_vs_rapidocr.py, str_eval.py): machine description,
the library data folder, text normalisation and the edgevl pipeline factory.

The scripts run as ``python benchmarks/<script>.py`` so this module is imported as ``ocr_common``.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import re
import shlex
import sys
import unicodedata
from pathlib import Path
from typing import Any

from edgevl.bench.machine import cpu_model

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results"
# the shared data folder sits beside the checkout: <parent>/shared/data/library
LIBRARY = REPO.parent / "shared" / "data" / "library"


def machine_info() -> dict[str, Any]:
    """CPU model, core count and library versions: every committed result records these."""
    import cv2
    import numpy
    import onnxruntime

    info: dict[str, Any] = {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "onnxruntime": onnxruntime.__version__,
        "numpy": numpy.__version__,
        "opencv": cv2.__version__,
    }
    try:
        from importlib.metadata import version

        info["rapidocr_onnxruntime"] = version("rapidocr-onnxruntime")
        info["edgevl"] = version("edgevl")
    except Exception:  # pragma: no cover - metadata missing in odd installs
        pass
    return info


def git_state(paths: tuple[str, ...] = ("edgevl",)) -> dict[str, Any]:
    """The commit measured, and the files under ``paths`` that differ from it (work in progress)."""
    import subprocess

    def git(*args: str) -> str:
        try:
            out = subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True, check=False)
        except OSError:
            return ""
        return out.stdout

    dirty = [line[3:] for line in git("status", "--porcelain", "--", *paths).splitlines() if len(line) > 3]
    return {"commit": git("rev-parse", "--short", "HEAD").strip(), "uncommitted": dirty}


def command_line() -> str:
    """The command that produced a result, relative to the repository root."""
    argv = list(sys.argv)
    with contextlib.suppress(ValueError):
        argv[0] = str(Path(argv[0]).resolve().relative_to(REPO))
    return "python " + " ".join(shlex.quote(a) for a in argv)


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


def str_label(text: str) -> str:
    """The PARSeq evaluation form: lower-case, accents stripped, only [0-9a-z] kept."""
    return "".join(alnum_words(text))


def fmt_table(header: list[str], rows: list[list[Any]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join("---" for _ in header) + " |"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def write_report(out: Path, stem: str, report: dict[str, Any], markdown: str) -> None:
    """Write ``<stem>.json`` and ``<stem>.md`` under ``out`` and print the markdown."""
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{stem}.json").write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n")
    (out / f"{stem}.md").write_text(markdown)
    print(markdown)
