"""`edgevl quantize` picks --samples/--holdout/--outlier-ratio per bundle task when not given (issue 24)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from tiny_encoders import make_clip_bundle, make_text_embedding_bundle

from edgevl.cli import main
from edgevl.cli.quantize import family_defaults


@pytest.fixture()
def calls(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    q = pytest.importorskip("edgevl_export.quantize")
    seen: list[dict[str, Any]] = []

    def fake(bundle: Path, calibration: Path, out: Path, **kw: Any) -> Any:
        seen.append(kw)
        return SimpleNamespace(path=out, manifest=SimpleNamespace(precision="int8",
                                                                  extra={"quantization": {}}))

    monkeypatch.setattr(q, "quantize_bundle", fake)
    return seen


@pytest.mark.parametrize(("make", "want"), [(make_text_embedding_bundle, (1200, 500, 6.0)),
                                            (make_clip_bundle, (128, 64, None))])
def test_defaults_follow_the_bundle_family(make: Any, want: tuple[int, int, float | None], tmp_path: Path,
                                           calls: list[dict[str, Any]],
                                           capsys: pytest.CaptureFixture[str]) -> None:
    b = make(tmp_path)
    (tmp_path / "c.txt").write_text("red\nblue\n")
    assert main(["quantize", str(b.path), "-c", str(tmp_path / "c.txt"), "-o", str(tmp_path / "q"),
                 "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["precision"] == "int8"
    kw = calls[-1]
    assert (kw["samples"], kw["holdout"], kw["outlier_ratio"]) == want  # 0 is passed on as None (off)
    # what the user says wins over the family's default
    assert main(["quantize", str(b.path), "-c", str(tmp_path / "c.txt"), "-o", str(tmp_path / "q"),
                 "--samples", "7", "--holdout", "3", "--outlier-ratio", "0", "--json"]) == 0
    assert (calls[-1]["samples"], calls[-1]["holdout"], calls[-1]["outlier_ratio"]) == (7, 3, None)


def test_family_table() -> None:
    assert family_defaults("text-embedding").outlier_ratio == 6.0
    assert family_defaults("clip").outlier_ratio == 0.0 and family_defaults("text-recognition").samples == 128
