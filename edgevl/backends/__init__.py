"""Backends: the Engine protocol (:mod:`edgevl.backends.base`) and the registry that opens
engines (:mod:`edgevl.backends.registry`); ONNX Runtime in ``ort.py``, OpenVINO in
``openvino.py``, native TensorRT in the ``tensorrt/`` package (runtime, plan builder, CUDA layer;
both imported only when used).
"""

from __future__ import annotations

from edgevl.backends.base import (
    Array,
    DeviceKind,
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
    backend_device_kind,
    backend_unavailable,
    get_backend,
    open_engine,
    require_backend,
    resolve_backend,
)

__all__ = ["BACKENDS", "REGISTRY", "Array", "Backend", "DeviceKind", "Engine", "EngineBase", "EngineOptions",
           "OpenVinoOptions", "TensorRTOptions", "backend_device_kind", "backend_unavailable", "get_backend",
           "open_engine", "require_backend", "resolve_backend", "validate_feeds"]
