"""OpenVINO engine (CPU plugin) reading a bundle's ONNX file directly.

- shapes: the model is compiled once with the ONNX file's dynamic axes; every photo's detector size
  and every recogniser batch width runs on that one compiled model (the CPU plugin caches its
  kernels per shape), measured against shape buckets in docs/ocr.md;
- threads: ``INFERENCE_NUM_THREADS`` = :func:`edgevl.backends.cpus.usable_cpus` (affinity and
  cgroup quota) unless ``threads`` says otherwise; one stream, ``PERFORMANCE_HINT`` LATENCY;
  ``ENABLE_CPU_PINNING`` off by default (pinned threads cannot move away from a busy core);
- precision: ``f32`` unless asked (the CPU plugin's own default is bf16 on CPUs with avx512_bf16 or
  AMX, which changes the numbers the bundle was checked with);
- compiled models are cached under ``$EDGEVL_HOME/openvino/<key>/`` (key: the ONNX file's sha256,
  the OpenVINO version, the compile settings), each blob with a ``meta.json`` holding its size and
  sha256: a blob that is truncated, changed, from another OpenVINO version or that OpenVINO refuses
  to import is compiled again and replaced, never run.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import tempfile
from collections import OrderedDict
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import openvino as ov

from edgevl.backends.base import Array, DeviceKind, EngineBase, EngineOptions, OpenVinoOptions, validate_feeds
from edgevl.backends.cpus import usable_cpus
from edgevl.bundle import Bundle, ModelSpec, TensorSpec, check_io, sha256_file
from edgevl.errors import BackendError, BundleError
from edgevl.paths import edgevl_home

#: bump when the cache layout or what goes into its key changes
CACHE_FORMAT = 1
#: ``auto``: the CPU plugin's own choice (bf16 on CPUs with avx512_bf16 or AMX, else f32)
PRECISIONS = ("f32", "bf16", "f16", "auto")
#: compiled shapes a ``static_shapes`` engine keeps in memory (older ones are compiled again)
STATIC_KEEP = 4
_DTYPES = {"f32": "float32", "f16": "float16", "f64": "float64", "i64": "int64", "i32": "int32",
           "u8": "uint8", "i8": "int8", "boolean": "bool"}


def ov_version() -> str:
    return str(ov.get_version())


def cache_root() -> Path:
    """``$EDGEVL_HOME/openvino``: one folder per compiled model."""
    return edgevl_home() / "openvino"


def compile_config(options: EngineOptions) -> dict[str, Any]:
    """The CPU plugin properties ``options`` ask for (pure; the cache key includes them)."""
    o: OpenVinoOptions = options.openvino
    if o.precision not in PRECISIONS:
        raise BackendError(f"OpenVINO precision {o.precision!r} not in {PRECISIONS}")
    threads = options.threads or usable_cpus()
    cfg: dict[str, Any] = {
        "PERFORMANCE_HINT": "LATENCY",
        "NUM_STREAMS": 1,
        "INFERENCE_NUM_THREADS": int(threads),
        "ENABLE_CPU_PINNING": bool(o.pinning),
    }
    if o.precision != "auto":
        cfg["INFERENCE_PRECISION_HINT"] = o.precision
    return cfg


def cache_key(model_sha256: str, config: Mapping[str, Any], version: str | None = None) -> str:
    """The cache folder name of a compiled model: what it was compiled from, by which OpenVINO, how."""
    blob = json.dumps({"format": CACHE_FORMAT, "model": model_sha256, "openvino": version or ov_version(),
                       "config": dict(config)}, sort_keys=True).encode()
    return hashlib.sha256(blob).hexdigest()[:24]


def _spec(port: Any) -> TensorSpec:
    name = port.get_any_name()
    et = port.get_element_type().get_type_name()
    dtype = _DTYPES.get(et)
    if dtype is None:
        raise BackendError(f"OpenVINO tensor {name!r}: element type {et} is not supported by edgevl")
    ps = port.get_partial_shape()
    shape = tuple(int(d.get_length()) if d.is_static else f"d{i}" for i, d in enumerate(ps))
    return TensorSpec(name=name, dtype=dtype, shape=shape)


def _read_meta(folder: Path) -> dict[str, Any] | None:
    try:
        meta = json.loads((folder / "meta.json").read_text(encoding="utf-8"))
    except (OSError, ValueError, UnicodeDecodeError):
        return None
    return meta if isinstance(meta, dict) else None


def load_cached(core: ov.Core, folder: Path, key_fields: Mapping[str, Any],
                config: Mapping[str, Any]) -> ov.CompiledModel | None:
    """The compiled model cached in ``folder`` when its meta matches ``key_fields`` and the blob's
    size and sha256 are the ones recorded; None otherwise (the caller compiles and rewrites it)."""
    meta = _read_meta(folder)
    if meta is None or any(meta.get(k) != v for k, v in key_fields.items()):
        return None
    blob_path = folder / "model.blob"
    try:
        data = blob_path.read_bytes()
    except OSError:
        return None
    if len(data) != meta.get("blob_size") or hashlib.sha256(data).hexdigest() != meta.get("blob_sha256"):
        return None
    try:
        return core.import_model(io.BytesIO(data), "CPU", dict(config))
    except Exception:  # OpenVINO raises RuntimeError subclasses of its own on a blob it refuses
        return None


def store_cached(compiled: ov.CompiledModel, folder: Path, key_fields: Mapping[str, Any]) -> None:
    """Write ``compiled``'s blob and its meta atomically (temp files + rename, blob first), so a
    reader sees either the old pair, the new pair, or a meta that does not match its blob."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        buf = io.BytesIO()
        compiled.export_model(buf)
        data = buf.getvalue()
        meta = {**key_fields, "blob_size": len(data), "blob_sha256": hashlib.sha256(data).hexdigest()}
        for name, payload in (("model.blob", data), ("meta.json", json.dumps(meta, indent=1).encode())):
            fd, tmp = tempfile.mkstemp(prefix=f".{name}-", dir=folder)
            try:
                with os.fdopen(fd, "wb") as f:
                    f.write(payload)
                os.replace(tmp, folder / name)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
    except (OSError, RuntimeError):
        return  # a read-only cache only costs the next process a compile


