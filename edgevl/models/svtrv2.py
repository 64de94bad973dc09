"""SVTRv2-base scene-text recogniser bundle, built from the files of the installed
``azcrawlerpy-recaptcha-text`` wheel (MIT; nothing downloaded, the wheel's Python is never imported).

The wheel ships ``svtrv2.onnx`` (19.8 M parameters, opset 17; input ``image`` [batch, 3, H, W],
output ``probs`` [batch, W/4, 95]), ``selector.onnx`` (a learned chooser of the input size) and
``svtrv2.json`` (its provenance card). The 95 classes are the CTC blank then Python's
``string.printable[:94]`` (digits, lower case, upper case, punctuation; checked on real words,
docs/ocr.md). The model runs at four fixed input sizes; edgevl stretches each crop to the size whose
aspect ratio is nearest the crop's (measured against the shipped selector, docs/ocr.md), RGB,
``(x/255 - 0.5)/0.5``, greedy CTC.

The bundle (``svtrv2-rec`` in the cache folder) stores the graph with its LayerNorm, GELU and
attention fused for ONNX Runtime CPU when that rewrite is available and checked (``extra.graph``;
:mod:`edgevl.models.svtrv2_fuse`), else the wheel's graph.
"""

from __future__ import annotations

import importlib.util
import string
import warnings
from pathlib import Path
from typing import Any

from edgevl.bundle import Bundle, load_bundle, sha256_file, write_bundle
from edgevl.errors import BundleError
from edgevl.models.staging import staged_bundle, wheel_version
from edgevl.tasks.ocr.sections import Normalization, RecognizerConfig, RecognizerPreprocess
from edgevl.tasks.ocr.spec import RECOGNITION

NAME = "svtrv2"
TITLE = "SVTRv2-base attention recogniser (CTC, ASCII printable)"
PACKAGE = "azcrawlerpy_recaptcha_text"
DISTRIBUTION = "azcrawlerpy-recaptcha-text"
VERSION = "1.0.1"  # the version measured; another installed version still builds
LICENCE = "MIT"
MODEL_FILE = "svtrv2.onnx"
SELECTOR_FILE = "selector.onnx"
CARD_FILE = "svtrv2.json"
BUNDLE_NAME = f"{NAME}-rec"
CHARSET_FILE = "charset.txt"
#: the 94 characters after the CTC blank, in the model's class order
CHARSET = string.printable[:94]
#: the input sizes (height, width) the model was trained at (its card's ``candidates``)
SIZES: tuple[tuple[int, int], ...] = ((64, 64), (48, 96), (40, 112), (32, 128))

PREPROCESS = RecognizerPreprocess(
    norm=Normalization(mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5), scale=1.0 / 255.0, color="RGB"),
    height=32, min_width=64, max_width=128, width_multiple=4, interpolation="linear",
    sizes=SIZES, size_policy="aspect", selector=SELECTOR_FILE, margin=0.25)
CONFIG = RecognizerConfig(charset=CHARSET_FILE, blank_index=0, num_classes=1 + len(CHARSET),
                          decoder="ctc-greedy")
#: the graph rewrite stored in the bundle; a new value rebuilds cached bundles
GRAPH_REWRITE = "svtrv2-fuse-v1"


def package_dir() -> Path:
    """The installed wheel's folder; BundleError naming what is missing."""
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise BundleError(f"{PACKAGE} is not installed; the SVTRv2 recogniser ships inside it "
                          f"(pip install {DISTRIBUTION}=={VERSION}, or pip install 'edgevl[ocr-models]')")
    d = Path(next(iter(spec.submodule_search_locations)))
    for f in (MODEL_FILE, SELECTOR_FILE):
        if not (d / f).is_file():
            raise BundleError(f"{d / f}: missing from the {DISTRIBUTION} wheel; reinstall it")
    return d


def installed_version() -> str:
    return wheel_version(DISTRIBUTION)


def source(pkg: Path) -> dict[str, Any]:
    """The manifest's ``source``: model, wheel, version, licence, file and sha256 of each shipped file."""
    return {"model": NAME, "package": DISTRIBUTION, "version": installed_version(), "licence": LICENCE,
            "file": MODEL_FILE, "sha256": sha256_file(pkg / MODEL_FILE),
            "selector_sha256": sha256_file(pkg / SELECTOR_FILE)}


def charset_bytes() -> bytes:
    return ("\n".join(CHARSET) + "\n").encode("utf-8")


def _fused(src: Path, work: Path) -> tuple[Path, dict[str, Any]]:
    """The fused graph (when the rewrite applies and matches the wheel's) and its ``extra.graph``."""
    try:
        from edgevl.models.svtrv2_fuse import fused_copy
    except ImportError as e:  # pragma: no cover - the module ships with edgevl
        return src, {"rewrite": GRAPH_REWRITE, "applied": False, "reason": str(e)}
    dst = work / "svtrv2.fused.onnx"
    info = fused_copy(src, dst, SIZES)
    info = {"rewrite": GRAPH_REWRITE, **info}
    if not info.get("applied"):
        warnings.warn(f"{src.name}: fused graph not applied ({info.get('reason')}); using the wheel's graph",
                      RuntimeWarning, stacklevel=3)
        return src, info
    return dst, info


def build_bundle(root: Path | str, pkg: Path | None = None, *, fuse: bool = True) -> Bundle:
    """Build ``svtrv2-rec`` into ``root`` from the installed wheel (``pkg`` replaces its folder) and
    return it loaded. The bundle is written next to its final place and swapped in."""
    pkg = pkg or package_dir()
    base = Path(root)
    try:
        base.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise BundleError(f"{base}: cannot create the bundle folder ({e})") from e
    final = base / BUNDLE_NAME
    with staged_bundle(base, BUNDLE_NAME) as (tmp, work):
        model = pkg / MODEL_FILE
        graph: dict[str, Any] = {"rewrite": GRAPH_REWRITE, "applied": False, "reason": "not asked"}
        if fuse:
            model, graph = _fused(model, work)
        write_bundle(tmp, name=BUNDLE_NAME, task=RECOGNITION, models={"model": model},
                     extra_files={CHARSET_FILE: charset_bytes(), SELECTOR_FILE: pkg / SELECTOR_FILE},
                     preprocess=PREPROCESS, config=CONFIG, source=source(pkg), extra={"graph": graph})
    return load_bundle(final)


def is_current(b: Bundle) -> bool:
    """A cached bundle is reused only when this edgevl built it from the installed wheel version."""
    m = b.manifest
    if m.upgraded_from is not None or m.task != RECOGNITION or m.source.get("model") != NAME:
        return False
    if str(m.source.get("version")) != installed_version():
        return False
    if dict(m.preprocess) != PREPROCESS.to_manifest() or dict(m.config) != CONFIG.to_manifest():
        return False
    graph = m.extra.get("graph", {})
    return isinstance(graph, dict) and graph.get("rewrite") == GRAPH_REWRITE


def ensure_bundle(root: Path | str) -> Bundle:
    """The cached bundle in ``root``, built first when absent, corrupt or stale."""
    try:
        b = load_bundle(Path(root) / BUNDLE_NAME)
        if is_current(b):
            return b
    except BundleError:
        pass
    return build_bundle(root)
