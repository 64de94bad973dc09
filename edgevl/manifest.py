"""The typed sections of a bundle manifest (schema 2), shared by every writer and every reader.

A manifest's ``preprocess`` and ``config`` objects are plain JSON; what they may hold depends on
the bundle's task. Each kind of content is one frozen dataclass here with ``from_manifest`` (parse
and validate the JSON, every field's type and range, each error a :class:`BundleError` naming the
field) and ``to_manifest`` (the JSON the exporter writes). Defaults live in the dataclass fields
and nowhere else: a reader that needs the detector's ``limit_side`` asks
``DetectorPreprocess.from_manifest(...)``, it never calls ``.get("limit_side", …)``.

Every model input also carries, per axis, a :class:`DimRange`: its role (``batch``, ``channels``,
``height``, ``width``, ``seq``, ``other``) and the ``min / opt / max`` sizes the exporter derived
from the task's own policy (:func:`input_dims`): the batch range, sequence lengths from the
tokenizer, image sides from the resize policy. The runtime's input checks, ``edgevl bench`` and
the TensorRT optimisation profile all read these ranges.

This module imports nothing of edgevl but :mod:`edgevl.errors`, so both sides can use it.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

from edgevl.errors import BundleError

#: JSON nesting deeper than this is refused (the manifests edgevl writes nest 5 levels)
MAX_DEPTH = 32
#: integers in a manifest must fit in a signed 64-bit value; sizes in a signed 32-bit one
MAX_INT = 2**63 - 1
MAX_SIZE = 2**31 - 1
#: the batch range every exporter writes unless told otherwise
BATCH_RANGE = (1, 1, 1024)
#: ranges for symbolic axes of a model whose task has no policy (tests, ``edgevl bench`` on a bare
#: ONNX wrapped in a bundle): opt is the size ``edgevl bench`` feeds, max what it accepts
GENERIC_RANGES: dict[str, tuple[int, int, int]] = {
    "height": (1, 224, 4096), "width": (1, 224, 4096), "seq": (1, 32, 512),
    "channels": (3, 3, 3), "other": (1, 1, 4096),
}
#: a recogniser line width ``edgevl bench`` feeds (a typical crop), within the bundle's range
TEXT_LINE_WIDTH = 320
#: a sentence encoder's benchmark length: long sentences, not its 512-token maximum
SENTENCE_OPT_SEQ = 128
#: detector side when neither ``limit_side`` nor tiling bounds it
DETECTOR_MAX_SIDE = 8192
COLORS = ("RGB", "BGR")
ROLES = ("batch", "channels", "height", "width", "seq", "other")


# --------------------------------------------------------------------------- field checks


def check_json(value: Any, where: str, depth: int = 0) -> None:
    """Refuse nesting deeper than :data:`MAX_DEPTH`, non-finite floats and huge integers."""
    stack: list[tuple[Any, str, int]] = [(value, where, depth)]
    while stack:
        v, w, d = stack.pop()
        if d > MAX_DEPTH:
            raise BundleError(f"{w}: nested deeper than {MAX_DEPTH} levels")
        if isinstance(v, bool) or v is None or isinstance(v, str):
            continue
        if isinstance(v, int):
            if abs(v) > MAX_INT:
                raise BundleError(f"{w}: integer {str(v)[:20]}… does not fit in 64 bits")
        elif isinstance(v, float):
            if not math.isfinite(v):
                raise BundleError(f"{w}: {v} is not a finite number")
        elif isinstance(v, Mapping):
            for k, x in v.items():
                if not isinstance(k, str):
                    raise BundleError(f"{w}: keys must be strings")
                stack.append((x, f"{w}.{k}", d + 1))
        elif isinstance(v, (list, tuple)):
            for i, x in enumerate(v):
                stack.append((x, f"{w}[{i}]", d + 1))
        else:
            raise BundleError(f"{w}: {type(v).__name__} is not a JSON value")


def obj(d: Any, where: str) -> Mapping[str, Any]:
    """``d`` as a JSON object, else BundleError naming ``where``."""
    if not isinstance(d, Mapping):
        raise BundleError(f"{where}: expected a JSON object, got {_kind(d)}")
    return d


def _kind(v: Any) -> str:
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean", int: "an integer",
            float: "a number", type(None): "null"}.get(type(v), type(v).__name__)


def get_int(d: Mapping[str, Any], key: str, where: str, default: int | None = None, *,
            lo: int = 0, hi: int = MAX_SIZE) -> int:
    v = d.get(key, default)
    if v is None:
        raise BundleError(f"{where}.{key}: required (an integer {lo}..{hi})")
    if isinstance(v, float) and v.is_integer():
        v = int(v)
    if isinstance(v, bool) or not isinstance(v, int):
        raise BundleError(f"{where}.{key}: expected an integer {lo}..{hi}, got {_kind(v)}")
    if not lo <= v <= hi:
        raise BundleError(f"{where}.{key}: {str(v)[:24]} is outside {lo}..{hi}")
    return v


def get_float(d: Mapping[str, Any], key: str, where: str, default: float | None = None, *,
              lo: float = -math.inf, hi: float = math.inf, lo_open: bool = False) -> float:
    v = d.get(key, default)
    if v is None:
        raise BundleError(f"{where}.{key}: required (a number)")
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise BundleError(f"{where}.{key}: expected a number, got {_kind(v)}")
    try:
        f = float(v)
    except OverflowError:
        raise BundleError(f"{where}.{key}: {str(v)[:24]}… is too large") from None
    if not math.isfinite(f) or f < lo or f > hi or (lo_open and f == lo):
        rng = f"{'(' if lo_open else '['}{lo:g}, {hi:g}]"
        raise BundleError(f"{where}.{key}: {f:g} is outside {rng}")
    return f


def get_bool(d: Mapping[str, Any], key: str, where: str, default: bool) -> bool:
    v = d.get(key, default)
    if not isinstance(v, bool):
        raise BundleError(f"{where}.{key}: expected true or false, got {_kind(v)}")
    return v


def get_str(d: Mapping[str, Any], key: str, where: str, default: str | None = None, *,
            choices: Sequence[str] | None = None, upper: bool = False) -> str:
    v = d.get(key, default)
    if v is None:
        raise BundleError(f"{where}.{key}: required (a string)")
    if not isinstance(v, str):
        raise BundleError(f"{where}.{key}: expected a string, got {_kind(v)}")
    if upper:
        v = v.upper()
    if choices is not None and v not in choices:
        raise BundleError(f"{where}.{key}: {v[:40]!r} is not one of {', '.join(choices)}")
    return v


def get_opt_str(d: Mapping[str, Any], key: str, where: str, *,
                choices: Sequence[str] | None = None) -> str | None:
    return None if d.get(key) is None else get_str(d, key, where, choices=choices)


def get_floats(d: Mapping[str, Any], key: str, where: str, n: int, *, positive: bool = False,
               default: Sequence[float] | None = None) -> tuple[float, ...]:
    v = d.get(key, default)
    if v is None:
        raise BundleError(f"{where}.{key}: required (a list of {n} numbers)")
    if not isinstance(v, (list, tuple)) or len(v) != n:
        raise BundleError(f"{where}.{key}: expected a list of {n} numbers, got {_kind(v)}"
                          + (f" of {len(v)}" if isinstance(v, (list, tuple)) else ""))
    sub = {str(i): x for i, x in enumerate(v)}
    return tuple(get_float(sub, str(i), f"{where}.{key}", lo=0.0 if positive else -math.inf,
                           lo_open=positive) for i in range(n))


def file_name(d: Mapping[str, Any], key: str, where: str, default: str | None = None) -> str:
    """A file name inside the bundle (checked lexically here; ``bundle.py`` resolves it)."""
    v = get_str(d, key, where, default)
    check_relative(v, f"{where}.{key}")
    return v


def check_relative(name: str, where: str) -> None:
    """A relative, forward-slash path with no ``..``: the only file names a manifest may hold."""
    parts = name.split("/")
    bad = (not name or "\\" in name or "\x00" in name or name.startswith("/") or ":" in parts[0]
           or any(p in ("", ".", "..") for p in parts) or name.startswith("~"))
    if bad:
        raise BundleError(f"{where}: {name[:80]!r} is not a relative path inside the bundle")


def no_unknown(d: Mapping[str, Any], known: Iterable[str], where: str) -> None:
    extra = sorted(set(d) - set(known))
    if extra:
        raise BundleError(f"{where}: unknown keys {extra} (known: {sorted(known)})")


def round_up(x: int, m: int) -> int:
    return -(-x // m) * m


# --------------------------------------------------------------------------- input ranges


@dataclass(frozen=True)
class DimRange:
    """One axis of a model input: its role and the sizes it accepts (``min <= opt <= max``).

    A fixed axis has ``min == opt == max``. ``opt`` is the size a benchmark feeds and the TensorRT
    profile optimises for.
    """

    role: str
    min: int
    opt: int
    max: int

    def to_dict(self) -> dict[str, Any]:
        return {"role": self.role, "min": self.min, "opt": self.opt, "max": self.max}

    @staticmethod
    def from_dict(d: Any, where: str) -> DimRange:
        d = obj(d, where)
        no_unknown(d, ("role", "min", "opt", "max"), where)
        lo = get_int(d, "min", where, lo=1)
        opt = get_int(d, "opt", where, lo=1)
        hi = get_int(d, "max", where, lo=1)
        if not lo <= opt <= hi:
            raise BundleError(f"{where}: needs min <= opt <= max, got {lo} / {opt} / {hi}")
        return DimRange(get_str(d, "role", where, choices=ROLES), lo, opt, hi)


def dim_role(shape: Sequence[int | str], dtype: str, axis: int) -> str:
    """The role of an axis by position: dim 0 is the batch; a rank-4 float input is an image (NCHW,
    or NHWC when its last dim is a fixed 1/3/4); a rank-2 integer input is ``[batch, seq]``."""
    rank = len(shape)
    if axis == 0:
        return "batch"
    is_float = dtype.startswith("float")
    if rank == 4 and is_float:
        c = shape[1]
        channels_first = not isinstance(c, int) or c in (1, 3, 4) or not isinstance(shape[3], int)
        if channels_first:
            return ("batch", "channels", "height", "width")[axis]
        return ("batch", "height", "width", "channels")[axis]
    if rank == 2 and not is_float:
        return "seq"
    return "other"


# --------------------------------------------------------------------------- sections


class Section(Protocol):
    """What every typed section offers."""

    def to_manifest(self) -> dict[str, Any]: ...


S = TypeVar("S")


@dataclass(frozen=True)
class Normalization:
    """``(x * scale - mean) / std`` per channel, on images in ``color`` order."""

    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    scale: float = 1.0 / 255.0
    color: str = "BGR"

    @staticmethod
    def parse(d: Mapping[str, Any], where: str, color: str = "BGR") -> Normalization:
        m = get_floats(d, "mean", where, 3)
        s = get_floats(d, "std", where, 3, positive=True)
        return Normalization(mean=(m[0], m[1], m[2]), std=(s[0], s[1], s[2]),
                             scale=get_float(d, "scale", where, 1.0 / 255.0, lo=0.0, lo_open=True),
                             color=get_str(d, "color", where, color, choices=COLORS, upper=True))

    def to_manifest(self) -> dict[str, Any]:
        return {"color": self.color, "scale": self.scale, "mean": list(self.mean), "std": list(self.std)}


OCR_INTERPOLATIONS = ("linear",)


@dataclass(frozen=True)
class TileSpec:
    """Detector tiling: inputs longer than ``above`` run as ``size`` tiles overlapping by ``overlap``
    (``size`` 0: never tiled)."""

    size: int = 0
    overlap: int = 128
    above: int = 0

    def to_manifest(self) -> dict[str, Any]:
        return {"size": self.size, "overlap": self.overlap, "above": self.above}


@dataclass(frozen=True)
class DetectorPreprocess:
    """``preprocess`` of a ``text-detection`` bundle (DB detector)."""

    norm: Normalization
    stride: int = 32
    interpolation: str = "linear"
    #: longest side of the detector input (0 = full resolution)
    limit_side: int = 1792
    limit_type: str = "max"
    tile: TileSpec = field(default_factory=TileSpec)
    #: a photo whose short side is below this is enlarged up to it
    #: (:func:`edgevl.vision.geometry.fit_detector`); 0 = never
    min_side: int = 0

    KEYS = ("color", "scale", "mean", "std", "stride", "interpolation", "limit_side", "limit_type", "tile",
            "min_side")

    @staticmethod
    def from_manifest(pre: Any, where: str = "preprocess") -> DetectorPreprocess:
        d = obj(pre, where)
        no_unknown(d, DetectorPreprocess.KEYS, where)
        t = obj(d.get("tile", {}), f"{where}.tile")
        no_unknown(t, ("size", "overlap", "above"), f"{where}.tile")
        tile = TileSpec(size=get_int(t, "size", f"{where}.tile", 0, hi=65536),
                        overlap=get_int(t, "overlap", f"{where}.tile", 128, hi=65536),
                        above=get_int(t, "above", f"{where}.tile", 0, hi=65536))
        if tile.size and tile.size <= tile.overlap:
            raise BundleError(f"{where}.tile: size {tile.size} must exceed the overlap {tile.overlap}")
        return DetectorPreprocess(
            norm=Normalization.parse(d, where),
            stride=get_int(d, "stride", where, 32, lo=1, hi=1024),
            interpolation=get_str(d, "interpolation", where, "linear", choices=OCR_INTERPOLATIONS),
            limit_side=get_int(d, "limit_side", where, 1792, hi=65536),
            limit_type=get_str(d, "limit_type", where, "max", choices=("max",)),
            tile=tile,
            min_side=get_int(d, "min_side", where, 0, hi=65536),
        )

    def to_manifest(self) -> dict[str, Any]:
        return {**self.norm.to_manifest(), "stride": self.stride, "interpolation": self.interpolation,
                "limit_side": self.limit_side, "limit_type": self.limit_type, "tile": self.tile.to_manifest(),
                **({"min_side": self.min_side} if self.min_side else {})}

    def max_side(self) -> int:
        """The longest detector input the task feeds at any ``limit_side``: with tiling, inputs
        longer than ``max(tile.size, tile.above)`` run as tiles; without, :data:`DETECTOR_MAX_SIDE`."""
        bound = max(self.tile.size, self.tile.above) if self.tile.size else DETECTOR_MAX_SIDE
        return round_up(bound, self.stride)


@dataclass(frozen=True)
class DetectorConfig:
    """``config`` of a ``text-detection`` bundle: DB post-processing thresholds."""

    thresh: float = 0.3
    box_thresh: float = 0.5
    unclip_ratio: float = 1.6
    max_candidates: int = 1000
    min_size: float = 3.0
    dilate: bool = True

    KEYS = ("thresh", "box_thresh", "unclip_ratio", "max_candidates", "min_size", "dilate")

    @staticmethod
    def from_manifest(cfg: Any, where: str = "config") -> DetectorConfig:
        d = obj(cfg, where)
        return DetectorConfig(
            thresh=get_float(d, "thresh", where, 0.3, lo=0.0, hi=1.0),
            box_thresh=get_float(d, "box_thresh", where, 0.5, lo=0.0, hi=1.0),
            unclip_ratio=get_float(d, "unclip_ratio", where, 1.6, lo=0.0, hi=100.0),
            max_candidates=get_int(d, "max_candidates", where, 1000, lo=1, hi=10**6),
            min_size=get_float(d, "min_size", where, 3.0, lo=0.0, hi=1e6),
            dilate=get_bool(d, "dilate", where, True),
        )

    def to_manifest(self) -> dict[str, Any]:
        return {"thresh": self.thresh, "box_thresh": self.box_thresh, "unclip_ratio": self.unclip_ratio,
                "max_candidates": self.max_candidates, "min_size": _num(self.min_size),
                "dilate": self.dilate}


def _num(x: float) -> float | int:
    return int(x) if float(x).is_integer() else x


@dataclass(frozen=True)
class ClassifierPreprocess:
    """``preprocess`` of a ``text-orientation`` bundle: crops resized to ``height``, padded to ``width``."""

    norm: Normalization
    height: int
    width: int
    interpolation: str = "linear"

    KEYS = ("color", "scale", "mean", "std", "height", "width", "interpolation")

    @staticmethod
    def from_manifest(pre: Any, where: str = "preprocess") -> ClassifierPreprocess:
        d = obj(pre, where)
        no_unknown(d, ClassifierPreprocess.KEYS, where)
        return ClassifierPreprocess(
            norm=Normalization.parse(d, where), height=get_int(d, "height", where, lo=1, hi=4096),
            width=get_int(d, "width", where, lo=1, hi=65536),
            interpolation=get_str(d, "interpolation", where, "linear", choices=OCR_INTERPOLATIONS))

    def to_manifest(self) -> dict[str, Any]:
        return {**self.norm.to_manifest(), "height": self.height, "width": self.width,
                "interpolation": self.interpolation}


@dataclass(frozen=True)
class ClassifierConfig:
    """``config`` of a ``text-orientation`` bundle."""

    labels: tuple[str, ...] = ("0", "180")
    thresh: float = 0.9

    KEYS = ("labels", "thresh")

    @staticmethod
    def from_manifest(cfg: Any, where: str = "config") -> ClassifierConfig:
        d = obj(cfg, where)
        labels = d.get("labels", ["0", "180"])
        if not isinstance(labels, list) or len(labels) < 2 or not all(isinstance(x, str) for x in labels):
            raise BundleError(f"{where}.labels: expected a list of at least 2 strings")
        return ClassifierConfig(labels=tuple(labels),
                                thresh=get_float(d, "thresh", where, 0.9, lo=0.0, hi=1.0))

    def to_manifest(self) -> dict[str, Any]:
        return {"labels": list(self.labels), "thresh": self.thresh}


REC_PADS = ("constant", "edge")

#: how a fixed-size recogniser picks its input size (docs/ocr.md): ``aspect`` the size whose aspect
#: ratio is nearest the crop's w/h; ``selector`` the bundle's learned chooser (``selector`` file)
SIZE_POLICIES = ("aspect", "selector")


@dataclass(frozen=True)
class RecognizerPreprocess:
    """``preprocess`` of a ``text-recognition`` bundle.

    ``grayscale``: the model reads one grey channel (BGR → grey as ``cv2.COLOR_BGR2GRAY``, then
    ``mean[0]``/``std[0]``; the three values must be equal); written only when true. ``pad``: how a
    batch's narrower crops are padded on the right: ``constant`` (zeros after normalisation) or
    ``edge`` (the crop's last column repeated, as EasyOCR's ``NormalizePAD``); written only when
    not ``constant``.

    Variable width (PP-OCR, ``sizes`` empty): crops resized to ``height``, width by aspect ratio
    within ``min_width..max_width``, batches padded to a multiple of ``width_multiple``.
    Fixed sizes (SVTRv2): each crop gets a border of ``margin`` x its height in its border colour, is
    stretched to one of ``sizes`` (``(height, width)`` pairs) picked by ``size_policy``; crops of one
    size run as one batch. These keys (and ``selector``) are written only for a fixed-size model, so
    variable-width manifests are unchanged.
    """

    norm: Normalization
    height: int
    min_width: int
    max_width: int = 1600
    width_multiple: int = 8
    interpolation: str = "linear"
    grayscale: bool = False
    pad: str = "constant"
    sizes: tuple[tuple[int, int], ...] = ()
    size_policy: str = "aspect"
    selector: str | None = None
    margin: float = 0.0  # fixed sizes: border (fraction of the crop height) added on each side

    KEYS = ("color", "scale", "mean", "std", "height", "min_width", "max_width", "width_multiple",
            "interpolation", "grayscale", "pad", "sizes", "size_policy", "selector", "margin")

    @staticmethod
    def from_manifest(pre: Any, where: str = "preprocess") -> RecognizerPreprocess:
        d = obj(pre, where)
        no_unknown(d, RecognizerPreprocess.KEYS, where)
        height = get_int(d, "height", where, lo=1, hi=4096)
        sizes = _sizes(d.get("sizes", []), f"{where}.sizes")
        policy = get_str(d, "size_policy", where, "aspect", choices=SIZE_POLICIES)
        selector = file_name(d, "selector", where) if d.get("selector") is not None else None
        if policy == "selector" and selector is None:
            raise BundleError(f"{where}: size_policy 'selector' needs a selector file")
        out = RecognizerPreprocess(
            norm=Normalization.parse(d, where), height=height,
            min_width=get_int(d, "min_width", where, height, lo=1, hi=65536),
            max_width=get_int(d, "max_width", where, 1600, lo=1, hi=65536),
            width_multiple=get_int(d, "width_multiple", where, 8, lo=1, hi=1024),
            interpolation=get_str(d, "interpolation", where, "linear", choices=OCR_INTERPOLATIONS),
            grayscale=get_bool(d, "grayscale", where, RecognizerPreprocess.grayscale),
            pad=get_str(d, "pad", where, RecognizerPreprocess.pad, choices=REC_PADS),
            sizes=sizes, size_policy=policy, selector=selector,
            margin=get_float(d, "margin", where, 0.0, lo=0.0, hi=1.0))
        if out.min_width > out.max_width:
            raise BundleError(f"{where}: min_width {out.min_width} > max_width {out.max_width}")
        if out.grayscale and (len(set(out.norm.mean)) > 1 or len(set(out.norm.std)) > 1):
            raise BundleError(f"{where}: grayscale needs one mean and one std (the three values equal), "
                              f"got mean {list(out.norm.mean)}, std {list(out.norm.std)}")
        return out

    def to_manifest(self) -> dict[str, Any]:
        out: dict[str, Any] = {**self.norm.to_manifest(), "height": self.height, "min_width": self.min_width,
                               "max_width": self.max_width, "width_multiple": self.width_multiple,
                               "interpolation": self.interpolation,
                               **({"grayscale": True} if self.grayscale else {}),
                               **({"pad": self.pad} if self.pad != RecognizerPreprocess.pad else {})}
        if self.sizes:
            out["sizes"] = [list(s) for s in self.sizes]
            out["size_policy"] = self.size_policy
            out["margin"] = self.margin
            if self.selector is not None:
                out["selector"] = self.selector
        return out


def _sizes(v: Any, where: str) -> tuple[tuple[int, int], ...]:
    """A list of ``[height, width]`` pairs of positive ints (at most 64 of them, sides ≤ 4096)."""
    if not isinstance(v, list) or len(v) > 64:
        raise BundleError(f"{where}: expected a list of at most 64 [height, width] pairs")
    out: list[tuple[int, int]] = []
    for i, s in enumerate(v):
        if (not isinstance(s, list) or len(s) != 2
                or not all(isinstance(x, int) and not isinstance(x, bool) and 1 <= x <= 4096 for x in s)):
            raise BundleError(f"{where}[{i}]: expected [height, width] with sides 1..4096, got {s!r}")
        out.append((s[0], s[1]))
    return tuple(out)


DECODERS = ("ctc-greedy",)


@dataclass(frozen=True)
class RecognizerConfig:
    """``config`` of a ``text-recognition`` bundle: charset file and CTC decoding."""

    charset: str = "charset.txt"
    blank_index: int = 0
    num_classes: int | None = None
    decoder: str = "ctc-greedy"

    KEYS = ("charset", "blank_index", "num_classes", "decoder")

    @staticmethod
    def from_manifest(cfg: Any, where: str = "config") -> RecognizerConfig:
        d = obj(cfg, where)
        n = d.get("num_classes")
        return RecognizerConfig(
            charset=file_name(d, "charset", where, "charset.txt"),
            blank_index=get_int(d, "blank_index", where, 0, hi=10**7),
            num_classes=None if n is None else get_int(d, "num_classes", where, lo=2, hi=10**7),
            decoder=get_str(d, "decoder", where, "ctc-greedy", choices=DECODERS))

    def to_manifest(self) -> dict[str, Any]:
        out: dict[str, Any] = {"charset": self.charset, "blank_index": self.blank_index}
        if self.num_classes is not None:
            out["num_classes"] = self.num_classes
        out["decoder"] = self.decoder
        return out


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

    @staticmethod
    def from_manifest(pre: Any, where: str = "preprocess") -> ClipPreprocess:
        d = obj(pre, where)
        no_unknown(d, ClipPreprocess.KEYS, where)
        size = d.get("size")
        if isinstance(size, list) and len(size) == 2 and size[0] == size[1]:
            size = size[0]
        m = get_floats(d, "mean", where, 3)
        s = get_floats(d, "std", where, 3, positive=True)
        return ClipPreprocess(
            size=get_int({"size": size}, "size", where, lo=1, hi=8192),
            mean=(m[0], m[1], m[2]), std=(s[0], s[1], s[2]),
            interpolation=get_str(d, "interpolation", where, "bicubic", choices=CLIP_INTERPOLATIONS),
            resize=get_str(d, "resize", where, "shortest", choices=("shortest",)),
            crop=get_str(d, "crop", where, "center", choices=("center",)),
            color=get_str(d, "color", where, "RGB", choices=COLORS, upper=True))

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

    @staticmethod
    def from_manifest(cfg: Any, where: str = "config") -> TokenizerSpec:
        d = obj(cfg, where)
        if "max_length" in d and "context_length" in d:
            raise BundleError(f"{where}: give max_length or context_length, not both")
        key = "context_length" if "context_length" in d else "max_length"
        return TokenizerSpec(
            max_length=get_int(d, key, where, lo=2, hi=1 << 20),
            tokenizer=file_name(d, "tokenizer", where, "tokenizer.json"),
            pad_id=get_int(d, "pad_id", where, 0, hi=MAX_SIZE),
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


@dataclass(frozen=True)
class BackendConfig:
    """Config keys any task may carry: TensorRT plugin libraries shipped in the bundle, and the
    plugin-rewritten graphs of ``edgevl export --target tensorrt`` (``tensorrt.graphs``: role →
    file; the rest of ``tensorrt`` is the export's record: plugin, node counts, CPU parity)."""

    trt_plugins: tuple[str, ...] = ()
    trt_graphs: Mapping[str, str] = field(default_factory=dict)

    KEYS = ("trt_plugins", "tensorrt")

    @staticmethod
    def from_manifest(cfg: Any, where: str = "config") -> BackendConfig:
        d = obj(cfg, where)
        v = d.get("trt_plugins") or []
        if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
            raise BundleError(f"{where}.trt_plugins: expected a list of file names")
        for i, x in enumerate(v):
            check_relative(x, f"{where}.trt_plugins[{i}]")
        graphs: dict[str, str] = {}
        if "tensorrt" in d:
            t = obj(d["tensorrt"], f"{where}.tensorrt")
            g = obj(t.get("graphs", {}), f"{where}.tensorrt.graphs")
            for role, name in g.items():
                if not isinstance(name, str):
                    raise BundleError(f"{where}.tensorrt.graphs.{role}: expected a file name")
                check_relative(name, f"{where}.tensorrt.graphs.{role}")
                graphs[str(role)] = name
        return BackendConfig(tuple(v), graphs)

    def to_manifest(self) -> dict[str, Any]:
        return {"trt_plugins": list(self.trt_plugins)} if self.trt_plugins else {}


# --------------------------------------------------------------------------- per task


@dataclass(frozen=True)
class TaskSchema:
    """What a task's ``preprocess`` and ``config`` may hold."""

    preprocess: tuple[str, ...]
    config: tuple[str, ...]


TASKS: dict[str, TaskSchema] = {
    "text-detection": TaskSchema(DetectorPreprocess.KEYS, DetectorConfig.KEYS + BackendConfig.KEYS),
    "text-orientation": TaskSchema(ClassifierPreprocess.KEYS, ClassifierConfig.KEYS + BackendConfig.KEYS),
    "text-recognition": TaskSchema(RecognizerPreprocess.KEYS, RecognizerConfig.KEYS + BackendConfig.KEYS),
    "clip": TaskSchema(ClipPreprocess.KEYS, TokenizerSpec.KEYS + EncoderConfig.KEYS + BackendConfig.KEYS),
    "text-embedding": TaskSchema((), TokenizerSpec.KEYS + EncoderConfig.KEYS + BackendConfig.KEYS),
}


def validate_sections(task: str, roles: Iterable[str], preprocess: Mapping[str, Any],
                      config: Mapping[str, Any]) -> None:
    """Parse every section the task has (BundleError naming the first bad field)."""
    BackendConfig.from_manifest(config)
    schema = TASKS.get(task)
    if schema is None:
        return  # a task edgevl has no runtime for: free-form (still JSON-checked)
    no_unknown(preprocess, schema.preprocess, "preprocess")
    no_unknown(config, schema.config, "config")
    roles = set(roles)
    if task == "text-detection":
        DetectorPreprocess.from_manifest(preprocess)
        DetectorConfig.from_manifest(config)
    elif task == "text-orientation":
        ClassifierPreprocess.from_manifest(preprocess)
        ClassifierConfig.from_manifest(config)
    elif task == "text-recognition":
        RecognizerPreprocess.from_manifest(preprocess)
        RecognizerConfig.from_manifest(config)
    elif task in ("clip", "text-embedding"):
        if "image" in roles or preprocess:
            ClipPreprocess.from_manifest(preprocess)
        if "text" in roles or "tokenizer" in config:
            TokenizerSpec.from_manifest(config)
        EncoderConfig.from_manifest(config)


def referenced_files(task: str, config: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(field, file name) of every file the config names explicitly, for the bundle's confinement
    check (a default name that is absent is the task's error when it needs the file)."""
    backend = BackendConfig.from_manifest(config)
    out = [(f"config.trt_plugins[{i}]", p) for i, p in enumerate(backend.trt_plugins)]
    out += [(f"config.tensorrt.graphs.{role}", g) for role, g in backend.trt_graphs.items()]
    if task == "text-recognition" and "charset" in config:
        out.append(("config.charset", RecognizerConfig.from_manifest(config).charset))
    if task in ("clip", "text-embedding") and "tokenizer" in config:
        out.append(("config.tokenizer", TokenizerSpec.from_manifest(config).tokenizer))
    return out


def input_dims(task: str, role: str, shape: Sequence[int | str], dtype: str,
               preprocess: Mapping[str, Any], config: Mapping[str, Any],
               overrides: Mapping[str, tuple[int, int, int]] | None = None) -> tuple[DimRange, ...]:
    """The range of every axis of one model input, from the task's policy (the exporter's side).

    Fixed axes keep their size. Symbolic ones: ``overrides`` by symbolic name or role first; then
    batch :data:`BATCH_RANGE`; image sides from the resize policy (detector: stride up to the
    longest side ``limit_side``/tiling lets through; recogniser: ``min_width..max_width`` on the
    width multiple; classifier and CLIP: their fixed sizes); sequence length 1 up to the
    tokenizer's limit; anything else :data:`GENERIC_RANGES`.
    """
    ov = dict(overrides or {})
    policy: dict[str, tuple[int, int, int]] = {"batch": BATCH_RANGE}
    if task == "text-detection":
        det = DetectorPreprocess.from_manifest(preprocess)
        hi = det.max_side()
        opt = min(hi, round_up(det.limit_side, det.stride)) if det.limit_side else min(hi, 960)
        policy["height"] = policy["width"] = (det.stride, opt, hi)
    elif task == "text-recognition":
        rec = RecognizerPreprocess.from_manifest(preprocess)
        if rec.sizes:  # fixed sizes: each side ranges over the sizes' sides, the largest size optimal
            hs, ws = [h for h, _ in rec.sizes], [w for _, w in rec.sizes]
            big = max(rec.sizes, key=lambda s: s[0] * s[1])
            policy["height"] = (min(hs), big[0], max(hs))
            policy["width"] = (min(ws), big[1], max(ws))
        lo = round_up(rec.min_width, rec.width_multiple)
        hi = round_up(rec.max_width, rec.width_multiple)
        opt = min(max(TEXT_LINE_WIDTH, lo), hi) // rec.width_multiple * rec.width_multiple
        if not rec.sizes:
            policy["height"] = (rec.height, rec.height, rec.height)
            policy["width"] = (lo, max(lo, opt), hi)
    elif task == "text-orientation":
        cls = ClassifierPreprocess.from_manifest(preprocess)
        policy["height"] = (cls.height, cls.height, cls.height)
        policy["width"] = (cls.width, cls.width, cls.width)
    elif task in ("clip", "text-embedding"):
        if preprocess:
            s = ClipPreprocess.from_manifest(preprocess).size
            policy["height"] = policy["width"] = (s, s, s)
        if "tokenizer" in config or "max_length" in config or "context_length" in config:
            tok = TokenizerSpec.from_manifest(config)
            opt = tok.max_length if tok.length_key == "context_length" else min(tok.max_length,
                                                                                SENTENCE_OPT_SEQ)
            policy["seq"] = (1, opt, tok.max_length)
    out: list[DimRange] = []
    for axis, d in enumerate(shape):
        r = dim_role(shape, dtype, axis)
        if isinstance(d, int) and d > 0:
            out.append(DimRange(r, d, d, d))
            continue
        lo, opt, hi = ov.get(str(d)) or ov.get(r) or policy.get(r) or GENERIC_RANGES[r]
        out.append(DimRange(r, lo, opt, hi))
    return tuple(out)
