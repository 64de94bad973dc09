"""Model bundles: a directory with ``manifest.json`` and the files it names.

The manifest is the contract between the build side (``export/``) and the runtime: schema
version, task, the ONNX models with their inputs (each axis with its role and ``min/opt/max``
range) and outputs, preprocessing and task config (the task families' typed sections, parsed once
through :mod:`edgevl.tasks.registry`), precision, source names and digests and the sha256 of every
file. Nothing the runtime needs is guessed at load time; nothing of the build machine (absolute
paths) is recorded.

Loading is confined to the bundle folder: every file name must be relative and resolve (symlinks
followed) inside the folder, checked before any file is opened; a name that does not gets the same
error whether or not something exists there. Schema-1 bundles are upgraded in memory (their input
ranges derived with the writer's own policy); ``edgevl models build`` / ``edgevl export`` write
schema 2.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import stat
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, TypeVar

from edgevl.errors import BundleError, InputError
from edgevl.manifest import BackendConfig, Section, check_relative
from edgevl.safeio import parse_json
from edgevl.schema import PRECISIONS as PRECISIONS
from edgevl.schema import SCHEMA_VERSION as SCHEMA_VERSION
from edgevl.schema import Manifest as Manifest
from edgevl.schema import ModelSpec as ModelSpec
from edgevl.schema import TensorSpec as TensorSpec
from edgevl.schema import machine_paths
from edgevl.tasks.registry import input_dims, referenced_files, validate_sections

S = TypeVar("S")

MANIFEST_NAME = "manifest.json"
#: a manifest larger than this is refused before it is parsed
MAX_MANIFEST_BYTES = 16 << 20
#: a listed file larger than this is refused before it is hashed (a 16 GB sparse file would take
#: most of a minute to hash; no model an edge device runs has a file this big)
MAX_BUNDLE_FILE_BYTES = 8 << 30
#: nesting limit of a manifest (the schema's own check allows 32 levels)
MANIFEST_DEPTH = 40


def inside(root: Path, rel: str, where: str) -> Path:
    """``root / rel`` resolved, when it stays inside ``root`` (also resolved); BundleError otherwise.

    Nothing is opened. The message is the same whether or not anything exists at the name.
    """
    check_relative(rel, where)
    base = root.resolve()
    try:
        real = (base / rel).resolve()
    except (OSError, RuntimeError, ValueError):
        real = None
    if real is None or not real.is_relative_to(base) or real == base:
        raise BundleError(f"{where}: {rel[:80]!r} is not a relative path inside the bundle")
    return real


@dataclass(frozen=True)
class Bundle:
    """A loaded, verified bundle directory."""

    path: Path
    manifest: Manifest

    def file(self, rel: str) -> Path:
        """Path of a file named in the manifest (confined to the bundle folder)."""
        if rel not in self.manifest.files:
            raise BundleError(f"{self.path}: file {rel!r} is not listed in the manifest")
        return inside(self.path, rel, f"{self.path}")

    def model(self, role: str = "model") -> ModelSpec:
        try:
            return self.manifest.models[role]
        except KeyError:
            roles = sorted(self.manifest.models)
            raise BundleError(f"{self.path}: no model {role!r} (has {roles})") from None

    def model_path(self, role: str = "model") -> Path:
        return self.file(self.model(role).file)

    def section(self, cls: type[S], where: str | None = None) -> S:
        """The typed section ``cls`` of the manifest, parsed once at load (:meth:`Manifest.section`)."""
        return self.manifest.section(cls, where)

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
    """An ONNX file's inputs and outputs (read with ONNX Runtime); BundleError if it is not ONNX."""
    from edgevl.onnxio import read_io

    ins, outs = read_io(path)
    return (tuple(TensorSpec(n, t, s) for n, t, s in ins), tuple(TensorSpec(n, t, s) for n, t, s in outs))


def _as_dict(v: Section | Mapping[str, Any] | None) -> dict[str, Any]:
    if v is None:
        return {}
    if isinstance(v, Mapping):
        return dict(v)
    return v.to_manifest()


