"""Model bundles: a directory with ``manifest.json`` and the files it names.

The manifest is the contract between the build side (``export/``) and the runtime: schema
version, task, the ONNX models with their inputs and outputs, preprocessing, task config
(thresholds, charset or tokenizer file), precision, source digest and the sha256 of every file.
Nothing the runtime needs is guessed at load time.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgevl.errors import BundleError

SCHEMA_VERSION = 1
MANIFEST_NAME = "manifest.json"
PRECISIONS = ("fp32", "fp16", "int8")

Dim = int | str
JSONDict = dict[str, Any]


@dataclass(frozen=True)
class TensorSpec:
    """One model input or output: name, numpy dtype name and shape (ints or symbolic names)."""

    name: str
    dtype: str
    shape: tuple[Dim, ...]

    def to_dict(self) -> JSONDict:
        return {"name": self.name, "dtype": self.dtype, "shape": list(self.shape)}

    @staticmethod
    def from_dict(d: Mapping[str, Any]) -> TensorSpec:
        try:
            shape = tuple(s if isinstance(s, (int, str)) else str(s) for s in d["shape"])
            return TensorSpec(name=str(d["name"]), dtype=str(d["dtype"]), shape=shape)
        except (KeyError, TypeError) as e:
            raise BundleError(f"tensor spec {dict(d)!r} lacks name/dtype/shape") from e


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
    def from_dict(d: Mapping[str, Any]) -> ModelSpec:
        try:
            return ModelSpec(
                file=str(d["file"]),
                inputs=tuple(TensorSpec.from_dict(t) for t in d["inputs"]),
                outputs=tuple(TensorSpec.from_dict(t) for t in d["outputs"]),
            )
        except (KeyError, TypeError) as e:
            raise BundleError(f"model spec lacks file/inputs/outputs: {e}") from e


@dataclass(frozen=True)
class Manifest:
    """The parsed ``manifest.json``."""

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
    def from_dict(d: Mapping[str, Any], where: str = "manifest") -> Manifest:
        version = d.get("schema_version")
        if version != SCHEMA_VERSION:
            raise BundleError(
                f"{where}: schema_version {version!r} is not supported by this edgevl "
                f"(expects {SCHEMA_VERSION}); re-export the bundle with this version"
            )
        missing = [k for k in ("name", "task", "precision", "models", "files") if k not in d]
        if missing:
            raise BundleError(f"{where}: missing keys {missing}")
        if d["precision"] not in PRECISIONS:
            raise BundleError(f"{where}: precision {d['precision']!r} not in {PRECISIONS}")
        if not isinstance(d["models"], Mapping) or not isinstance(d["files"], Mapping):
            raise BundleError(f"{where}: 'models' and 'files' must be objects")
        return Manifest(
            schema_version=version,
            name=str(d["name"]),
            task=str(d["task"]),
            precision=str(d["precision"]),
            models={str(k): ModelSpec.from_dict(v) for k, v in d["models"].items()},
            files={str(k): str(v) for k, v in d["files"].items()},
            preprocess=dict(d.get("preprocess", {})),
            config=dict(d.get("config", {})),
            source=dict(d.get("source", {})),
            extra=dict(d.get("extra", {})),
        )


@dataclass(frozen=True)
class Bundle:
    """A loaded, verified bundle directory."""

    path: Path
    manifest: Manifest

    def file(self, rel: str) -> Path:
        """Absolute path of a file named in the manifest."""
        if rel not in self.manifest.files:
            raise BundleError(f"{self.path}: file {rel!r} is not listed in the manifest")
        return self.path / rel

    def model(self, role: str = "model") -> ModelSpec:
        try:
            return self.manifest.models[role]
        except KeyError:
            roles = sorted(self.manifest.models)
            raise BundleError(f"{self.path}: no model {role!r} (has {roles})") from None

    def model_path(self, role: str = "model") -> Path:
        return self.file(self.model(role).file)

    @property
    def digest(self) -> str:
        """A digest of the manifest (which holds every file's sha256): the bundle's identity."""
        blob = json.dumps(self.manifest.to_dict(), sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def onnx_io(path: Path) -> tuple[tuple[TensorSpec, ...], tuple[TensorSpec, ...]]:
    """Read an ONNX file's inputs and outputs with ONNX Runtime; BundleError if it is not ONNX."""
    from edgevl.backends.ort import session_io

    return session_io(path)


def write_bundle(
    out_dir: Path | str,
    *,
    name: str,
    task: str,
    models: Mapping[str, Path | str],
    precision: str = "fp32",
    extra_files: Mapping[str, Path | str | bytes] | None = None,
    preprocess: Mapping[str, Any] | None = None,
    config: Mapping[str, Any] | None = None,
    source: Mapping[str, Any] | None = None,
    extra: Mapping[str, Any] | None = None,
    overwrite: bool = True,
) -> Bundle:
    """Write a bundle directory and return it loaded.

    ``models`` maps a role (``model``, ``image``, ``text``…) to an ONNX file to copy in; its IO is
    read from the file itself. ``extra_files`` maps a file name inside the bundle to a path to
    copy or the bytes to write (charset, tokenizer, calibration report…).
    """
    out = Path(out_dir)
    if out.exists() and any(out.iterdir()) and not overwrite:
        raise BundleError(f"{out}: exists and is not empty")
    out.mkdir(parents=True, exist_ok=True)
    files: dict[str, str] = {}
    specs: dict[str, ModelSpec] = {}
    for role, src in models.items():
        src_path = Path(src)
        rel = f"{role}.onnx"
        dst = out / rel
        if src_path.resolve() != dst.resolve():
            shutil.copyfile(src_path, dst)
        inputs, outputs = onnx_io(dst)
        specs[role] = ModelSpec(file=rel, inputs=inputs, outputs=outputs)
        files[rel] = sha256_file(dst)
    for rel, content in (extra_files or {}).items():
        dst = out / rel
        dst.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            dst.write_bytes(content)
        elif Path(content).resolve() != dst.resolve():
            shutil.copyfile(content, dst)
        files[rel] = sha256_file(dst)
    manifest = Manifest(
        name=name,
        task=task,
        precision=precision,
        models=specs,
        files=files,
        preprocess=dict(preprocess or {}),
        config=dict(config or {}),
        source=dict(source or {}),
        extra=dict(extra or {}),
    )
    if precision not in PRECISIONS:
        raise BundleError(f"precision {precision!r} not in {PRECISIONS}")
    (out / MANIFEST_NAME).write_text(json.dumps(manifest.to_dict(), indent=2) + "\n")
    return Bundle(path=out, manifest=manifest)


def read_manifest(bundle_dir: Path | str) -> Manifest:
    """Parse and validate ``manifest.json`` without touching the other files."""
    root = Path(bundle_dir)
    mpath = root / MANIFEST_NAME
    if not root.is_dir():
        raise BundleError(f"{root}: not a bundle directory (expected a folder with {MANIFEST_NAME})")
    if not mpath.is_file():
        raise BundleError(f"{root}: no {MANIFEST_NAME}; is this an edgevl bundle?")
    try:
        data = json.loads(mpath.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise BundleError(f"{mpath}: does not parse as JSON ({e})") from e
    if not isinstance(data, dict):
        raise BundleError(f"{mpath}: expected a JSON object")
    return Manifest.from_dict(data, where=str(mpath))


def load_bundle(bundle_dir: Path | str, *, verify: bool = True) -> Bundle:
    """Load a bundle; with ``verify`` every file's sha256 is checked against the manifest."""
    root = Path(bundle_dir)
    manifest = read_manifest(root)
    for spec in manifest.models.values():
        if spec.file not in manifest.files:
            raise BundleError(f"{root}: model file {spec.file!r} has no checksum in the manifest")
    for rel, digest in manifest.files.items():
        p = root / rel
        if not p.is_file():
            raise BundleError(f"{root}: file {rel!r} named in the manifest is missing")
        if verify and sha256_file(p) != digest:
            raise BundleError(
                f"{p}: sha256 does not match the manifest (file changed or corrupt); re-export"
            )
    return Bundle(path=root, manifest=manifest)


def check_io(spec: ModelSpec, actual: tuple[tuple[TensorSpec, ...], tuple[TensorSpec, ...]],
             where: str) -> None:
    """Raise BundleError when an ONNX file's IO disagrees with the manifest's."""
    for kind, want, got in (("inputs", spec.inputs, actual[0]), ("outputs", spec.outputs, actual[1])):
        w = [(t.name, t.dtype, len(t.shape)) for t in want]
        g = [(t.name, t.dtype, len(t.shape)) for t in got]
        if w != g:
            raise BundleError(f"{where}: ONNX {kind} {g} disagree with the manifest's {w}")
