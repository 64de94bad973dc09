"""Text and image encoders over bundles: tokenise / preprocess, run the engine in batches.

``TextEncoder`` works with sentence-encoder bundles (task ``text-embedding``, model ``text``) and
CLIP bundles (task ``clip``, model ``text``); it feeds, by name, whichever of ``input_ids``,
``attention_mask`` and ``token_type_ids`` the model declares. ``ImageEncoder`` works with CLIP
bundles (model ``image``, preprocessing from the manifest).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt

from edgevl.backends import Engine, EngineOptions, open_engine
from edgevl.bundle import Bundle, load_bundle
from edgevl.errors import BundleError, InputError
from edgevl.tasks.encoders.sections import EncoderConfig
from edgevl.tasks.encoders.spec import CLIP, TEXT_EMBEDDING
from edgevl.text.tokenizer import Tokenizer
from edgevl.vision.preprocess import ClipPreprocess, Image, preprocess_images

Float32Array = npt.NDArray[np.float32]
TEXT_TASKS = (TEXT_EMBEDDING, CLIP)
IMAGE_TASKS = (CLIP,)
TEXT_INPUTS = ("input_ids", "attention_mask", "token_type_ids")


def as_bundle(bundle: Bundle | Path | str) -> Bundle:
    return bundle if isinstance(bundle, Bundle) else load_bundle(bundle)


def require_task(bundle: Bundle, tasks: Sequence[str], what: str) -> None:
    if bundle.manifest.task not in tasks:
        raise BundleError(
            f"{bundle.path}: task {bundle.manifest.task!r} has no {what}; expected a bundle of task "
            + " or ".join(repr(t) for t in tasks)
        )


def l2_normalize(x: Float32Array, eps: float = 1e-12) -> Float32Array:
    """Rows scaled to unit L2 norm (zero rows stay zero)."""
    n = np.linalg.norm(x, axis=-1, keepdims=True)
    out: Float32Array = (x / np.maximum(n, eps)).astype(np.float32)
    return out


def _batches(n: int, size: int) -> list[slice]:
    return [slice(i, min(i + size, n)) for i in range(0, n, size)]


class TextEncoder:
    """Strings → embeddings ``[n, D]`` float32.

    ``normalize``: L2-normalise the rows (sentence-encoder bundles already are; CLIP text embeddings
    are not). ``engine``: an already opened Engine for the text model (else one is opened with
    ``options``).
    """

    def __init__(self, bundle: Bundle | Path | str, options: EngineOptions | None = None, *,
                 batch_size: int = 32, normalize: bool = False, engine: Engine | None = None,
                 role: str = "text") -> None:
        self.bundle = as_bundle(bundle)
        require_task(self.bundle, TEXT_TASKS, "text encoder")
        if batch_size < 1:
            raise InputError(f"batch_size must be >= 1, got {batch_size}")
        self.batch_size = batch_size
        self.normalize = normalize
        self.tokenizer = Tokenizer.from_bundle(self.bundle)
        self.engine = engine or open_engine(self.bundle, role, options)
        names = [t.name for t in self.engine.inputs]
        unknown = [n for n in names if n not in TEXT_INPUTS]
        if unknown or "input_ids" not in names:
            raise BundleError(
                f"{self.bundle.path}: text model inputs {names}; expected input_ids and optionally "
                f"attention_mask/token_type_ids"
            )
        self.input_names = tuple(names)
        self.output_name = self.engine.outputs[0].name
        self._check_vocab(role)

    def _check_vocab(self, role: str) -> None:
        """Every token id the tokenizer can emit indexes the model's embedding table (its rows read
        from the graph, else the manifest's ``vocab_size``): an id past the table would make the
        model fail, or read another token's row, at run time."""
        from edgevl.onnxguard import inspect_onnx

        rows = inspect_onnx(self.bundle.model_path(role)).embedding_rows.get("input_ids")
        where = "the text model's embedding table"
        if rows is None:
            rows = self.bundle.section(EncoderConfig).vocab_size
            where = "the manifest's vocab_size"
        if rows is not None and self.tokenizer.max_id >= rows:
            raise BundleError(f"{self.bundle.path}: the tokenizer emits token id {self.tokenizer.max_id}, "
                              f"{where} has {rows} rows; tokenizer and model do not match")

    @property
    def dim(self) -> int | str:
        return self.engine.outputs[0].shape[-1]

    def encode(self, texts: Sequence[str]) -> Float32Array:
        if isinstance(texts, str):
            texts = [texts]
        if len(texts) == 0:
            raise InputError("no texts to encode")
        enc = self.tokenizer(texts).feeds()
        lengths = enc["attention_mask"].sum(axis=1)
        # batches of similar length: less padding to compute (rows are independent of padding)
        order = np.argsort(lengths, kind="stable")
        emb: Float32Array | None = None
        for sl in _batches(len(texts), self.batch_size):
            idx = order[sl]
            width = int(lengths[idx].max())
            feeds = {n: np.ascontiguousarray(enc[n][idx, :width]) for n in self.input_names}
            part = np.asarray(self.engine.run(feeds)[self.output_name], np.float32)
            if emb is None:
                emb = np.empty((len(texts), *part.shape[1:]), np.float32)
            emb[idx] = part
        assert emb is not None
        return l2_normalize(emb) if self.normalize else emb

    __call__ = encode


class ImageEncoder:
    """Images (paths or HxWx3 uint8 BGR arrays) → embeddings ``[n, D]`` float32."""

    def __init__(self, bundle: Bundle | Path | str, options: EngineOptions | None = None, *,
                 batch_size: int = 16, normalize: bool = False, engine: Engine | None = None,
                 role: str = "image") -> None:
        self.bundle = as_bundle(bundle)
        require_task(self.bundle, IMAGE_TASKS, "image encoder")
        if batch_size < 1:
            raise InputError(f"batch_size must be >= 1, got {batch_size}")
        self.batch_size = batch_size
        self.normalize = normalize
        self.preprocess = self.bundle.section(ClipPreprocess, f"{self.bundle.path}: manifest preprocess")
        self.engine = engine or open_engine(self.bundle, role, options)
        if len(self.engine.inputs) != 1:
            raise BundleError(f"{self.bundle.path}: image model must have one input, has "
                              f"{[t.name for t in self.engine.inputs]}")
        self.input_name = self.engine.inputs[0].name
        self.output_name = self.engine.outputs[0].name

    def encode(self, images: Sequence[Image | Path | str]) -> Float32Array:
        if isinstance(images, (str, Path, np.ndarray)):
            images = [images]
        if len(images) == 0:
            raise InputError("no images to encode")
        out: list[Float32Array] = []
        for sl in _batches(len(images), self.batch_size):
            pixels = preprocess_images(images[sl], self.preprocess)
            out.append(np.asarray(self.engine.run({self.input_name: pixels})[self.output_name], np.float32))
        emb = np.concatenate(out, axis=0)
        return l2_normalize(emb) if self.normalize else emb

    __call__ = encode