def write_bundle(
    out_dir: Path | str,
    *,
    name: str,
    task: str,
    models: Mapping[str, Path | str],
    precision: str = "fp32",
    extra_files: Mapping[str, Path | str | bytes] | None = None,
    preprocess: Section | Mapping[str, Any] | None = None,
    config: Section | Mapping[str, Any] | None = None,
    source: Mapping[str, Any] | None = None,
    extra: Mapping[str, Any] | None = None,
    dims: Mapping[str, tuple[int, int, int]] | None = None,
    overwrite: bool = True,
) -> Bundle:
    """Write a bundle directory (schema 2) and return it loaded.

    ``models`` maps a role (``model``, ``image``, ``text``…) to an ONNX file to copy in; its IO is
    read from the file itself and every input axis gets its range from the task's policy
    (:func:`edgevl.tasks.registry.input_dims`; ``dims`` overrides it by symbolic name or role with
    ``(min, opt, max)``). ``preprocess``/``config`` are typed sections (or their JSON). ``extra_files``
    maps a file name inside the bundle to a path to copy or the bytes to write (charset, tokenizer,
    calibration report…). ``source`` records names and digests, never an absolute path.
    """
    out = Path(out_dir)
    if out.exists() and any(out.iterdir()) and not overwrite:
        raise BundleError(f"{out}: exists and is not empty")
    if precision not in PRECISIONS:
        raise BundleError(f"precision {precision!r} not in {PRECISIONS}")
    pre, cfg = _as_dict(preprocess), _as_dict(config)
    src = dict(source or {})
    bad = machine_paths(src, "source")
    if bad:
        raise BundleError(f"{bad[0]}: an absolute path of the build machine; record a name and a digest")
    validate_sections(task, models, pre, cfg)
    out.mkdir(parents=True, exist_ok=True)
    files: dict[str, str] = {}
    specs: dict[str, ModelSpec] = {}
    for role, src_file in models.items():
        check_relative(role, "models")
        src_path = Path(src_file)
        rel = f"{role}.onnx"
        dst = out / rel
        if src_path.resolve() != dst.resolve():
            shutil.copyfile(src_path, dst)
        inputs, outputs = onnx_io(dst)
        inputs = tuple(replace(t, dims=input_dims(task, role, t.shape, t.dtype, pre, cfg, dims))
                       for t in inputs)
        specs[role] = ModelSpec(file=rel, inputs=inputs, outputs=outputs)
        files[rel] = sha256_file(dst)
    for rel, content in (extra_files or {}).items():
        check_relative(rel, "extra_files")
        dst = out / rel
        dst.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            dst.write_bytes(content)
        elif Path(content).resolve() != dst.resolve():
            shutil.copyfile(content, dst)
        files[rel] = sha256_file(dst)
    manifest = Manifest(name=name, task=task, precision=precision, models=specs, files=files,
                        preprocess=pre, config=cfg, source=src, extra=dict(extra or {}))
    data = manifest.to_dict()
    manifest = Manifest.from_dict(json.loads(json.dumps(data)), where=f"{out / MANIFEST_NAME}")
    _check_references(out, manifest, str(out))
    (out / MANIFEST_NAME).write_text(json.dumps(data, indent=2) + "\n")
    return Bundle(path=out, manifest=manifest)


def read_manifest(bundle_dir: Path | str) -> Manifest:
    """Parse and validate ``manifest.json`` without touching the other files."""
    root = Path(bundle_dir)
    if not root.is_dir():
        raise BundleError(f"{root}: not a bundle directory (expected a folder with {MANIFEST_NAME})")
    mpath = root / MANIFEST_NAME
    if not (mpath.is_file() or mpath.is_symlink()):
        raise BundleError(f"{root}: no {MANIFEST_NAME}; is this an edgevl bundle?")
    real = inside(root, MANIFEST_NAME, f"{root}")
    try:
        st = os.stat(real)
        if not stat.S_ISREG(st.st_mode):
            raise BundleError(f"{mpath}: not a regular file")
        if st.st_size > MAX_MANIFEST_BYTES:
            raise BundleError(f"{mpath}: {st.st_size} bytes; a manifest is at most {MAX_MANIFEST_BYTES}")
        text = real.read_bytes().decode("utf-8")
    except OSError as e:
        raise BundleError(f"{mpath}: cannot read it ({e.strerror})") from e
    except UnicodeDecodeError as e:
        raise BundleError(f"{mpath}: not UTF-8 ({e.reason})") from e
    except MemoryError:
        raise BundleError(f"{mpath}: not enough memory to read it") from None
    try:  # strict: a duplicate key (a bad sha256 behind a good one), a lone surrogate, NaN are refused
        data = parse_json(text, str(mpath), max_depth=MANIFEST_DEPTH)
    except InputError as e:
        raise BundleError(str(e)) from None
    finally:
        del text
    if not isinstance(data, dict):
        raise BundleError(f"{mpath}: expected a JSON object")
    return Manifest.from_dict(data, where=str(mpath))


def _check_references(root: Path, manifest: Manifest, where: str) -> dict[str, Path]:
    """Every file name of the manifest confined to ``root`` and listed with a checksum (no file is
    opened); returns the resolved path of each listed file."""
    paths = {rel: inside(root, rel, f"{where}: files") for rel in manifest.files}
    for role, spec in manifest.models.items():
        inside(root, spec.file, f"{where}: models.{role}.file")
        if spec.file not in manifest.files:
            raise BundleError(f"{where}: model file {spec.file!r} has no checksum in the manifest")
    for fld, rel in referenced_files(manifest.task, manifest.config):
        inside(root, rel, f"{where}: {fld}")
        if rel not in manifest.files:
            raise BundleError(f"{where}: {fld} {rel!r} has no checksum in the manifest")
    return paths


