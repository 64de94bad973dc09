"""The manifest document (schema 2): :class:`Manifest` and its :class:`ModelSpec` /
:class:`TensorSpec`, parsed and validated field by field (each error a :class:`BundleError`
naming the field), schema 1 upgraded in memory. The task's sections are parsed once, through the
task registry (:mod:`edgevl.tasks.registry`), and kept typed (:meth:`Manifest.section`).
:mod:`edgevl.bundle` reads the file, confines and verifies what it names.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import PurePosixPath, PureWindowsPath
from typing import Any, TypeVar

from edgevl.errors import BundleError
from edgevl.manifest import MAX_SIZE, DimRange, check_json, check_relative, get_str, no_unknown, obj
from edgevl.tasks.registry import input_dims, validate_sections

S = TypeVar("S")

SCHEMA_VERSION = 2
#: schema versions this edgevl reads (older ones are upgraded in memory)
READABLE_SCHEMAS = (1, 2)
PRECISIONS = ("fp32", "fp16", "int8")
_TOP_KEYS = ("schema_version", "name", "task", "precision", "models", "preprocess", "config", "source",
             "extra", "files")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")

Dim = int | str
JSONDict = dict[str, Any]


def _where_rebuild(where: str) -> str:
    return (f"{where}: rebuild the bundle with this edgevl (`edgevl export ...` for CLIP/BERT checkpoints, "
            f"`edgevl models build` for the PP-OCR bundles, `edgevl quantize` for int8 ones)")


@dataclass(frozen=True)
class TensorSpec:
    """One model input or output: name, numpy dtype name, shape (ints or symbolic names) and, for
    inputs, one :class:`DimRange` per axis."""

    name: str
    dtype: str
    shape: tuple[Dim, ...]
    dims: tuple[DimRange, ...] = ()

    def to_dict(self) -> JSONDict:
        out: JSONDict = {"name": self.name, "dtype": self.dtype, "shape": list(self.shape)}
        if self.dims:
            out["dims"] = [r.to_dict() for r in self.dims]
        return out

    @staticmethod
    def from_dict(d: Any, where: str = "tensor") -> TensorSpec:
        d = obj(d, where)
        no_unknown(d, ("name", "dtype", "shape", "dims"), where)
        name = get_str(d, "name", where)
        dtype = get_str(d, "dtype", where)
        shape_raw = d.get("shape")
        if not isinstance(shape_raw, list):
            raise BundleError(f"{where}.shape: expected a list of sizes or names")
        shape: list[Dim] = []
        for i, s in enumerate(shape_raw):
            ok = (isinstance(s, int) and not isinstance(s, bool) and -1 <= s <= MAX_SIZE) or (
                isinstance(s, str) and len(s) <= 256)
            if not ok:
                raise BundleError(f"{where}.shape[{i}]: expected a size 0..{MAX_SIZE} or a symbolic name")
            shape.append(s)
        dims: tuple[DimRange, ...] = ()
        if "dims" in d:
            raw = d["dims"]
            if not isinstance(raw, list) or len(raw) != len(shape):
                raise BundleError(f"{where}.dims: expected a list of {len(shape)} ranges (one per axis)")
            dims = tuple(DimRange.from_dict(r, f"{where}.dims[{i}]") for i, r in enumerate(raw))
            for i, (s, r) in enumerate(zip(shape, dims, strict=True)):
                if isinstance(s, int) and s > 0 and (r.min, r.max) != (s, s):
                    raise BundleError(f"{where}.dims[{i}]: axis is fixed to {s}, range says {r.min}..{r.max}")
        return TensorSpec(name=name, dtype=dtype, shape=tuple(shape), dims=dims)


@dataclass(frozen=True)
class ModelSpec:
    """An ONNX file of the bundle and its IO."""

    file: str
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]

    def to_dict(self) -> JSONDict:
        return {
            "file": self.file,
            "inputs": [t.to_dict() for t in self.inputs],
            "outputs": [t.to_dict() for t in self.outputs],
        }

    @staticmethod
    def from_dict(d: Any, where: str = "model") -> ModelSpec:
        d = obj(d, where)
        no_unknown(d, ("file", "inputs", "outputs"), where)
        f = get_str(d, "file", where)
        check_relative(f, f"{where}.file")
        io: dict[str, tuple[TensorSpec, ...]] = {}
        for key in ("inputs", "outputs"):
            raw = d.get(key)
            if not isinstance(raw, list):
                raise BundleError(f"{where}.{key}: expected a list of tensors, got "
                                  f"{type(raw).__name__ if raw is not None else 'nothing'}")
            io[key] = tuple(TensorSpec.from_dict(t, f"{where}.{key}[{i}]") for i, t in enumerate(raw))
        return ModelSpec(file=f, inputs=io["inputs"], outputs=io["outputs"])


def _looks_absolute(v: str) -> bool:
    return (v.startswith(("/", "~", "\\\\")) or PureWindowsPath(v).is_absolute()
            or PurePosixPath(v).is_absolute())


def machine_paths(d: Any, where: str) -> list[str]:
    """Fields under ``d`` that hold an absolute path."""
    out: list[str] = []
    if isinstance(d, Mapping):
        for k, v in d.items():
            out += machine_paths(v, f"{where}.{k}")
    elif isinstance(d, list):
        for i, v in enumerate(d):
            out += machine_paths(v, f"{where}[{i}]")
    elif isinstance(d, str) and _looks_absolute(d):
        out.append(where)
    return out


def _strip_paths(d: Any) -> Any:
    if isinstance(d, Mapping):
        return {k: _strip_paths(v) for k, v in d.items()}
    if isinstance(d, list):
        return [_strip_paths(v) for v in d]
    if isinstance(d, str) and _looks_absolute(d):
        return PureWindowsPath(d).name if "\\" in d else PurePosixPath(d).name
    return d


@dataclass(frozen=True)
class Manifest:
    """The parsed ``manifest.json`` (schema 2; schema 1 upgraded in memory, ``upgraded_from`` = 1)."""

    name: str
    task: str
    precision: str
    models: Mapping[str, ModelSpec]
    files: Mapping[str, str]
    preprocess: Mapping[str, Any] = field(default_factory=dict)
    config: Mapping[str, Any] = field(default_factory=dict)
    source: Mapping[str, Any] = field(default_factory=dict)
    extra: Mapping[str, Any] = field(default_factory=dict)
    schema_version: int = SCHEMA_VERSION
    upgraded_from: int | None = None
    #: the typed sections of ``preprocess`` and ``config``, parsed once at load (by class; read them
    #: with :meth:`section`)
    sections: Mapping[type[Any], Any] = field(default_factory=dict, compare=False, repr=False)

    def section(self, cls: type[S], where: str | None = None) -> S:
        """The parsed section ``cls`` (``DetectorPreprocess``, ``TokenizerSpec``…). One the task does
        not always have (a CLIP bundle's image preprocessing when it has no image model) is parsed
        here, BundleError naming ``where`` (default ``preprocess`` / ``config``) when it is missing."""
        got = self.sections.get(cls)
        if got is None:
            part: str = getattr(cls, "PART", "config")
            raw = self.preprocess if part == "preprocess" else self.config
            got = cls.from_manifest(raw, where or part)  # type: ignore[attr-defined]
        if not isinstance(got, cls):  # pragma: no cover - sections are keyed by their own class
            raise BundleError(f"{self.name}: section {cls.__name__} is a {type(got).__name__}")
        return got

    def to_dict(self) -> JSONDict:
        return {
            "schema_version": self.schema_version,
            "name": self.name,
            "task": self.task,
            "precision": self.precision,
            "models": {k: v.to_dict() for k, v in self.models.items()},
            "preprocess": dict(self.preprocess),
            "config": dict(self.config),
            "source": dict(self.source),
            "extra": dict(self.extra),
            "files": dict(self.files),
        }

    @staticmethod
    def from_dict(d: Any, where: str = "manifest") -> Manifest:
        """Validate every field (type and range) and build the manifest; BundleError names the field."""
        d = obj(d, where)
        version = d.get("schema_version")
        if isinstance(version, bool) or version not in READABLE_SCHEMAS:
            raise BundleError(
                _where_rebuild(f"{where}: schema_version {str(version)[:20]!r} is not one this edgevl reads "
                               f"({', '.join(map(str, READABLE_SCHEMAS))})"))
        check_json(d, where)
        no_unknown(d, _TOP_KEYS, where)
        missing = [k for k in ("name", "task", "precision", "models", "files") if k not in d]
        if missing:
            raise BundleError(f"{where}: missing keys {missing}")
        name = get_str(d, "name", where)
        task = get_str(d, "task", where)
        precision = get_str(d, "precision", where, choices=PRECISIONS)
        models_raw = obj(d["models"], f"{where}.models")
        files_raw = obj(d["files"], f"{where}.files")
        parts = {k: obj(d.get(k, {}), f"{where}.{k}") for k in ("preprocess", "config", "source", "extra")}
        files: dict[str, str] = {}
        for rel, digest in files_raw.items():
            check_relative(rel, f"{where}.files")
            if not isinstance(digest, str) or not _SHA256.match(digest):
                raise BundleError(f"{where}.files[{rel!r}]: expected a sha256 (64 lowercase hex digits)")
            files[rel] = digest
        models = {}
        for role, spec in models_raw.items():
            check_relative(role, f"{where}.models")
            models[role] = ModelSpec.from_dict(spec, f"{where}.models.{role}")
        pre, cfg, source = parts["preprocess"], parts["config"], parts["source"]
        upgraded_from = None
        if version == 1:
            upgraded_from = 1
            source = _strip_paths(source)
        else:
            bad = machine_paths(source, f"{where}.source")
            if bad:
                raise BundleError(f"{bad[0]}: an absolute path of the build machine; a manifest records "
                                  f"names and digests only")
        try:
            sections = validate_sections(task, models, pre, cfg)
        except BundleError as e:
            msg = f"{where}.{e}"
            raise BundleError(_where_rebuild(msg) if version == 1 else msg) from None
        if version == 1:  # schema 1 had no ranges: derive them with the writer's policy
            models = {
                role: replace(spec, inputs=tuple(
                    replace(t, dims=input_dims(task, role, t.shape, t.dtype, pre, cfg)) for t in spec.inputs))
                for role, spec in models.items()}
        else:
            for role, spec in models.items():
                for i, t in enumerate(spec.inputs):
                    if len(t.dims) != len(t.shape):  # a scalar input has no axes to range
                        raise BundleError(f"{where}.models.{role}.inputs[{i}].dims: required in schema 2 "
                                          f"(role and min/opt/max of every axis)")
        return Manifest(
            schema_version=SCHEMA_VERSION, name=name, task=task, precision=precision, models=models,
            files=files, preprocess=dict(pre), config=dict(cfg), source=dict(source),
            extra=dict(parts["extra"]), upgraded_from=upgraded_from, sections=sections)
