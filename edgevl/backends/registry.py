"""The backend registry: one table of backends used by the runtime and by ``edgevl bench`` alike.

Each entry says how to tell, without loading a model, whether the backend can run here, and how to
open a bundle's model on it. ``open_engine`` is the only way engines are opened.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from edgevl.backends.base import DeviceKind, Engine, EngineOptions
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
    #: what its engines run on (each engine also says so: ``Engine.device_kind``); for callers
    #: that hold no engine, such as a whole pipeline timed by ``edgevl bench --task``
    device_kind: DeviceKind


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


def _ov_unavailable() -> str | None:
    if importlib.util.find_spec("openvino") is None:
        return "openvino is not installed (pip install 'edgevl[openvino]')"
    return None


def _ov_open(bundle: Bundle, role: str, options: EngineOptions) -> Engine:
    why = _ov_unavailable()
    if why is not None:
        raise BackendError(f"backend 'openvino': {why}")
    from edgevl.backends.openvino import OpenVinoEngine

    return OpenVinoEngine.from_bundle(bundle, role, options)


REGISTRY: dict[str, Backend] = {
    "ort-cpu": Backend("ort-cpu", "ONNX Runtime, CPU", _ort_unavailable("ort-cpu"), _ort_open, "cpu"),
    "ort-cuda": Backend("ort-cuda", "ONNX Runtime, CUDA execution provider", _ort_unavailable("ort-cuda"),
                        _ort_open, "gpu"),
    "ort-trt": Backend("ort-trt", "ONNX Runtime, TensorRT execution provider", _ort_unavailable("ort-trt"),
                       _ort_open, "gpu"),
    "tensorrt": Backend("tensorrt", "native TensorRT engine built from the bundle's ONNX", _trt_unavailable,
                        _trt_open, "gpu"),
    "openvino": Backend("openvino", "OpenVINO, CPU plugin, reading the bundle's ONNX", _ov_unavailable,
                        _ov_open, "cpu"),
}
BACKENDS = tuple(REGISTRY)
#: ``auto``: the first of these that can run here; ordered by the measurements in docs/ocr.md
AUTO_ORDER = ("openvino", "ort-cpu")


def resolve_backend(name: str) -> str:
    """``name``, or for ``auto`` the fastest CPU backend installed (:data:`AUTO_ORDER`)."""
    if name != "auto":
        return name
    for cand in AUTO_ORDER:
        if REGISTRY[cand].unavailable() is None:
            return cand
    return "ort-cpu"


def backend_device_kind(name: str) -> DeviceKind | None:
    """What backend ``name`` (``auto`` resolved) runs on; None for a name the registry lacks."""
    entry = REGISTRY.get(resolve_backend(name))
    return entry.device_kind if entry is not None else None


def get_backend(name: str) -> Backend:
    """The registered backend ``name``; BackendError listing the known ones."""
    try:
        return REGISTRY[resolve_backend(name)]
    except KeyError:
        raise BackendError(f"unknown backend {name!r}; choose one of auto, {', '.join(BACKENDS)}") from None


def backend_unavailable(name: str) -> str | None:
    """Why ``name`` cannot run here, or None when it can (checked without loading a model)."""
    name = resolve_backend(name)
    if name not in REGISTRY:
        return f"unknown backend {name!r}"
    return REGISTRY[name].unavailable()


def require_backend(name: str) -> str:
    """``name`` resolved (``auto`` → the fastest installed), or BackendError saying why it cannot
    run here: the CLI calls this before building or loading anything."""
    why = backend_unavailable(name)
    if why is not None:
        raise BackendError(f"backend {name!r}: {why}")
    return resolve_backend(name)


def open_engine(bundle: Bundle, role: str = "model", options: EngineOptions | None = None) -> Engine:
    """Open the bundle's model ``role`` on the backend named in ``options``.

    Raises BackendError when the backend is unknown, cannot run here, or silently fell back to
    another device.
    """
    opts = options or EngineOptions()
    if opts.backend == "auto":
        opts = replace(opts, backend=resolve_backend("auto"))
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
    rel = bundle.section(BackendConfig).trt_graphs.get(role)
    if rel is not None:
        out.append(bundle.file(rel))
    return out
