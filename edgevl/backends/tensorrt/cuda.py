"""The few CUDA runtime calls the TensorRT backend makes, behind one small interface.

:class:`CudaApi` is what the engine and the builder call; :class:`CudaRuntime` implements it with
cuda-python's runtime module (``cuda.bindings.runtime`` from 12.6, ``cuda.cudart`` before), checking
every call. Tests hand the engine a fake that records the calls (tests/fake_tensorrt.py).
"""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np

from edgevl.errors import BackendError

HostArray = np.ndarray[Any, Any]


class CudaApi(Protocol):
    """Device memory, one stream, copies and synchronisation: all the TensorRT backend needs."""

    def device(self) -> tuple[str, str]:
        """(GPU name, compute capability such as ``8.7``) of the current device."""
        ...

    def malloc(self, nbytes: int) -> int: ...

    def free(self, ptr: int) -> None: ...

    def stream(self) -> Any: ...

    def stream_handle(self, stream: Any) -> int:
        """The integer handle TensorRT's Python binding takes for ``stream``."""
        ...

    def destroy_stream(self, stream: Any) -> None: ...

    def h2d(self, dst: int, src: HostArray, stream: Any) -> None: ...

    def d2h(self, dst: HostArray, src: int, stream: Any) -> None: ...

    def sync(self, stream: Any) -> None: ...


def import_cudart() -> Any:
    """cuda-python's runtime module, or BackendError saying how to get it."""
    try:
        from cuda.bindings import runtime as cudart
    except ImportError:
        try:
            from cuda import cudart
        except ImportError as e:
            raise BackendError("cuda-python is not installed: pip install 'edgevl[tensorrt]'") from e
    return cudart


class CudaRuntime:
    """:class:`CudaApi` on cuda-python; every call is checked (BackendError naming the CUDA error)."""

    def __init__(self, rt: Any | None = None) -> None:
        self.rt = rt if rt is not None else import_cudart()

    def check(self, result: Any) -> Any:
        err, *rest = result if isinstance(result, tuple) else (result,)
        if err != self.rt.cudaError_t.cudaSuccess:
            name = self.rt.cudaGetErrorName(err)[1]
            raise BackendError(f"CUDA call failed: {name.decode() if isinstance(name, bytes) else name}")
        if not rest:
            return None
        return rest[0] if len(rest) == 1 else tuple(rest)

    def device(self) -> tuple[str, str]:
        dev = self.check(self.rt.cudaGetDevice())
        props = self.check(self.rt.cudaGetDeviceProperties(dev))
        name = props.name.decode(errors="replace") if isinstance(props.name, bytes) else str(props.name)
        return name.strip("\x00 "), f"{props.major}.{props.minor}"

    def malloc(self, nbytes: int) -> int:
        return int(self.check(self.rt.cudaMalloc(max(nbytes, 1))))

    def free(self, ptr: int) -> None:
        self.check(self.rt.cudaFree(ptr))

    def stream(self) -> Any:
        return self.check(self.rt.cudaStreamCreate())

    def stream_handle(self, stream: Any) -> int:
        # cudaStream_t → the integer handle TensorRT's binding takes
        return int(stream) if hasattr(stream, "__int__") else int(stream.getPtr())

    def destroy_stream(self, stream: Any) -> None:
        self.check(self.rt.cudaStreamDestroy(stream))

    def h2d(self, dst: int, src: HostArray, stream: Any) -> None:
        kind = self.rt.cudaMemcpyKind.cudaMemcpyHostToDevice
        self.check(self.rt.cudaMemcpyAsync(dst, src.ctypes.data, src.nbytes, kind, stream))

    def d2h(self, dst: HostArray, src: int, stream: Any) -> None:
        kind = self.rt.cudaMemcpyKind.cudaMemcpyDeviceToHost
        self.check(self.rt.cudaMemcpyAsync(dst.ctypes.data, src, dst.nbytes, kind, stream))

    def sync(self, stream: Any) -> None:
        self.check(self.rt.cudaStreamSynchronize(stream))
