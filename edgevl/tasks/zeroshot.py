"""Zero-shot image classification with a CLIP bundle.

Each class becomes a set of prompts — the class name put into templates (by default the 80
ImageNet templates of the CLIP paper, shipped in ``edgevl/data``; or the user's template file) or
user-written descriptions of the class (several per class). The prompts are encoded, each
embedding L2-normalised, averaged per class and normalised again (prompt ensembling). Class
embeddings are cached on disk, keyed by the bundle digest and the prompts, so a second run with
the same labels does not touch the text model. Images are encoded, normalised, and scored by
``softmax(logit_scale * cos)`` over the classes.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from edgevl.backends import EngineOptions
from edgevl.bundle import Bundle
from edgevl.errors import BundleError, InputError
from edgevl.paths import edgevl_home
from edgevl.safeio import parse_json, read_text_file
from edgevl.tasks.encoders import ImageEncoder, TextEncoder, as_bundle, l2_normalize, require_task
from edgevl.tasks.encoders.sections import EncoderConfig
from edgevl.tasks.encoders.spec import CLIP
from edgevl.vision.preprocess import Image

Float32Array = npt.NDArray[np.float32]
CACHE_VERSION = 1


@dataclass(frozen=True)
class Prediction:
    """One label and its probability."""

    label: str
    score: float

    def to_dict(self) -> dict[str, Any]:
        return {"label": self.label, "score": self.score}


@dataclass(frozen=True)
class Classification:
    """The top-k predictions for one image (best first)."""

    predictions: tuple[Prediction, ...]
    image: str | None = None

    @property
    def label(self) -> str:
        return self.predictions[0].label

    def to_dict(self) -> dict[str, Any]:
        return {"image": self.image, "predictions": [p.to_dict() for p in self.predictions]}


# ---------------------------------------------------------------- prompts (pure functions)

def default_templates() -> tuple[str, ...]:
    """The 80 ImageNet templates of the CLIP paper."""
    text = resources.files("edgevl").joinpath("data/imagenet_templates.txt").read_text(encoding="utf-8")
    return parse_templates(text, "edgevl/data/imagenet_templates.txt")


def parse_templates(text: str, where: str = "templates") -> tuple[str, ...]:
    """One template per line with exactly one ``{}``; blank lines and ``#`` comments skipped."""
    out: list[str] = []
    for i, line in enumerate(text.splitlines(), 1):
        t = line.strip()
        if not t or t.startswith("#"):
            continue
        if t.count("{}") != 1:
            raise InputError(f"{where}:{i}: template {t!r} must contain exactly one '{{}}' "
                             "for the class name")
        out.append(t)
    if not out:
        raise InputError(f"{where}: no templates (expected one per line, each with '{{}}')")
    return tuple(out)


def load_templates(path: Path | str | None = None) -> tuple[str, ...]:
    if path is None:
        return default_templates()
    return parse_templates(_read_text(Path(path), "template file"), str(path))


def parse_labels(labels: Sequence[str] | str, where: str = "labels") -> tuple[str, ...]:
    """Comma-separated string or a sequence → stripped, non-empty, unique labels."""
    items = labels.split(",") if isinstance(labels, str) else list(labels)
    out = tuple(s.strip() for s in items if isinstance(s, str) and s.strip())
    if len(out) != len([s for s in items if not (isinstance(s, str) and not s.strip())]):
        raise InputError(f"{where}: labels must be strings")
    if not out:
        raise InputError(f"{where}: no labels (expected e.g. \"cat,dog\" or one label per line)")
    dup = sorted({s for s in out if out.count(s) > 1})
    if dup:
        raise InputError(f"{where}: duplicate labels {dup}")
    return out


def load_labels(path: Path | str) -> tuple[str, ...]:
    """A labels file: one label per line (blank lines and ``#`` comments skipped)."""
    p = Path(path)
    lines = [ln.strip() for ln in _read_text(p, "labels file").splitlines()]
    return parse_labels([ln for ln in lines if ln and not ln.startswith("#")], str(p))


def load_descriptions(path: Path | str) -> dict[str, tuple[str, ...]]:
    """A JSON object ``{"label": ["description", ...], ...}`` (a single string is one description)."""
    p = Path(path)
    data = parse_json(_read_text(p, "descriptions file"), f"{p}: descriptions file", max_depth=8)
    return parse_descriptions(data, str(p))


def parse_descriptions(data: Any, where: str = "descriptions") -> dict[str, tuple[str, ...]]:
    if not isinstance(data, Mapping) or not data:
        raise InputError(f"{where}: expected a non-empty object {{\"label\": [\"description\", ...]}}")
    out: dict[str, tuple[str, ...]] = {}
    for label, descs in data.items():
        items = [descs] if isinstance(descs, str) else descs
        if (not isinstance(label, str) or not label.strip() or not isinstance(items, list)
                or not items or not all(isinstance(d, str) and d.strip() for d in items)):
            raise InputError(f"{where}: entry {label!r} must map a label to a non-empty list of strings")
        out[label.strip()] = tuple(d.strip() for d in items)
    return out


