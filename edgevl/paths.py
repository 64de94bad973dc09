"""The one cache root: ``$EDGEVL_HOME``, else ``$XDG_CACHE_HOME/edgevl``, else ``~/.cache/edgevl``.

Under it: ``bundles/`` (the PP-OCR bundles built from the rapidocr wheel), ``engines/`` (TensorRT
plans of read-only bundles), ``text-embeddings/`` (zero-shot prompt embeddings) and ``books/`` (the
catalogue index). ``EDGEVL_CACHE`` (the books index folder of edgevl ≤ 0.x) is read as a deprecated
alias for ``$EDGEVL_HOME/books`` only when ``EDGEVL_HOME`` is unset.
"""

from __future__ import annotations

import os
from pathlib import Path


def edgevl_home() -> Path:
    """The cache root (not created here)."""
    env = os.environ.get("EDGEVL_HOME")
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "edgevl"
