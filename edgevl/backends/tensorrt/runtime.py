"""What the TensorRT backend calls into, gathered in one injectable :class:`Runtime`.

The ``tensorrt`` module, the CUDA layer (:class:`~edgevl.backends.tensorrt.cuda.CudaApi`) and the
dynamic loader that makes plugin libraries visible to TensorRT's plugin registry. The engine and the
builder take a ``Runtime`` (default: :func:`default_runtime`, the real ones), so tests run the whole
path against fakes that record the calls.
"""

from __future__ import annotations

import ctypes
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from edgevl.backends.tensorrt.cuda import CudaApi, CudaRuntime
from edgevl.errors import BackendError

#: the oldest TensorRT the backend is written for (name-based tensor API, ``execute_async_v3``)
MIN_VERSION = (8, 5)


def version_tuple(v: str) -> tuple[int, ...]:
    """``"10.3.0.26"`` → ``(10, 3, 0)``: the first three numbers of a version string (``(0,)`` if none)."""
    return tuple(int(x) for x in re.findall(r"\d+", v)[:3]) or (0,)


def import_tensorrt() -> Any:
    """The ``tensorrt`` module, or BackendError saying how to get it (or that it is too old)."""
    try:
        import tensorrt as trt
    except ImportError as e:
        raise BackendError(
            "tensorrt is not installed: pip install 'edgevl[tensorrt]' on a machine with an NVIDIA GPU "
            "and CUDA (on a Jetson it ships with JetPack), or use --backend ort-cpu / ort-cuda"
        ) from e
    check_version(str(getattr(trt, "__version__", "0")))
    return trt


def check_version(version: str) -> None:
    """BackendError when TensorRT ``version`` is older than :data:`MIN_VERSION`."""
    if version_tuple(version) < MIN_VERSION:
        raise BackendError(f"TensorRT {version} is older than 8.5, which this backend needs")


def dlopen_global(path: str) -> object:
    """Load a shared library with ``RTLD_GLOBAL`` (its plugin creators register themselves)."""
    return ctypes.CDLL(path, mode=ctypes.RTLD_GLOBAL)


@dataclass(frozen=True)
class Runtime:
    """The TensorRT module, the CUDA layer and the plugin loader one engine or build uses."""

    trt: Any
    cuda: CudaApi
    dlopen: Callable[[str], object] = field(default=dlopen_global)

    def logger(self) -> Any:
        """A TensorRT logger at WARNING."""
        return self.trt.Logger(self.trt.Logger.WARNING)


def default_runtime() -> Runtime:
    """The installed TensorRT and cuda-python (BackendError saying what to install when missing)."""
    trt = import_tensorrt()
    return Runtime(trt, CudaRuntime())
