"""Plugin libraries: which ones a bundle needs, and loading them before TensorRT parses a graph."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path

from edgevl.backends.tensorrt.runtime import dlopen_global
from edgevl.bundle import Bundle
from edgevl.errors import BackendError
from edgevl.manifest import BackendConfig

#: extra plugin libraries for every engine, ``os.pathsep``-separated
PLUGINS_ENV = "EDGEVL_TRT_PLUGINS"


def load_plugins(paths: Sequence[Path | str],
                 dlopen: Callable[[str], object] = dlopen_global) -> list[str]:
    """Load plugin libraries globally (``dlopen``: :func:`dlopen_global`) so TensorRT's plugin
    registry sees their creators; BackendError naming a library that is missing or fails to load."""
    loaded = []
    for p in paths:
        path = Path(p)
        if not path.is_file():
            raise BackendError(f"{path}: TensorRT plugin library not found")
        try:
            dlopen(str(path))
        except OSError as e:
            raise BackendError(f"{path}: cannot load TensorRT plugin library ({e})") from e
        loaded.append(str(path))
    return loaded


def plugin_paths(bundle: Bundle, extra: Sequence[Path | str] = ()) -> list[Path]:
    """Plugins named by the bundle (``config.trt_plugins``), the environment and the caller."""
    out = [bundle.file(rel) for rel in bundle.section(BackendConfig).trt_plugins]
    env = os.environ.get(PLUGINS_ENV)
    if env:
        out += [Path(p) for p in env.split(os.pathsep) if p]
    return out + [Path(p) for p in extra]