def load_bundle(bundle_dir: Path | str, *, verify: bool = True) -> Bundle:
    """Load a bundle; with ``verify`` every file's sha256 is checked against the manifest.

    Every name is checked to resolve inside the folder before any file is opened.
    """
    root = Path(bundle_dir)
    manifest = read_manifest(root)
    paths = _check_references(root, manifest, str(root))
    for rel in manifest.files:
        p = paths[rel]
        try:
            st = os.stat(p)
        except OSError:
            raise BundleError(f"{root}: file {rel!r} named in the manifest is missing") from None
        if not stat.S_ISREG(st.st_mode):
            raise BundleError(f"{root}: file {rel!r} named in the manifest is not a regular file")
        if st.st_size > MAX_BUNDLE_FILE_BYTES:
            raise BundleError(f"{root}: file {rel!r} is {st.st_size / 2**30:.1f} GiB, over the "
                              f"{MAX_BUNDLE_FILE_BYTES >> 30} GiB a bundle file may have; refused before "
                              "hashing")
    for rel, digest in manifest.files.items():
        p = paths[rel]
        if verify and sha256_file(p) != digest:
            raise BundleError(
                f"{root / rel}: sha256 does not match the manifest (file changed or corrupt); re-export"
            )
    return Bundle(path=root, manifest=manifest)


def check_external_data(bundle: Bundle, onnx_path: Path, locations: tuple[str, ...]) -> None:
    """Every external-data file an ONNX model of the bundle reads must be a data file listed (with its
    sha256) in the manifest's ``files``: otherwise its weights could change while every checksum still
    passes. ``manifest.json``, the model files themselves and the files the task config names
    (tokenizer, charset…) are never data files. Names are resolved as ONNX Runtime does (against the
    ONNX file's folder) and must stay inside the bundle."""
    root = bundle.path.resolve()
    listed = {inside(bundle.path, rel, str(bundle.path)): rel for rel in bundle.manifest.files}
    not_data = {MANIFEST_NAME, *(m.file for m in bundle.manifest.models.values()),
                *(rel for _, rel in referenced_files(bundle.manifest.task, bundle.manifest.config))}
    base = onnx_path.resolve().parent
    for loc in dict.fromkeys(locations):
        shown = loc[:80]
        if not loc or "\x00" in loc:
            raise BundleError(f"{onnx_path.name}: external data with an empty or invalid location")
        try:
            real = (base / loc).resolve()
        except (OSError, RuntimeError, ValueError):
            real = None
        if real is None or not real.is_relative_to(root):
            raise BundleError(f"{onnx_path.name}: external data {shown!r} is not a file inside the bundle")
        rel = listed.get(real)
        if rel is None:
            raise BundleError(f"{onnx_path.name}: external data {shown!r} is not listed with a sha256 in the "
                              f"manifest's files; every file a model reads must be (re-export the bundle)")
        if rel in not_data or real == root / MANIFEST_NAME:
            raise BundleError(f"{onnx_path.name}: external data {shown!r} is the bundle's {rel}, "
                              "not a data file")


def check_io(spec: ModelSpec, actual: tuple[tuple[TensorSpec, ...], tuple[TensorSpec, ...]],
             where: str) -> None:
    """Raise BundleError when an ONNX file's IO disagrees with the manifest's."""
    for kind, want, got in (("inputs", spec.inputs, actual[0]), ("outputs", spec.outputs, actual[1])):
        w = [(t.name, t.dtype, len(t.shape)) for t in want]
        g = [(t.name, t.dtype, len(t.shape)) for t in got]
        if w != g:
            raise BundleError(f"{where}: ONNX {kind} {g} disagree with the manifest's {w}")


def verify_models(bundle: Bundle) -> dict[str, str]:
    """Load every ONNX model of the bundle (a structure check beyond the checksum) and compare its IO
    with the manifest; returns ``{role: "ok"}`` or raises BundleError naming the model."""
    from edgevl.onnxguard import inspect_onnx

    out: dict[str, str] = {}
    for role, spec in bundle.manifest.models.items():
        path = bundle.model_path(role)
        try:
            check_external_data(bundle, path, inspect_onnx(path).external_files)
            io = onnx_io(path)
        except BundleError as e:
            raise BundleError(f"{bundle.path}: model {role!r}: {e}") from e
        check_io(spec, io, f"{bundle.path}: model {role!r} ({spec.file})")
        out[role] = "ok"
    for role, rel in bundle.section(BackendConfig).trt_graphs.items():
        graph = bundle.file(rel)  # the TensorRT plugin graph reads external data too
        try:
            check_external_data(bundle, graph, inspect_onnx(graph).external_files)
        except BundleError as e:
            raise BundleError(f"{bundle.path}: TensorRT graph of {role!r}: {e}") from e
    return out