class OpenVinoEngine(EngineBase):
    """A compiled OpenVINO model behind the Engine protocol, with feed validation.

    ``model_sha256``: the ONNX file's digest when known (a bundle's manifest holds it), else it is
    computed; it keys the compiled-model cache. ``cache_dir`` replaces ``$EDGEVL_HOME/openvino``.

    ``options.openvino.static_shapes``: compile the model for each input shape it is fed (kept for
    the last :data:`STATIC_KEEP` shapes, each cached on disk like the dynamic one) instead of once
    with dynamic axes: the CPU plugin then plans one memory arena for the shape, which holds about
    half the memory on a detector-sized input (docs/ocr.md); the first call of a new shape pays
    the compile (about 2 s for the PP-OCRv6 detector; 0.1 s from the disk cache after that).
    """

    def __init__(self, path: Path | str, options: EngineOptions | None = None,
                 expected: ModelSpec | None = None, *, model_sha256: str | None = None,
                 cache_dir: Path | None = None) -> None:
        self.path = Path(path)
        self.options = options or EngineOptions(backend="openvino")
        if not self.path.is_file():
            raise BundleError(f"{self.path}: ONNX file not found")
        self.config = compile_config(self.options)
        self._core = ov.Core()
        self._cache_dir = cache_dir or cache_root()
        self._digest = model_sha256 if model_sha256 or not self.options.openvino.cache else None
        self._model: ov.Model | None = None
        self.cached = False
        self.cache_folder: Path | None = None
        self._static = bool(self.options.openvino.static_shapes)
        self._by_shape: OrderedDict[tuple[tuple[int, ...], ...], Any] = OrderedDict()
        self._expected = expected
        self._open = True
        self._compiled: ov.CompiledModel | None = None
        self._request: Any = None
        self._latest: ov.CompiledModel | None = None  # a static engine's last compiled shape
        if self._static and expected is not None:
            # compiled per shape on first use: the manifest's IO stands in until then and is checked
            # against the first compiled model, so the dynamic model is never compiled (a fresh
            # process saves its import, ~70 ms for the PP-OCRv6 detector, and its memory)
            self._inputs, self._outputs = expected.inputs, expected.outputs
            return
        compiled = self._compile(None)
        self._compiled = compiled
        self._request = compiled.create_infer_request()
        self._inputs, self._outputs = self._io(compiled)

    def _io(self, compiled: ov.CompiledModel) -> tuple[tuple[TensorSpec, ...], tuple[TensorSpec, ...]]:
        """The compiled model's inputs and outputs, checked against the manifest's when one is known
        (the manifest's dimension names kept)."""
        inputs = tuple(_spec(p) for p in compiled.inputs)
        outputs = tuple(_spec(p) for p in compiled.outputs)
        if self._expected is not None:
            check_io(self._expected, (inputs, outputs), str(self.path))
            inputs = tuple(TensorSpec(t.name, t.dtype, t.shape, e.dims)
                           for t, e in zip(inputs, self._expected.inputs, strict=True))
        return inputs, outputs

    def _read(self) -> ov.Model:
        if self._model is None:
            try:
                self._model = self._core.read_model(str(self.path))
            except Exception as e:  # OpenVINO's own exception types
                first = str(e).strip().splitlines()[0][:300] if str(e).strip() else type(e).__name__
                raise BundleError(f"{self.path}: OpenVINO cannot read this model ({first})") from e
        return self._model

    def _compile(self, shapes: tuple[tuple[int, ...], ...] | None) -> ov.CompiledModel:
        """The model compiled with its dynamic axes (``shapes`` None) or for ``shapes`` (one per
        input), from the disk cache when a valid blob is there."""
        key_fields: dict[str, Any] = {}
        folder: Path | None = None
        if self.options.openvino.cache:
            if self._digest is None:
                self._digest = sha256_file(self.path)
            cfg = {**self.config, **({"shapes": [list(s) for s in shapes]} if shapes else {})}
            key_fields = {"format": CACHE_FORMAT, "model_sha256": self._digest, "openvino": ov_version(),
                          "config": {k: str(v) for k, v in cfg.items()}}
            folder = self._cache_dir / cache_key(self._digest, cfg)
            got = load_cached(self._core, folder, key_fields, self.config)
            if shapes is None:
                self.cached, self.cache_folder = got is not None, folder
            if got is not None:
                return got
        model = self._read()
        if shapes is not None:
            model = model.clone()
            model.reshape({i: ov.PartialShape(list(s)) for i, s in enumerate(shapes)})
        try:
            compiled = self._core.compile_model(model, "CPU", self.config)
        except Exception as e:  # OpenVINO's own exception types
            first = str(e).strip().splitlines()[0][:300] if str(e).strip() else type(e).__name__
            raise BundleError(f"{self.path}: OpenVINO cannot compile this model ({first})") from e
        if folder is not None:
            store_cached(compiled, folder, key_fields)
        return compiled

    def _request_for(self, feeds: Mapping[str, Array]) -> Any:
        if not self._static:
            return self._request
        shapes = tuple(tuple(int(n) for n in feeds[t.name].shape) for t in self._inputs)
        req = self._by_shape.get(shapes)
        if req is None:
            compiled = self._compile(shapes)
            if self._compiled is None and self._latest is None:  # the first compile: check its IO
                self._io(compiled)
            self._latest = compiled
            req = compiled.create_infer_request()
            self._by_shape[shapes] = req
            while len(self._by_shape) > STATIC_KEEP:
                self._by_shape.popitem(last=False)
        else:
            self._by_shape.move_to_end(shapes)
        return req

    @classmethod
    def from_bundle(cls, bundle: Bundle, role: str = "model",
                    options: EngineOptions | None = None) -> OpenVinoEngine:
        spec = bundle.model(role)
        return cls(bundle.model_path(role), options, expected=spec,
                   model_sha256=bundle.manifest.files.get(spec.file))

    @property
    def backend(self) -> str:
        return self.options.backend

    @property
    def device(self) -> str:
        if not self._open:
            return "closed"
        c = self.config
        return (f"OpenVINO {ov_version().split('-')[0]} CPU ({c['INFERENCE_NUM_THREADS']} threads, "
                f"{self.precision})")

    @property
    def device_kind(self) -> DeviceKind:
        return "cpu"  # the CPU plugin only

    @property
    def precision(self) -> str:
        """The inference precision the plugin runs (``f32``, ``bf16``, ``f16``)."""
        if not self._open:
            return "closed"
        compiled = self._compiled or self._latest
        if compiled is None:  # a static engine before its first shape: what was asked for
            return str(self.config.get("INFERENCE_PRECISION_HINT", "auto"))
        try:
            return str(compiled.get_property("INFERENCE_PRECISION_HINT").get_type_name())
        except Exception:  # a property this plugin version does not report
            return str(self.config.get("INFERENCE_PRECISION_HINT", "auto"))

    def run(self, feeds: Mapping[str, Array]) -> dict[str, Array]:
        if not self._open:
            raise BackendError(f"{self.path}: engine is closed")
        validate_feeds(self._inputs, feeds)
        try:
            res = self._request_for(feeds).infer({k: np.ascontiguousarray(v) for k, v in feeds.items()},
                                                 share_outputs=False)
        except (BackendError, BundleError):  # a static compile that failed, or IO unlike the manifest
            raise
        except Exception as e:  # OpenVINO's own exception types
            raise BackendError(f"{self.path}: OpenVINO inference failed ({str(e)[:300]})") from e
        return {o.name: np.asarray(v) for o, v in zip(self._outputs, res.to_tuple(), strict=True)}

    def close(self) -> None:
        self._open = False
        self._compiled = self._request = self._latest = None
        self._by_shape.clear()
