"""OCR on PP-OCR-style models: text detection (DB), 0/180° orientation, CTC recognition, pipeline.

Every task takes an :class:`~edgevl.backends.Engine` plus the bundle's manifest (preprocessing,
thresholds, charset); by default they are opened from the bundles of an embedded model family
(``model="ppocrv6"``, ``"ppocrv5"`` or ``"ppocrv4"``; :data:`edgevl.models.ppocr.DEFAULT_MODEL`).
Results are frozen objects: :class:`OcrResult` (lines + :class:`Timings`) and :class:`CropsResult`.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, TypeVar, overload

import cv2
import numpy as np
import numpy.typing as npt

from edgevl.backends import Engine, EngineOptions, OpenVinoOptions, open_engine
from edgevl.bundle import Bundle
from edgevl.errors import BundleError, InputError
from edgevl.manifest import (
    DECODERS,
    ClassifierConfig,
    ClassifierPreprocess,
    DetectorConfig,
    DetectorPreprocess,
    RecognizerConfig,
    RecognizerPreprocess,
)
from edgevl.text.ctc import ctc_greedy
from edgevl.text.respace import respace
from edgevl.vision.db import DBParams, db_boxes
from edgevl.vision.fixedsize import SizeChooser, add_margin, stretch_chw
from edgevl.vision.geometry import (
    crop_quad,
    fit_detector,
    normalize_chw,
    pad_batch,
    rotate90,
    rotate180,
    tiles,
)
from edgevl.vision.io import Image, as_image

Floats = npt.NDArray[np.float32]
Quad = tuple[tuple[float, float], tuple[float, float], tuple[float, float], tuple[float, float]]


@dataclass(frozen=True)
class Reading:
    """A recognised word crop: text, mean character confidence, per-character confidences."""

    text: str
    score: float
    char_scores: tuple[float, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {"text": self.text, "score": round(self.score, 4),
                "char_scores": [round(s, 4) for s in self.char_scores]}


@dataclass(frozen=True)
class TextLine:
    """A line of text in a photo: its quad (TL, TR, BR, BL in image pixels), text and score.

    ``vertical`` tells that the box was taller than wide and was read rotated (a book spine).
    """

    quad: Quad
    text: str
    score: float
    vertical: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {"quad": [[round(x, 1), round(y, 1)] for x, y in self.quad], "text": self.text,
                "score": round(self.score, 4), "vertical": self.vertical}


def _respaced(r: Reading, spaced: str) -> Reading:
    """``r`` with the word spaces of another reading of the same crop (:func:`respace`); an inserted
    space gets the lower confidence of its two neighbours."""
    text = respace(r.text, spaced)
    if text == r.text:
        return r
    scores: list[float] = []
    k = 0
    for c in text:
        if c == " ":
            inside = 0 < k < len(r.char_scores)
            scores.append(min(r.char_scores[k - 1], r.char_scores[k]) if inside else r.score)
        else:
            scores.append(r.char_scores[k] if k < len(r.char_scores) else r.score)
            k += 1
    return Reading(text, r.score, tuple(scores))


def _strip(r: Reading) -> Reading:
    """Drop leading/trailing spaces (and their confidences): a crop's edges are not words."""
    text = r.text.strip(" ")
    if text == r.text:
        return r
    start = len(r.text) - len(r.text.lstrip(" "))
    cs = r.char_scores[start : start + len(text)]
    return Reading(text, float(np.mean(cs)) if cs else 0.0, cs)


def _engine(engine: Engine | None, bundle: Bundle | None, role: str, model: str | None,
            options: EngineOptions | None, task: str) -> tuple[Engine, Bundle]:
    if bundle is None:
        from edgevl.models.ppocr import default_bundle

        bundle = default_bundle(role, model)
    if bundle.manifest.task != task:
        raise BundleError(f"{bundle.path}: task {bundle.manifest.task!r}, expected {task!r}")
    if engine is None:
        # every photo gives new input shapes: ORT's per-shape memory plans only hold memory (peak RSS
        # 1.0 -> 0.65 GB on a shelf photo, same speed within noise)
        # no options: the fastest backend installed, and on OpenVINO its fastest precision (bf16
        # where the CPU has it: as many catalogue words as f32 on the shelf photos, docs/ocr.md)
        opts = options or EngineOptions(backend="auto", openvino=OpenVinoOptions(precision="auto"))
        if role == "det":  # OpenVINO: one shape per photo, compiled static it holds ~0.35 GB less
            opts = replace(opts, openvino=replace(opts.openvino, static_shapes=True))
        if opts.spinning is None:  # ORT: idle threads sleep; spinning cost 1.5x at load (docs/ocr.md)
            opts = replace(opts, spinning=False)
        engine = open_engine(bundle, "model", replace(opts, mem_pattern=False))
    return engine, bundle


