"""The encoder family's typed manifest sections: CLIP image ``preprocess``, the tokenizer and model
parts of a ``clip`` / ``text-embedding`` ``config``.

Each section is a frozen dataclass with ``KEYS``, ``PART``, ``from_manifest`` (a missing key gets
the dataclass field's default) and ``to_manifest``; the task specs that register them, with their
input-range rules, are in :mod:`edgevl.tasks.encoders.spec`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from edgevl.errors import BundleError
from edgevl.manifest import (
    COLORS,
    MAX_SIZE,
    file_name,
    get_bool,
    get_float,
    get_floats,
    get_int,
    get_opt_str,
    get_str,
    no_unknown,
    obj,
)

CLIP_INTERPOLATIONS = ("bicubic", "bilinear", "nearest", "area")


@dataclass(frozen=True)
class ClipPreprocess:
    """``preprocess`` of a ``clip`` bundle: shorter side → ``size``, centre crop, ``(x/255 - mean)/std``
    in ``color`` order."""

    size: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    interpolation: str = "bicubic"
    resize: str = "shortest"
    crop: str = "center"
    color: str = "RGB"

    KEYS = ("size", "mean", "std", "interpolation", "resize", "crop", "color")
    PART = "preprocess"

    @staticmethod
    def from_manifest(pre: Any, where: str = "preprocess") -> ClipPreprocess:
        d = obj(pre, where)
        no_unknown(d, ClipPreprocess.KEYS, where)
        size = d.get("size")
        if isinstance(size, list) and len(size) == 2 and size[0] == size[1]:
            size = size[0]
        m = get_floats(d, "mean", where, 3)
        s = get_floats(d, "std", where, 3, positive=True)
        C = ClipPreprocess
        return C(
            size=get_int({"size": size}, "size", where, lo=1, hi=8192),
            mean=(m[0], m[1], m[2]), std=(s[0], s[1], s[2]),
            interpolation=get_str(d, "interpolation", where, C.interpolation, choices=CLIP_INTERPOLATIONS),
            resize=get_str(d, "resize", where, C.resize, choices=("shortest",)),
            crop=get_str(d, "crop", where, C.crop, choices=("center",)),
            color=get_str(d, "color", where, C.color, choices=COLORS, upper=True))

    def to_manifest(self) -> dict[str, Any]:
        return {"size": self.size, "resize": self.resize, "crop": self.crop,
                "interpolation": self.interpolation, "mean": list(self.mean), "std": list(self.std),
                "color": self.color}


TEXT_CLEANERS = ("ftfy_html",)


@dataclass(frozen=True)
class TokenizerSpec:
    """The tokenizer part of a ``clip`` / ``text-embedding`` config: file, length limit (special
    tokens included), padding id and text cleaning. CLIP names the limit ``context_length``,
    sentence encoders ``max_length``; ``length_key`` keeps the name the exporter wrote."""

    max_length: int
    tokenizer: str = "tokenizer.json"
    pad_id: int = 0
    text_clean: str | None = None
    length_key: str = "max_length"

    KEYS = ("tokenizer", "max_length", "context_length", "pad_id", "text_clean")
    PART = "config"

    @staticmethod
    def from_manifest(cfg: Any, where: str = "config") -> TokenizerSpec:
        d = obj(cfg, where)
        if "max_length" in d and "context_length" in d:
            raise BundleError(f"{where}: give max_length or context_length, not both")
        key = "context_length" if "context_length" in d else "max_length"
        return TokenizerSpec(
            max_length=get_int(d, key, where, lo=2, hi=1 << 20),
            tokenizer=file_name(d, "tokenizer", where, TokenizerSpec.tokenizer),
            pad_id=get_int(d, "pad_id", where, TokenizerSpec.pad_id, hi=MAX_SIZE),
            text_clean=get_opt_str(d, "text_clean", where, choices=TEXT_CLEANERS),
            length_key=key)

    def to_manifest(self) -> dict[str, Any]:
        out: dict[str, Any] = {"tokenizer": self.tokenizer, self.length_key: self.max_length,
                               "pad_id": self.pad_id}
        if self.text_clean is not None:
            out["text_clean"] = self.text_clean
        return out


@dataclass(frozen=True)
class EncoderConfig:
    """The model part of a ``clip`` / ``text-embedding`` config (all optional)."""

    embed_dim: int | None = None
    arch: str | None = None
    logit_scale: float | None = None
    eot_id: int | None = None
    normalized: bool | None = None
    pooling: str | None = None
    vocab_size: int | None = None
    model_config: Mapping[str, Any] | None = None

    KEYS = ("embed_dim", "arch", "logit_scale", "eot_id", "normalized", "pooling", "vocab_size",
            "model_config")
    PART = "config"

    @staticmethod
    def from_manifest(cfg: Any, where: str = "config") -> EncoderConfig:
        d = obj(cfg, where)

        def opt_int(key: str, lo: int = 0) -> int | None:
            return None if d.get(key) is None else get_int(d, key, where, lo=lo)

        mc = d.get("model_config")
        return EncoderConfig(
            embed_dim=opt_int("embed_dim", 1), arch=get_opt_str(d, "arch", where),
            logit_scale=None if d.get("logit_scale") is None else get_float(
                d, "logit_scale", where, lo=0.0, hi=1e6, lo_open=True),
            eot_id=opt_int("eot_id"),
            normalized=None if d.get("normalized") is None else get_bool(d, "normalized", where, False),
            pooling=get_opt_str(d, "pooling", where, choices=("mean", "cls")),
            vocab_size=opt_int("vocab_size", 1),
            model_config=None if mc is None else obj(mc, f"{where}.model_config"))

    def to_manifest(self) -> dict[str, Any]:
        out = {"embed_dim": self.embed_dim, "arch": self.arch, "logit_scale": self.logit_scale,
               "eot_id": self.eot_id, "normalized": self.normalized, "pooling": self.pooling,
               "vocab_size": self.vocab_size,
               "model_config": dict(self.model_config) if self.model_config is not None else None}
        return {k: v for k, v in out.items() if v is not None}
