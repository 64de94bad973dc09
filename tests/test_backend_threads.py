"""Thread settings the backends derive from the CPUs this process may use, and ORT's spinning switch."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pytest

import edgevl.backends.ort as ortb
from edgevl.backends import EngineOptions


def _captured(monkeypatch: pytest.MonkeyPatch, path: Path, opts: EngineOptions) -> Any:
    seen: dict[str, Any] = {}
    real = ortb.ort.InferenceSession

    def spy(p: str, sess_options: Any = None, providers: Any = None) -> Any:
        seen["so"] = sess_options
        return real(p, sess_options=sess_options, providers=providers)

    monkeypatch.setattr(ortb.ort, "InferenceSession", spy)
    ortb._session(path, opts)
    return seen["so"]


def test_ort_threads_default_to_the_usable_cpus(monkeypatch: pytest.MonkeyPatch,
                                                affine_onnx: tuple[Path, np.ndarray]) -> None:
    monkeypatch.setattr(ortb, "usable_cpus", lambda: 3)
    assert _captured(monkeypatch, affine_onnx[0], EngineOptions()).intra_op_num_threads == 3
    assert _captured(monkeypatch, affine_onnx[0], EngineOptions(threads=1)).intra_op_num_threads == 1


def test_ort_spinning_switch(monkeypatch: pytest.MonkeyPatch, affine_onnx: tuple[Path, np.ndarray]) -> None:
    so = _captured(monkeypatch, affine_onnx[0], EngineOptions(spinning=False))
    assert so.get_session_config_entry("session.intra_op.allow_spinning") == "0"
    so = _captured(monkeypatch, affine_onnx[0], EngineOptions(spinning=True))
    assert so.get_session_config_entry("session.intra_op.allow_spinning") == "1"


def test_openvino_threads_default_to_the_usable_cpus(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("openvino")
    import edgevl.backends.openvino as ovb

    monkeypatch.setattr(ovb, "usable_cpus", lambda: 3)
    cfg = ovb.compile_config(EngineOptions(backend="openvino"))
    assert cfg["INFERENCE_NUM_THREADS"] == 3 and cfg["ENABLE_CPU_PINNING"] is False
    assert cfg["INFERENCE_PRECISION_HINT"] == "f32"  # not the plugin's bf16 default
    assert ovb.compile_config(EngineOptions(backend="openvino", threads=1))["INFERENCE_NUM_THREADS"] == 1


def test_openvino_auto_precision_leaves_the_choice_to_the_plugin() -> None:
    pytest.importorskip("openvino")
    from edgevl.backends import OpenVinoOptions
    from edgevl.backends.openvino import compile_config
    from edgevl.errors import BackendError

    cfg = compile_config(EngineOptions(backend="openvino", openvino=OpenVinoOptions(precision="auto")))
    assert "INFERENCE_PRECISION_HINT" not in cfg
    with pytest.raises(BackendError, match="precision"):
        compile_config(EngineOptions(backend="openvino", openvino=OpenVinoOptions(precision="int4")))


def test_ocr_engines_default_to_auto_precision_and_no_spinning(monkeypatch: pytest.MonkeyPatch) -> None:
    import edgevl.tasks.ocr.stage as ocr

    seen: list[EngineOptions] = []
    monkeypatch.setattr(ocr, "open_engine", lambda b, role, opts: seen.append(opts))

    class B:
        class manifest:
            task = "text-detection"
            source: ClassVar[dict[str, str]] = {}

    class R:
        class manifest:
            task = "text-recognition"
            source: ClassVar[dict[str, str]] = {}

    ocr.open_stage(None, B(), "det", None, None)  # type: ignore[arg-type]
    ocr.open_stage(None, R(), "rec", None, EngineOptions(spinning=True))  # type: ignore[arg-type]
    det, rec = seen
    assert det.backend == "auto" and det.openvino.precision == "auto" and det.openvino.static_shapes
    assert det.spinning is False and det.mem_pattern is False
    assert rec.backend == "ort-cpu" and rec.spinning is True and not rec.openvino.static_shapes
