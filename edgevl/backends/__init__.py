"""Backends: the Engine protocol (:mod:`edgevl.backends.base`) and the registry that opens
engines (:mod:`edgevl.backends.registry`); ONNX Runtime in ``ort.py``, OpenVINO in
``openvino.py``, native TensorRT in ``tensorrt.py`` (both imported only when used).
"""

from __future__ import annotations

from edgevl.backends.base import (
    Array,
    Engine,
    EngineBase,
    EngineOptions,
    OpenVinoOptions,
    TensorRTOptions,
    validate_feeds,
)
from edgevl.backends.registry import (
    BACKENDS,
    REGISTRY,
    Backend,
    backend_unavailable,
    get_backend,
    open_engine,
    require_backend,
    resolve_backend,
)

__all__ = ["BACKENDS", "REGISTRY", "Array", "Backend", "Engine", "EngineBase", "EngineOptions",
           "OpenVinoOptions",
           "TensorRTOptions", "backend_unavailable", "get_backend", "open_engine", "require_backend",
           "resolve_backend",
           "validate_feeds"]