def build_prompts(labels: Sequence[str], templates: Sequence[str] | None = None,
                  descriptions: Mapping[str, Sequence[str]] | None = None) -> dict[str, tuple[str, ...]]:
    """Prompts per class: a class with descriptions uses them, the others the templates."""
    descs = dict(descriptions or {})
    unknown = sorted(set(descs) - set(labels))
    if unknown:
        raise InputError(f"descriptions given for labels that are not classes: {unknown}")
    tmpl = tuple(templates) if templates is not None else None
    out: dict[str, tuple[str, ...]] = {}
    for label in labels:
        if label in descs:
            out[label] = tuple(descs[label])
        else:
            if tmpl is None:
                tmpl = default_templates()
            out[label] = tuple(t.replace("{}", label) for t in tmpl)
    return out


# ---------------------------------------------------------------- scoring (pure functions)

def softmax(x: Float32Array, axis: int = -1) -> Float32Array:
    z = x - x.max(axis=axis, keepdims=True)
    e = np.exp(z)
    out: Float32Array = (e / e.sum(axis=axis, keepdims=True)).astype(np.float32)
    return out


def zero_shot_probs(image_embeds: Float32Array, class_embeds: Float32Array,
                    logit_scale: float) -> Float32Array:
    """``softmax(logit_scale * normalize(img) @ normalize(cls).T)``: ``[n_images, n_classes]``."""
    if image_embeds.ndim != 2 or class_embeds.ndim != 2 or image_embeds.shape[1] != class_embeds.shape[1]:
        raise InputError(f"embedding shapes {image_embeds.shape} and {class_embeds.shape} do not match")
    logits = np.float32(logit_scale) * (l2_normalize(image_embeds) @ l2_normalize(class_embeds).T)
    return softmax(logits.astype(np.float32))


def top_k(probs: Float32Array, labels: Sequence[str], k: int,
          images: Sequence[str | None] | None = None) -> list[Classification]:
    """The ``k`` most probable labels per row, best first (ties keep label order)."""
    if k < 1:
        raise InputError(f"top-k must be >= 1, got {k}")
    k = min(k, len(labels))
    out = []
    for i, row in enumerate(probs):
        order = np.argsort(-row, kind="stable")[:k]
        preds = tuple(Prediction(labels[j], float(row[j])) for j in order)
        out.append(Classification(preds, images[i] if images is not None else None))
    return out


# ---------------------------------------------------------------- cache

def cache_dir() -> Path:
    """``$EDGEVL_HOME/text-embeddings`` or ``~/.cache/edgevl/text-embeddings``."""
    return edgevl_home() / "text-embeddings"


def cache_key(bundle_digest: str, prompts: Sequence[str]) -> str:
    blob = json.dumps({"v": CACHE_VERSION, "bundle": bundle_digest, "prompts": list(prompts)},
                      ensure_ascii=False).encode()
    return hashlib.sha256(blob).hexdigest()


class EmbeddingCache:
    """One ``.npy`` per (bundle digest, prompt list); unreadable entries count as misses."""

    def __init__(self, root: Path | str | None = None) -> None:
        self.root = Path(root) if root is not None else cache_dir()
        self.hits = 0
        self.misses = 0

    def _path(self, key: str) -> Path:
        return self.root / key[:2] / f"{key}.npy"

    def get(self, key: str) -> Float32Array | None:
        p = self._path(key)
        try:
            arr = np.load(p, allow_pickle=False)
        except (OSError, ValueError):
            self.misses += 1
            return None
        self.hits += 1
        out: Float32Array = np.asarray(arr, np.float32)
        return out

    def put(self, key: str, value: Float32Array) -> None:
        p = self._path(key)
        try:
            p.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=p.parent, suffix=".tmp")
            with os.fdopen(fd, "wb") as f:
                np.save(f, np.asarray(value, np.float32), allow_pickle=False)
            os.replace(tmp, p)
        except OSError:
            return  # a read-only or full cache only costs recomputation


def _read_text(p: Path, what: str) -> str:
    """A user's labels or templates file: :func:`edgevl.safeio.read_text_file` (a regular UTF-8 file
    of at most 16 MiB; a FIFO or /dev/zero is refused before anything is read)."""
    return read_text_file(p, what, max_bytes=16 << 20)


# ---------------------------------------------------------------- classifier