def _input_name(engine: Engine) -> str:
    if len(engine.inputs) != 1:
        raise BundleError(f"expected a model with one input, got {[t.name for t in engine.inputs]}")
    return engine.inputs[0].name


# --------------------------------------------------------------------------- detection


class TextDetector:
    """DB text detector: image → quads (N, 4, 2) and box scores (N,), in original pixels.

    Resolution policy (``limit_side``, ``tile``): the photo is downscaled so its longest side is at
    most ``limit_side`` (rounded to the stride; 0 = full resolution). When the detector input is
    longer than ``tile.above`` pixels, the detector runs on overlapping ``tile.size`` tiles whose
    probability maps are stitched (max in overlaps) before one DB pass, so no box is cut or
    duplicated at a tile seam; tiling bounds memory, it does not save compute.
    """

    def __init__(self, engine: Engine | None = None, bundle: Bundle | None = None, *,
                 options: EngineOptions | None = None, limit_side: int | None = None,
                 tile_size: int | None = None, params: DBParams | None = None,
                 model: str | None = None) -> None:
        self.engine, self.bundle = _engine(engine, bundle, "det", model, options, "text-detection")
        pre = DetectorPreprocess.from_manifest(self.bundle.manifest.preprocess)
        cfg = DetectorConfig.from_manifest(self.bundle.manifest.config)
        self.mean, self.std = list(pre.norm.mean), list(pre.norm.std)
        self.scale, self.color = pre.norm.scale, pre.norm.color
        self.stride = pre.stride
        self.limit_side = int(limit_side if limit_side is not None else pre.limit_side)
        self.tile_size = int(tile_size if tile_size is not None else pre.tile.size)
        self.tile_overlap, self.tile_above = pre.tile.overlap, pre.tile.above
        self.min_side = pre.min_side
        self.small_text = SMALL_TEXT_PX
        self.params = params or cfg
        self.small_side = 256
        self.margin = 32
        self._input = _input_name(self.engine)

    def probability_map(self, image: Image, min_side: int = 0) -> tuple[Floats, float, float]:
        """The DB probability map of the resized image and the (x, y) map→image scale factors
        (``min_side``: enlarge a smaller image up to it, :func:`fit_detector`)."""
        h, w = image.shape[:2]
        nh, nw, _ = fit_detector(h, w, self.limit_side, min_side, self.stride)
        resized = cv2.resize(image, (nw, nh), interpolation=cv2.INTER_AREA if nw < w else cv2.INTER_LINEAR)
        if self.color == "RGB":
            resized = resized[:, :, ::-1]
        x = normalize_chw(np.asarray(resized, np.uint8), self.mean, self.std, self.scale)
        ts = self.tile_size
        if ts and max(nh, nw) > max(ts, self.tile_above):
            prob = np.zeros((nh, nw), np.float32)
            for y0, x0, y1, x1 in tiles(nh, nw, ts, self.tile_overlap):
                part = self._run(x[:, y0:y1, x0:x1])
                np.maximum(prob[y0:y1, x0:x1], part, out=prob[y0:y1, x0:x1])
        else:
            prob = self._run(x)
        return prob, w / nw, h / nh

    def _run(self, chw: Floats) -> Floats:
        c, h, w = chw.shape
        ph, pw = -(-h // self.stride) * self.stride, -(-w // self.stride) * self.stride
        if (ph, pw) != (h, w):
            padded = np.zeros((c, ph, pw), np.float32)
            padded[:, :h, :w] = chw
            chw = padded
        out = next(iter(self.engine.run({self._input: chw[None]}).values()))
        return np.asarray(out, np.float32).reshape(ph, pw)[:h, :w]

    def __call__(self, image: Image | str | Any) -> tuple[Floats, Floats]:
        img = as_image(image)
        h, w = img.shape[:2]
        # small images (a word crop, a single spine) get a margin of their border colour: DB needs
        # background around text to separate characters into one box
        m = self.margin if min(h, w) < self.small_side else 0
        if m:
            border = np.concatenate([img[0], img[-1], img[:, 0], img[:, -1]]).reshape(-1, 3)
            colour = [int(v) for v in np.median(border, axis=0)]
            img = np.asarray(cv2.copyMakeBorder(img, m, m, m, m, cv2.BORDER_CONSTANT, value=colour), np.uint8)
        prob, sx, sy = self.probability_map(img)
        quads, scores = db_boxes(prob, self.params, scale=(sx, sy), offset=(-m, -m), clip_to=(h, w))
        # small photo policy: when the short side is below min_side and the text found is small
        # (or none is), detect again enlarged; large text on a small image keeps its first pass
        # (enlarged, its word gaps split lines), large photos never pay a second pass
        if (self.min_side and min(img.shape[:2]) * max(1 / sx, 1 / sy) < self.min_side
                and small_text(quads, 1 / max(sx, sy), self.small_text)):
            prob, sx, sy = self.probability_map(img, self.min_side)
            quads, scores = db_boxes(prob, self.params, scale=(sx, sy), offset=(-m, -m), clip_to=(h, w))
        return quads, scores


#: median text height (detector-input pixels) below which a small photo is detected again enlarged
SMALL_TEXT_PX = 20.0


def small_text(quads: Floats, scale: float, below: float) -> bool:
    """Whether the boxes found hold small text: none found, or their median height (the short side
    of each quad, times ``scale`` = detector pixels per image pixel) is below ``below``."""
    if len(quads) == 0:
        return True
    q = np.asarray(quads, np.float32)
    sides = np.stack([np.linalg.norm(q[:, 1] - q[:, 0], axis=1),
                      np.linalg.norm(q[:, 2] - q[:, 1], axis=1)], 1)
    return float(np.median(sides.min(1))) * scale < below


# --------------------------------------------------------------------------- orientation


class AngleClassifier:
    """0/180° classifier of text crops: returns (is_flipped, probability of the chosen label)."""

    def __init__(self, engine: Engine | None = None, bundle: Bundle | None = None, *,
                 options: EngineOptions | None = None, batch_size: int = 32,
                 model: str | None = None) -> None:
        self.engine, self.bundle = _engine(engine, bundle, "cls", model, options, "text-orientation")
        pre = ClassifierPreprocess.from_manifest(self.bundle.manifest.preprocess)
        self.height, self.width = pre.height, pre.width
        self.mean, self.std, self.scale = list(pre.norm.mean), list(pre.norm.std), pre.norm.scale
        self.color = pre.norm.color
        self.thresh = ClassifierConfig.from_manifest(self.bundle.manifest.config).thresh
        self.batch_size = batch_size
        self._input = _input_name(self.engine)

    def __call__(self, crops: Sequence[Image]) -> tuple[npt.NDArray[np.bool_], Floats]:
        flipped = np.zeros(len(crops), bool)
        probs = np.zeros(len(crops), np.float32)
        for s in range(0, len(crops), self.batch_size):
            chunk = crops[s : s + self.batch_size]
            batch = []
            for c in chunk:
                h, w = c.shape[:2]
                nw = max(1, min(self.width, math.ceil(self.height * w / max(h, 1))))
                r = cv2.resize(c, (nw, self.height), interpolation=cv2.INTER_LINEAR)
                if self.color == "RGB":
                    r = r[:, :, ::-1]
                batch.append(normalize_chw(np.asarray(r, np.uint8), self.mean, self.std, self.scale))
            out = next(iter(self.engine.run({self._input: pad_batch(batch, self.width)}).values()))
            p = np.asarray(out, np.float32).reshape(len(chunk), -1)
            flipped[s : s + len(chunk)] = p.argmax(1) == 1
            probs[s : s + len(chunk)] = p.max(1)
        return flipped, probs


# --------------------------------------------------------------------------- recognition


class TextRecognizer:
    """CTC text recogniser for word/line crops, batched by width so padding stays small.

    ``rec`` names the recogniser instead of ``model``: a PP-OCR family, a standalone recogniser
    (``"svtrv2"``) or a bundle folder (:func:`edgevl.models.recognizers.resolve`). A bundle whose
    preprocess lists fixed ``sizes`` (SVTRv2) stretches each crop to one of them
    (:mod:`edgevl.vision.fixedsize`) and runs the crops of one size as a batch.
    """

    def __init__(self, engine: Engine | None = None, bundle: Bundle | None = None, *,
                 options: EngineOptions | None = None, batch_size: int = 16,
                 batch_pixels: int = 16 * 640, max_pad: float = 0.1,
                 height: int | None = None, model: str | None = None,
                 rec: str | Path | None = None, size_policy: str | None = None) -> None:
        if rec is not None and bundle is None:
            if model is not None:
                raise InputError("give the recogniser as model= or rec=, not both")
            from edgevl.models.recognizers import resolve

            bundle = resolve(rec)
        self.engine, self.bundle = _engine(engine, bundle, "rec", model, options, "text-recognition")
        from edgevl.models.ppocr import load_charset

        # the manifest's decoder decides how the outputs are read: an unknown one is a BundleError
        # (RecognizerConfig checks it against DECODERS), never a silent CTC decode
        cfg = RecognizerConfig.from_manifest(self.bundle.manifest.config, f"{self.bundle.path}: config")
        if cfg.decoder not in DECODERS:  # pragma: no cover - from_manifest refuses it first
            raise BundleError(f"{self.bundle.path}: decoder {cfg.decoder!r} not in {DECODERS}")

        pre = RecognizerPreprocess.from_manifest(self.bundle.manifest.preprocess)
        self.height = int(height or pre.height)
        self.min_width = pre.min_width
        self.max_width, self.multiple = pre.max_width, pre.width_multiple
        self.mean, self.std, self.scale = list(pre.norm.mean), list(pre.norm.std), pre.norm.scale
        self.color = pre.norm.color
        self.grayscale, self.pad = pre.grayscale, pre.pad
        if self.grayscale:  # one channel: the manifest's three equal values (checked by from_manifest)
            self.mean, self.std = self.mean[:1], self.std[:1]
        self.charset = load_charset(self.bundle)
        self.blank = cfg.blank_index
        self.batch_size = batch_size
        self.batch_pixels = batch_pixels
        self.max_pad = max_pad
        n_out = self.engine.outputs[0].shape[-1] if self.engine.outputs else None
        if isinstance(n_out, int) and n_out != len(self.charset):
            cs = self.bundle.file(cfg.charset)
            raise BundleError(f"{cs}: {len(self.charset)} classes, the model outputs {n_out} "
                              "(another model's charset?)")
        self._input = _input_name(self.engine)
        self.sizes = pre.sizes
        self._chooser: SizeChooser | None = None
        if self.sizes:
            self._chooser = SizeChooser(pre, self.bundle, options, size_policy)

    def _prepare(self, crop: Image) -> Floats:
        h, w = crop.shape[:2]
        nw = math.ceil(self.height * w / max(h, 1))
        nw = max(self.min_width, min(self.max_width, nw))
        interp = cv2.INTER_AREA if h > self.height else cv2.INTER_LINEAR
        r = cv2.resize(crop, (nw, self.height), interpolation=interp)
        if self.grayscale:
            r = cv2.cvtColor(r, cv2.COLOR_BGR2GRAY)
        elif self.color == "RGB":
            r = r[:, :, ::-1]
        return normalize_chw(np.asarray(r, np.uint8), self.mean, self.std, self.scale)

    def read(self, crops: Sequence[Image | str | Any]) -> list[Reading]:
        """Read each crop as one line of text (crops are upright; no rotation is tried)."""
        return self.read_counted(crops)[0]

    def read_counted(self, crops: Sequence[Image | str | Any]) -> tuple[list[Reading], int]:
        """:meth:`read` plus the padded input columns it ran (the recogniser's work)."""
        imgs = [as_image(c, f"crop {i}") for i, c in enumerate(crops)]
        if self._chooser is not None:
            return self._read_fixed(imgs)
        prepared = [self._prepare(c) for c in imgs]
        columns = 0
        order = sorted(range(len(prepared)), key=lambda i: prepared[i].shape[2])
        out: list[Reading | None] = [None] * len(prepared)
        start = 0
        while start < len(order):
            end = start + 1
            while end < len(order) and end - start < self.batch_size:
                wmax = prepared[order[end]].shape[2]
                if wmax * (end - start + 1) > self.batch_pixels:
                    break
                if wmax > (1 + self.max_pad) * prepared[order[start]].shape[2]:
                    break  # padding costs as much as content: start a new batch instead
                end += 1
            idx = order[start:end]
            width = -(-prepared[idx[-1]].shape[2] // self.multiple) * self.multiple
            batch = pad_batch([prepared[i] for i in idx], width, mode=self.pad)
            columns += width * len(idx)
            probs = next(iter(self.engine.run({self._input: batch}).values()))
            t = probs.shape[1]
            lengths = [min(t, math.ceil(prepared[i].shape[2] * t / width)) for i in idx]
            decoded = ctc_greedy(probs, self.charset, blank=self.blank, lengths=lengths)
            for i, d in zip(idx, decoded, strict=True):
                out[i] = _strip(Reading(d.text, d.score, d.char_scores))
            start = end
        return [r for r in out if r is not None], columns

    def _read_fixed(self, imgs: list[Image]) -> tuple[list[Reading], int]:
        """Fixed-size model: each crop stretched to its chosen size, one batch per size (chunks of
        ``batch_size``), the whole output decoded (no padding)."""
        assert self._chooser is not None
        imgs = [add_margin(c, self._chooser.pre.margin) for c in imgs]
        choice = self._chooser(imgs)
        out: list[Reading | None] = [None] * len(imgs)
        columns = 0
        for k, (h, w) in enumerate(self.sizes):
            idx = [i for i, c in enumerate(choice) if c == k]
            for s in range(0, len(idx), self.batch_size):
                part = idx[s : s + self.batch_size]
                batch = np.stack([stretch_chw(imgs[i], h, w, self._chooser.pre) for i in part])
                probs = next(iter(self.engine.run({self._input: batch}).values()))
                columns += w * len(part)
                for i, d in zip(part, ctc_greedy(probs, self.charset, blank=self.blank), strict=True):
                    out[i] = _strip(Reading(d.text, d.score, d.char_scores))
        return [r for r in out if r is not None], columns


# --------------------------------------------------------------------------- pipeline

#: default cascade thresholds (a first reading below this confidence is re-read by the cascade
#: recogniser): chosen on the STR set and the shelf photos, docs/ocr.md
CASCADE_BELOW_CROPS = 0.9
CASCADE_BELOW_PHOTOS = 0.6
#: the cascade re-reads only crops at most this many times wider than tall (docs/ocr.md)
CASCADE_MAX_ASPECT = 6.0


@dataclass(frozen=True)
class Timings:
    """Seconds spent per stage of one pipeline call, and the work done: detected boxes, recogniser
    reads (crops read, second directions included) and padded recogniser input columns."""

    det: float = 0.0
    cls: float = 0.0
    rec: float = 0.0
    total: float = 0.0
    boxes: int = 0
    reads: int = 0
    crop: float = 0.0
    rec_columns: int = 0
    cascaded: int = 0  # crops re-read by the cascade recogniser
    cascade: float = 0.0  # seconds it spent

    def to_dict(self) -> dict[str, float | int]:
        return {"det": round(self.det, 4), "cls": round(self.cls, 4), "rec": round(self.rec, 4),
                "total": round(self.total, 4), "boxes": self.boxes, "reads": self.reads,
                "crop": round(self.crop, 4), "rec_columns": self.rec_columns,
                "cascaded": self.cascaded, "cascade": round(self.cascade, 4)}


@dataclass
class _Clock:
    """Mutable accumulator behind one call's :class:`Timings`."""

    cls: float = 0.0
    rec: float = 0.0
    reads: int = 0
    columns: int = 0
    cascaded: int = 0
    cascade_time: float = 0.0
    extra: dict[str, float] = field(default_factory=dict)


T = TypeVar("T")


class _TupleSequence(Sequence[T]):
    """Sequence behaviour of a result over one of its tuple fields (named by :meth:`_items`)."""

    def _items(self) -> tuple[T, ...]:
        raise NotImplementedError

    @overload
    def __getitem__(self, i: int) -> T: ...
    @overload
    def __getitem__(self, i: slice) -> Sequence[T]: ...
    def __getitem__(self, i: int | slice) -> T | Sequence[T]:
        return self._items()[i]

    def __len__(self) -> int:
        return len(self._items())

    def __iter__(self) -> Iterator[T]:
        return iter(self._items())


@dataclass(frozen=True)
class OcrResult(_TupleSequence[TextLine]):
    """What :class:`OcrPipeline` read in one photo: the lines in reading order, and its timings.

    It is a sequence of :class:`TextLine` (``for line in result``, ``len(result)``)."""

    lines: tuple[TextLine, ...]
    timings: Timings

    def _items(self) -> tuple[TextLine, ...]:
        return self.lines

    def to_dict(self) -> dict[str, Any]:
        return {"lines": [ln.to_dict() for ln in self.lines], "timings": self.timings.to_dict()}


@dataclass(frozen=True)
class CropsResult(_TupleSequence[Reading]):
    """What :meth:`OcrPipeline.read_crops` read: one :class:`Reading` per crop, and its timings."""

    readings: tuple[Reading, ...]
    timings: Timings

    def _items(self) -> tuple[Reading, ...]:
        return self.readings


def reading_order(quads: Floats) -> list[int]:
    """Indices of quads in reading order: rows top to bottom (boxes whose vertical extents overlap
    by more than half the smaller height share a row), left to right inside a row."""
    n = len(quads)
    if n == 0:
        return []
    y0 = quads[:, :, 1].min(1)
    y1 = quads[:, :, 1].max(1)
    x0 = quads[:, :, 0].min(1)
    rows: list[list[int]] = []
    spans: list[tuple[float, float]] = []
    for i in sorted(range(n), key=lambda k: (float(y0[k]), float(x0[k]))):
        placed = False
        for r, (a, b) in enumerate(spans):
            ov = min(b, float(y1[i])) - max(a, float(y0[i]))
            if ov > 0.5 * min(b - a, float(y1[i] - y0[i])):
                rows[r].append(i)
                spans[r] = (min(a, float(y0[i])), max(b, float(y1[i])))
                placed = True
                break
        if not placed:
            rows.append([i])
            spans.append((float(y0[i]), float(y1[i])))
    out: list[int] = []
    for r in sorted(range(len(rows)), key=lambda k: spans[k][0]):
        out.extend(sorted(rows[r], key=lambda k: float(x0[k])))
    return out


class OcrPipeline:
    """Detect, orient and read the text of a photo: ``OcrPipeline()(image) -> OcrResult``.

    ``model`` names the model family whose bundles the stages not given are opened from
    (``ppocrv6``, ``ppocrv5``, ``ppocrv4``; default :data:`edgevl.models.ppocr.DEFAULT_MODEL`).
    The detector is opened on first use: :meth:`read_crops` never loads it.

    Vertical text: a crop at least ``vertical_ratio`` times taller than wide is laid flat (rotated
    90° counter-clockwise) and the 0/180° classifier picks the direction; when the classifier is
    unsure (probability < its threshold) and the first reading's confidence is below
    ``reread_below``, the other direction is read too and the reading with the better recogniser
    confidence is kept. ``vertical="both"`` always reads both directions. ``cls_horizontal``: run
    the classifier on horizontal crops too (they are flipped only when it is sure).
    """

    def __init__(self, detector: TextDetector | None = None, classifier: AngleClassifier | None = None,
                 recognizer: TextRecognizer | None = None, *, options: EngineOptions | None = None,
                 use_cls: bool = True, vertical: str = "auto", vertical_ratio: float = 1.5,
                 min_score: float = 0.5, reread_below: float = 0.5, cls_horizontal: bool = True,
                 model: str | None = None, rec: str | Path | None = None,
                 rec_cascade: str | Path | TextRecognizer | None = None,
                 cascade_below: float | None = None) -> None:
        if vertical not in ("auto", "both"):
            raise InputError(f"vertical must be 'auto' or 'both', got {vertical!r}")
        if recognizer is not None and rec is not None:
            raise InputError("give the recogniser as recognizer= or rec=, not both")
        if cascade_below is not None and not 0.0 <= cascade_below <= 1.0:
            raise InputError(f"cascade_below must be in [0, 1], got {cascade_below}")
        from edgevl.models.ppocr import ocr_model

        self.model = ocr_model(model).name if model is not None else _family(detector, classifier, recognizer)
        self.options = options
        self._detector = detector
        self.classifier = classifier if classifier is not None else (
            AngleClassifier(options=options, model=self.model) if use_cls else None)
        if recognizer is None:
            recognizer = (TextRecognizer(options=options, rec=rec) if rec is not None
                          else TextRecognizer(options=options, model=self.model))
        self.recognizer = recognizer
        _check_family(self._detector, self.classifier, self.recognizer)
        #: the stronger recogniser that re-reads uncertain lines (None: no cascade)
        self.cascade: TextRecognizer | None = None
        if isinstance(rec_cascade, TextRecognizer):
            self.cascade = rec_cascade
        elif rec_cascade is not None:
            self.cascade = TextRecognizer(options=options, rec=rec_cascade)
        #: a first reading whose confidence is below this is re-read by the cascade recogniser (None:
        #: the default for this call: CASCADE_BELOW_CROPS or CASCADE_BELOW_PHOTOS, docs/ocr.md)
        self.cascade_below = cascade_below
        #: crops wider than this times their height are not re-read (SVTRv2's widest input is 4:1
        #: with 32 output frames: longer lines are squashed; docs/ocr.md)
        self.cascade_max_aspect = CASCADE_MAX_ASPECT
        self.vertical = vertical
        self.vertical_ratio = vertical_ratio
        self.min_score = min_score
        self.reread_below = reread_below
        self.cls_horizontal = cls_horizontal

    @property
    def detector(self) -> TextDetector:
        """The text detector, opened on first use."""
        if self._detector is None:
            self._detector = TextDetector(options=self.options, model=self.model)
            _check_family(self._detector, self.classifier, self.recognizer)
        return self._detector

    @property
    def detector_loaded(self) -> bool:
        return self._detector is not None

    def read_crops(self, crops: Sequence[Image | str | Any]) -> CropsResult:
        """Read word crops that may stand vertically (the STR task with orientation handling).

        A crop ``vertical_ratio`` times taller than wide is laid flat and its direction chosen as
        in the pipeline; other crops are read as they are unless the classifier is sure they are
        upside down.
        """
        t0 = time.perf_counter()
        imgs = [as_image(c, f"crop {i}") for i, c in enumerate(crops)]
        clock = _Clock()
        below = CASCADE_BELOW_CROPS if self.cascade_below is None else self.cascade_below
        readings, _ = self._read(imgs, clock, below)
        return CropsResult(tuple(readings), Timings(cls=clock.cls, rec=clock.rec,
                                                    total=time.perf_counter() - t0, reads=clock.reads,
                                                    rec_columns=clock.columns, cascaded=clock.cascaded,
                                                    cascade=clock.cascade_time))

    def _read(self, raw: list[Image], tm: _Clock,
              below: float | None = None) -> tuple[list[Reading], list[bool]]:
        t1 = time.perf_counter()
        crops: list[Image] = []
        vertical: list[bool] = []
        for c in raw:
            v = c.shape[0] >= self.vertical_ratio * c.shape[1]
            crops.append(rotate90(c, clockwise=False) if v else c)
            vertical.append(v)
        # which crops to read, and in which direction(s)
        flipped = np.zeros(len(crops), bool)
        sure = np.zeros(len(crops), bool)
        if self.classifier is not None and crops:
            cls_idx = [i for i in range(len(crops)) if vertical[i] or self.cls_horizontal]
            if cls_idx:
                f, pr = self.classifier([crops[i] for i in cls_idx])
                flipped[cls_idx] = f
                sure[cls_idx] = pr >= self.classifier.thresh
        t2 = time.perf_counter()
        tm.cls += t2 - t1
        # first read: the classifier's choice (a horizontal crop is flipped only when it is sure)
        first = [rotate180(c) if flipped[i] and (sure[i] or vertical[i]) else c
                 for i, c in enumerate(crops)]
        jobs: list[tuple[int, Image]] = list(enumerate(first))
        # vertical crops whose direction is uncertain: the other direction too, when the first
        # reading is not already confident (or always, with vertical="both")
        second = [i for i in range(len(crops)) if vertical[i] and (self.vertical == "both" or not sure[i])]
        best: list[Reading] = []
        if self.vertical == "both":
            jobs += [(i, rotate180(first[i])) for i in second]
            second = []
        readings, columns = self.recognizer.read_counted([c for _, c in jobs]) if jobs else ([], 0)
        best = readings[: len(crops)]
        seen = list(first)  # the image each best reading came from
        for (i, img), r in zip(jobs[len(crops) :], readings[len(crops) :], strict=True):
            if r.score > best[i].score:
                best[i], seen[i] = r, img
        again = [i for i in second if best[i].score < self.reread_below]
        # a horizontal crop the classifier turned over is read as it stands too, keeping the more
        # confident reading: the 0/180 classifier is sure and wrong on some tilted or small words
        again += [i for i in range(len(crops)) if not vertical[i] and first[i] is not crops[i]]
        if again:
            flips = [rotate180(first[i]) for i in again]
            more, cols = self.recognizer.read_counted(flips)
            for i, img, r in zip(again, flips, more, strict=True):
                if r.score > best[i].score:
                    best[i], seen[i] = r, img
            columns += cols
        t3 = time.perf_counter()
        tm.rec += t3 - t2
        tm.reads += len(jobs) + len(again)
        tm.columns += columns
        if self.cascade is not None and below is not None:
            best = self._cascade(best, seen, below, tm)
            tm.cascade_time += time.perf_counter() - t3
        return best, vertical

    def _cascade(self, best: list[Reading], seen: list[Image], below: float, tm: _Clock) -> list[Reading]:
        """Re-read the crops whose first reading's confidence is below ``below`` and that are at most
        ``cascade_max_aspect`` times wider than tall (as read, laid flat) with the cascade
        recogniser, in the direction the first reading chose; its reading replaces the first one
        unless it is empty. The two recognisers' confidences are not comparable (SVTRv2 gives
        0.9-0.97 where PP-OCRv6 gives 1.0 on the same clean word), so they are not compared."""
        assert self.cascade is not None
        idx = [i for i, r in enumerate(best)
               if r.score < below and seen[i].shape[1] <= self.cascade_max_aspect * seen[i].shape[0]]
        if not idx:
            return best
        more, cols = self.cascade.read_counted([seen[i] for i in idx])
        out = list(best)
        spaces = " " in self.cascade.charset
        for i, r in zip(idx, more, strict=True):
            if r.text:
                # a recogniser without a space class (SVTRv2) glues words: the first reading's spaces
                out[i] = r if spaces else _respaced(r, best[i].text)
        tm.cascaded += len(idx)
        tm.columns += cols
        return out

    def __call__(self, image: Image | str | Any) -> OcrResult:
        img = as_image(image)
        detector = self.detector
        clock = _Clock()
        t0 = time.perf_counter()
        quads, _ = detector(img)
        t1 = time.perf_counter()
        crops = [crop_quad(img, q) for q in quads]
        t_crop = time.perf_counter() - t1
        below = CASCADE_BELOW_PHOTOS if self.cascade_below is None else self.cascade_below
        best, vertical = self._read(crops, clock, below)
        lines: list[TextLine] = []
        keep = [i for i in range(len(quads)) if best[i].text.strip() and best[i].score >= self.min_score]
        for i in reading_order(quads[keep]) if keep else []:
            k = keep[i]
            q = quads[k]
            quad = tuple((float(x), float(y)) for x, y in q)
            lines.append(TextLine(quad, best[k].text, best[k].score, vertical[k]))  # type: ignore[arg-type]
        tm = Timings(det=t1 - t0, cls=clock.cls, rec=clock.rec, total=time.perf_counter() - t0,
                     boxes=len(quads), reads=clock.reads, crop=t_crop, rec_columns=clock.columns,
                     cascaded=clock.cascaded, cascade=clock.cascade_time)
        return OcrResult(tuple(lines), tm)


def _family(*stages: Any) -> str | None:
    """The model family of the first stage given (None: none given, use the default)."""
    from edgevl.models.ppocr import MODELS, bundle_model

    for st in stages:
        if st is not None and isinstance(getattr(st, "bundle", None), Bundle):
            fam = bundle_model(st.bundle)
            if fam in MODELS:  # a standalone recogniser (svtrv2, an exported bundle) has no detector
                return fam
    return None


def _check_family(*stages: Any) -> None:
    """All stages must come from one model family: a PP-OCRv5 classifier's or detector's settings are
    not tuned for another family's recogniser. BundleError names the bundle that differs."""
    from edgevl.models.ppocr import MODELS, bundle_model

    seen: dict[str, Bundle] = {}
    for st in stages:
        b = getattr(st, "bundle", None) if st is not None else None
        if not isinstance(b, Bundle):
            continue
        fam = bundle_model(b)
        if fam is None or fam not in MODELS:  # a standalone recogniser goes with any detector
            continue
        if seen and fam not in seen:
            other = next(iter(seen.items()))
            raise BundleError(f"{b.path}: a {fam} bundle, but {other[1].path} is {other[0]}; "
                              "the detector, classifier and recogniser must come from one model")
        seen.setdefault(fam, b)
