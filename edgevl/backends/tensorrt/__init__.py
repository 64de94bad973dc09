"""The native TensorRT backend, in one package (imported only when used; TensorRT itself only when
an engine is opened or built).

- :mod:`.engine`: :class:`TensorRTEngine`, the Engine behind ``--backend tensorrt``;
- :mod:`.build`: plan building (``edgevl engine build`` is :func:`build_engines`);
- :mod:`.plans`: graph/precision choice, plan and timing-cache names (pure);
- :mod:`.profile`: the optimisation profile from the manifest's input ranges (pure);
- :mod:`.plugins`: plugin libraries a bundle needs, and loading them;
- :mod:`.runtime`: :class:`Runtime` (the ``tensorrt`` module, the CUDA layer, the plugin loader:
  what tests replace with fakes), :func:`import_tensorrt`, :func:`version_tuple`;
- :mod:`.cuda`: :class:`CudaApi` and its cuda-python implementation :class:`CudaRuntime`.

Never run on TensorRT here (no GPU, no TensorRT on the development machines): see the warning in
:mod:`.engine`.
"""

from __future__ import annotations

from edgevl.backends.tensorrt.build import Prepared, build_engines, build_serialized, ensure_plan, prepare
from edgevl.backends.tensorrt.cuda import CudaApi, CudaRuntime, import_cudart
from edgevl.backends.tensorrt.engine import TensorRTEngine
from edgevl.backends.tensorrt.plans import BuildResult, EngineChoice, choose, record_default
from edgevl.backends.tensorrt.plugins import load_plugins, plugin_paths
from edgevl.backends.tensorrt.profile import Profile, default_profile
from edgevl.backends.tensorrt.runtime import (
    MIN_VERSION,
    Runtime,
    default_runtime,
    import_tensorrt,
    version_tuple,
)

__all__ = ["MIN_VERSION", "BuildResult", "CudaApi", "CudaRuntime", "EngineChoice", "Prepared", "Profile",
           "Runtime", "TensorRTEngine", "build_engines", "build_serialized", "choose", "default_profile",
           "default_runtime", "ensure_plan", "import_cudart", "import_tensorrt", "load_plugins",
           "plugin_paths", "prepare", "record_default", "version_tuple"]
