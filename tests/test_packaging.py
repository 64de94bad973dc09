"""The explicit package list in pyproject.toml names every package folder of the runtime and the build
side: a folder missing there imports in an editable install (the tests') but is absent from the
wheel `pip install .` builds, which then fails at import (it happened when tasks/ocr became a package)."""

from __future__ import annotations

from pathlib import Path

import pytest

tomllib = pytest.importorskip("tomllib")  # Python >= 3.11

REPO = Path(__file__).resolve().parents[1]


def _declared() -> set[str]:
    doc = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    return set(doc["tool"]["setuptools"]["packages"])


def _on_disk(folder: str, name: str) -> set[str]:
    root = REPO / folder
    return {".".join([name, *p.parent.relative_to(root).parts]) for p in root.rglob("__init__.py")
            if "__pycache__" not in p.parts}


def test_every_package_folder_is_in_the_wheel() -> None:
    found = _on_disk("edgevl", "edgevl") | _on_disk("export", "edgevl_export")
    assert {"edgevl", "edgevl.tasks.ocr", "edgevl_export.quantize"} <= found  # the walk works
    assert found - _declared() == set(), "add these to [tool.setuptools] packages in pyproject.toml"
    assert _declared() - found == set(), "pyproject.toml names packages that do not exist"
