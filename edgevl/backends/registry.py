"""The backend registry: one table of backends used by the runtime and by ``edgevl bench`` alike.

Each entry says how to tell, without loading a model, whether the backend can run here, and how to
open a bundle's model on it. ``open_engine`` is the only way engines are opened.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from edgevl.backends.base import Engine, EngineOptions
from edgevl.bundle import Bundle, check_external_data
from edgevl.errors import BackendError
from edgevl.onnxguard import inspect_onnx


@dataclass(frozen=True)
class Backend:
    """One registered backend."""

    name: str
    description: str
    #: why it cannot run here (None when it can), checked without loading a model
    unavailable: Callable[[], str | None]
    open: Callable[[Bundle, str, EngineOptions], Engine]


def _ort_unavailable(name: str) -> Callable[[], str | None]:
    def check() -> str | None:
        from edgevl.backends.ort import unavailable

        return unavailable(name)

    return check


def _ort_open(bundle: Bundle, role: str, options: EngineOptions) -> Engine:
    from edgevl.backends.ort import OrtEngine

    return OrtEngine.from_bundle(bundle, role, options)


def _trt_unavailable() -> str | None:
    if importlib.util.find_spec("tensorrt") is None:
        return "tensorrt is not installed (pip install 'edgevl[tensorrt]' on a machine with CUDA)"
    return None


def _trt_open(bundle: Bundle, role: str, options: EngineOptions) -> Engine:
    from edgevl.backends.tensorrt import TensorRTEngine

    return TensorRTEngine.from_bundle(bundle, role, options)


REGISTRY: dict[str, Backend] = {
    "ort-cpu": Backend("ort-cpu", "ONNX Runtime, CPU", _ort_unavailable("ort-cpu"), _ort_open),
    "ort-cuda": Backend("ort-cuda", "ONNX Runtime, CUDA execution provider", _ort_unavailable("ort-cuda"),
                        _ort_open),
    "ort-trt": Backend("ort-trt", "ONNX Runtime, TensorRT execution provider", _ort_unavailable("ort-trt"),
                       _ort_open),
    "tensorrt": Backend("tensorrt", "native TensorRT engine built from the bundle's ONNX", _trt_unavailable,
                        _trt_open),
}
BACKENDS = tuple(REGISTRY)


def get_backend(name: str) -> Backend:
    """The registered backend ``name``; BackendError listing the known ones."""
    try:
        return REGISTRY[name]
    except KeyError:
        raise BackendError(f"unknown backend {name!r}; choose one of {', '.join(BACKENDS)}") from None


def backend_unavailable(name: str) -> str | None:
    """Why ``name`` cannot run here, or None when it can (checked without loading a model)."""
    if name not in REGISTRY:
        return f"unknown backend {name!r}"
    return REGISTRY[name].unavailable()


def open_engine(bundle: Bundle, role: str = "model", options: EngineOptions | None = None) -> Engine:
    """Open the bundle's model ``role`` on the backend named in ``options``.

    Raises BackendError when the backend is unknown, cannot run here, or silently fell back to
    another device.
    """
    opts = options or EngineOptions()
    backend = get_backend(opts.backend)
    # every backend reads the same ONNX: its size bombs, loop bounds and external-data files are
    # checked (against the manifest's checksummed files) before any session or builder sees it
    for path in model_graphs(bundle, role):
        check_external_data(bundle, path, inspect_onnx(path).external_files)
    return backend.open(bundle, role, opts)


def model_graphs(bundle: Bundle, role: str) -> list[Path]:
    """The ONNX files a backend may read for ``role``: the model and, when the bundle has one, its
    TensorRT plugin-rewritten graph (``config.tensorrt.graphs``)."""
    from edgevl.manifest import BackendConfig

    out = [bundle.model_path(role)]
    rel = BackendConfig.from_manifest(bundle.manifest.config).trt_graphs.get(role)
    if rel is not None:
        out.append(bundle.file(rel))
    return out
