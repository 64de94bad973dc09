"""Backend capabilities are part of the Engine protocol (device_kind, providers, device_memory_mb):
every engine answers them, and the bench asks them instead of testing backend names."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import make_affine_onnx

from edgevl.backends import Engine, EngineBase, EngineOptions, backend_device_kind, open_engine, registry
from edgevl.backends.ort import provider_device
from edgevl.bench import BenchSettings, harness, tasks
from edgevl.bundle import Bundle, write_bundle


@pytest.fixture()
def bundle(tmp_path: Path) -> Bundle:
    path, _ = make_affine_onnx(tmp_path / "affine.onnx")
    return write_bundle(tmp_path / "b", name="affine", task="t", models={"model": path})


def test_onnx_runtime_cpu_engine_answers_the_protocol(bundle: Bundle) -> None:
    with open_engine(bundle, "model", EngineOptions(backend="ort-cpu")) as eng:
        assert isinstance(eng, Engine)
        assert (eng.device_kind, eng.providers) == ("cpu", ["CPUExecutionProvider"])
        assert eng.device_memory_mb() is None
    assert provider_device("CUDAExecutionProvider") == provider_device("TensorrtExecutionProvider") == "gpu"
    assert provider_device("CPUExecutionProvider") == provider_device("XnnpackExecutionProvider") == "cpu"


def test_openvino_engine_answers_the_protocol(bundle: Bundle, tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("openvino")
    monkeypatch.setenv("EDGEVL_HOME", str(tmp_path / "home"))
    with open_engine(bundle, "model", EngineOptions(backend="openvino")) as eng:
        assert isinstance(eng, Engine)
        assert (eng.device_kind, eng.providers, eng.device_memory_mb()) == ("cpu", [], None)


def test_the_registry_says_what_each_backend_runs_on() -> None:
    assert {n: backend_device_kind(n) for n in registry.BACKENDS} == {
        "ort-cpu": "cpu", "ort-cuda": "gpu", "ort-trt": "gpu", "tensorrt": "gpu", "openvino": "cpu"}
    assert backend_device_kind("auto") == "cpu" and backend_device_kind("bogus") is None


class _Stub(EngineBase):
    def __init__(self, kind: str, own: float | None) -> None:
        self.kind, self.own = kind, own

    @property
    def backend(self) -> str:
        return "stub"

    @property
    def device(self) -> str:
        return "stub"

    @property
    def device_kind(self) -> Any:
        return self.kind

    def device_memory_mb(self) -> float | None:
        return self.own


def test_bench_device_memory_comes_from_the_engine_not_the_backend_name(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(harness, "process_gpu_memory_mb", lambda: 512.0)
    assert harness._device_memory(_Stub("gpu", 40.5)) == 40.5  # TensorRT: its own figure
    assert harness._device_memory(_Stub("gpu", None)) == 512.0  # ORT CUDA: the process' (nvidia-smi)
    assert harness._device_memory(_Stub("cpu", None)) is None  # never asks nvidia-smi for a CPU engine


@pytest.mark.parametrize(("backend", "want"), [("ort-cpu", None), ("openvino", None), ("ort-cuda", 77.0),
                                               ("tensorrt", 77.0)])
def test_bench_task_reports_gpu_memory_only_for_gpu_backends(
        backend: str, want: float | None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import cv2

    cv2.imwrite(str(tmp_path / "a.png"), np.zeros((8, 8, 3), np.uint8))
    monkeypatch.setattr(tasks, "process_gpu_memory_mb", lambda: 77.0)
    run = tasks.bench_task("ocr", tmp_path, BenchSettings(backend=backend, warmup=0, iters=1),
                           timer=lambda img: {"total": 0.001})
    assert [r.device_memory_mb for r in run.results] == [want]