class ZeroShotClassifier:
    """CLIP zero-shot classifier over a ``clip`` bundle.

    >>> clf = ZeroShotClassifier("bundles/clip-b32")           # doctest: +SKIP
    >>> clf.set_labels(["cat", "dog"])                          # doctest: +SKIP
    >>> clf.classify(["pet.jpg"], top_k=1)[0].label             # doctest: +SKIP
    """

    def __init__(self, bundle: Bundle | Path | str, options: EngineOptions | None = None, *,
                 cache: EmbeddingCache | Path | str | bool = True, batch_size: int = 32,
                 text_encoder: TextEncoder | None = None, image_encoder: ImageEncoder | None = None) -> None:
        self.bundle = as_bundle(bundle)
        require_task(self.bundle, (CLIP,), "zero-shot classifier (needs image and text models)")
        scale = self.bundle.section(EncoderConfig).logit_scale
        if scale is None:
            raise BundleError(f"{self.bundle.path}: config logit_scale is missing; it must be a positive "
                              f"number (the exp'd CLIP temperature, e.g. 100)")
        self.logit_scale = scale
        self._options = options
        self._batch_size = batch_size
        self._text = text_encoder
        self._image = image_encoder
        if cache is True:
            self.cache: EmbeddingCache | None = EmbeddingCache()
        elif cache is False:
            self.cache = None
        elif isinstance(cache, EmbeddingCache):
            self.cache = cache
        else:
            self.cache = EmbeddingCache(cache)
        self.labels: tuple[str, ...] = ()
        self.class_embeds: Float32Array = np.zeros((0, 0), np.float32)

    @property
    def text_encoder(self) -> TextEncoder:
        if self._text is None:  # opened lazily: a full cache hit never loads the text model
            self._text = TextEncoder(self.bundle, self._options, batch_size=self._batch_size)
        return self._text

    @property
    def image_encoder(self) -> ImageEncoder:
        if self._image is None:
            self._image = ImageEncoder(self.bundle, self._options, batch_size=self._batch_size)
        return self._image

    def embed_prompts(self, prompts: Sequence[str]) -> Float32Array:
        """Mean of the normalised prompt embeddings, normalised: one class vector ``[D]``."""
        key = cache_key(self.bundle.digest, prompts)
        if self.cache is not None:
            hit = self.cache.get(key)
            if hit is not None and hit.ndim == 1:
                return hit
        emb = l2_normalize(self.text_encoder.encode(list(prompts)))
        vec: Float32Array = l2_normalize(emb.mean(axis=0, keepdims=True))[0]
        if self.cache is not None:
            self.cache.put(key, vec)
        return vec

    def set_prompts(self, prompts: Mapping[str, Sequence[str]]) -> None:
        if not prompts:
            raise InputError("no classes")
        empty = [k for k, v in prompts.items() if not v]
        if empty:
            raise InputError(f"classes without prompts: {empty}")
        self.labels = tuple(prompts)
        self.class_embeds = np.stack([self.embed_prompts(list(v)) for v in prompts.values()])

    def set_labels(self, labels: Sequence[str] | str, templates: Sequence[str] | Path | str | None = None,
                   descriptions: Mapping[str, Sequence[str]] | Path | str | None = None) -> None:
        """Classes from names; prompts from templates (default: the 80 ImageNet ones) or descriptions."""
        tmpl = load_templates(templates) if templates is None or isinstance(templates, (str, Path)) \
            else parse_templates("\n".join(templates))
        descs = load_descriptions(descriptions) if isinstance(descriptions, (str, Path)) else descriptions
        self.set_prompts(build_prompts(parse_labels(labels), tmpl, descs))

    def set_descriptions(self, descriptions: Mapping[str, Sequence[str]] | Path | str) -> None:
        """Classes and their prompts from descriptions only (several per class, averaged)."""
        descs = load_descriptions(descriptions) if isinstance(descriptions, (str, Path)) \
            else parse_descriptions(descriptions)
        self.set_prompts(descs)

    def classify_embeddings(self, image_embeds: Float32Array, top_k_: int = 5,
                            images: Sequence[str | None] | None = None) -> list[Classification]:
        if not self.labels:
            raise InputError("no classes set; call set_labels() or set_descriptions() first")
        probs = zero_shot_probs(image_embeds, self.class_embeds, self.logit_scale)
        return top_k(probs, self.labels, top_k_, images)

    def classify(self, images: Sequence[Image | Path | str], top_k: int = 5) -> list[Classification]:
        """Top-k labels with probabilities for each image (paths or HxWx3 uint8 BGR arrays)."""
        if isinstance(images, (str, Path, np.ndarray)):
            images = [images]
        names = [str(im) if isinstance(im, (str, Path)) else None for im in images]
        return self.classify_embeddings(self.image_encoder.encode(images), top_k, names)
