"""The OCR family's typed manifest sections: DB detector, 0/180° classifier and CTC recogniser
``preprocess`` and ``config``.

Each section is a frozen dataclass with ``KEYS`` (what it may hold), ``PART`` (``preprocess`` or
``config``), ``from_manifest`` (parse and validate the JSON, every field's type and range, each
error a :class:`BundleError` naming the field; a missing key gets the dataclass field's default,
written once, in the field) and ``to_manifest`` (the JSON the exporter writes). The task specs that
register them, with their input-range rules, are in :mod:`edgevl.tasks.ocr.spec`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from edgevl.errors import BundleError
from edgevl.manifest import (
    COLORS,
    file_name,
    get_bool,
    get_float,
    get_floats,
    get_int,
    get_str,
    no_unknown,
    obj,
    round_up,
)

#: detector side when neither ``limit_side`` nor tiling bounds it
DETECTOR_MAX_SIDE = 8192


@dataclass(frozen=True)
class Normalization:
    """``(x * scale - mean) / std`` per channel, on images in ``color`` order."""

    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    scale: float = 1.0 / 255.0
    color: str = "BGR"

    @staticmethod
    def parse(d: Mapping[str, Any], where: str) -> Normalization:
        m = get_floats(d, "mean", where, 3)
        s = get_floats(d, "std", where, 3, positive=True)
        return Normalization(mean=(m[0], m[1], m[2]), std=(s[0], s[1], s[2]),
                             scale=get_float(d, "scale", where, Normalization.scale, lo=0.0, lo_open=True),
                             color=get_str(d, "color", where, Normalization.color, choices=COLORS,
                                           upper=True))

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
    PART = "preprocess"

    @staticmethod
    def from_manifest(pre: Any, where: str = "preprocess") -> DetectorPreprocess:
        d = obj(pre, where)
        no_unknown(d, DetectorPreprocess.KEYS, where)
        t = obj(d.get("tile", {}), f"{where}.tile")
        no_unknown(t, ("size", "overlap", "above"), f"{where}.tile")
        tile = TileSpec(size=get_int(t, "size", f"{where}.tile", TileSpec.size, hi=65536),
                        overlap=get_int(t, "overlap", f"{where}.tile", TileSpec.overlap, hi=65536),
                        above=get_int(t, "above", f"{where}.tile", TileSpec.above, hi=65536))
        if tile.size and tile.size <= tile.overlap:
            raise BundleError(f"{where}.tile: size {tile.size} must exceed the overlap {tile.overlap}")
        D = DetectorPreprocess
        return D(
            norm=Normalization.parse(d, where),
            stride=get_int(d, "stride", where, D.stride, lo=1, hi=1024),
            interpolation=get_str(d, "interpolation", where, D.interpolation, choices=OCR_INTERPOLATIONS),
            limit_side=get_int(d, "limit_side", where, D.limit_side, hi=65536),
            limit_type=get_str(d, "limit_type", where, D.limit_type, choices=("max",)),
            tile=tile,
            min_side=get_int(d, "min_side", where, D.min_side, hi=65536),
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
    PART = "config"

    @staticmethod
    def from_manifest(cfg: Any, where: str = "config") -> DetectorConfig:
        d = obj(cfg, where)
        D = DetectorConfig
        return D(
            thresh=get_float(d, "thresh", where, D.thresh, lo=0.0, hi=1.0),
            box_thresh=get_float(d, "box_thresh", where, D.box_thresh, lo=0.0, hi=1.0),
            unclip_ratio=get_float(d, "unclip_ratio", where, D.unclip_ratio, lo=0.0, hi=100.0),
            max_candidates=get_int(d, "max_candidates", where, D.max_candidates, lo=1, hi=10**6),
            min_size=get_float(d, "min_size", where, D.min_size, lo=0.0, hi=1e6),
            dilate=get_bool(d, "dilate", where, D.dilate),
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
    PART = "preprocess"

    @staticmethod
    def from_manifest(pre: Any, where: str = "preprocess") -> ClassifierPreprocess:
        d = obj(pre, where)
        no_unknown(d, ClassifierPreprocess.KEYS, where)
        return ClassifierPreprocess(
            norm=Normalization.parse(d, where), height=get_int(d, "height", where, lo=1, hi=4096),
            width=get_int(d, "width", where, lo=1, hi=65536),
            interpolation=get_str(d, "interpolation", where, ClassifierPreprocess.interpolation,
                                  choices=OCR_INTERPOLATIONS))

    def to_manifest(self) -> dict[str, Any]:
        return {**self.norm.to_manifest(), "height": self.height, "width": self.width,
                "interpolation": self.interpolation}


@dataclass(frozen=True)
class ClassifierConfig:
    """``config`` of a ``text-orientation`` bundle."""

    labels: tuple[str, ...] = ("0", "180")
    thresh: float = 0.9

    KEYS = ("labels", "thresh")
    PART = "config"

    @staticmethod
    def from_manifest(cfg: Any, where: str = "config") -> ClassifierConfig:
        d = obj(cfg, where)
        labels = d.get("labels", list(ClassifierConfig.labels))
        if not isinstance(labels, list) or len(labels) < 2 or not all(isinstance(x, str) for x in labels):
            raise BundleError(f"{where}.labels: expected a list of at least 2 strings")
        return ClassifierConfig(labels=tuple(labels),
                                thresh=get_float(d, "thresh", where, ClassifierConfig.thresh, lo=0.0, hi=1.0))

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
    PART = "preprocess"

    @staticmethod
    def from_manifest(pre: Any, where: str = "preprocess") -> RecognizerPreprocess:
        d = obj(pre, where)
        no_unknown(d, RecognizerPreprocess.KEYS, where)
        height = get_int(d, "height", where, lo=1, hi=4096)
        sizes = _sizes(d.get("sizes", []), f"{where}.sizes")
        R = RecognizerPreprocess
        policy = get_str(d, "size_policy", where, R.size_policy, choices=SIZE_POLICIES)
        selector = file_name(d, "selector", where) if d.get("selector") is not None else None
        if policy == "selector" and selector is None:
            raise BundleError(f"{where}: size_policy 'selector' needs a selector file")
        out = R(
            norm=Normalization.parse(d, where), height=height,
            min_width=get_int(d, "min_width", where, height, lo=1, hi=65536),  # default: the height
            max_width=get_int(d, "max_width", where, R.max_width, lo=1, hi=65536),
            width_multiple=get_int(d, "width_multiple", where, R.width_multiple, lo=1, hi=1024),
            interpolation=get_str(d, "interpolation", where, R.interpolation, choices=OCR_INTERPOLATIONS),
            grayscale=get_bool(d, "grayscale", where, R.grayscale),
            pad=get_str(d, "pad", where, R.pad, choices=REC_PADS),
            sizes=sizes, size_policy=policy, selector=selector,
            margin=get_float(d, "margin", where, R.margin, lo=0.0, hi=1.0))
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
    PART = "config"

    @staticmethod
    def from_manifest(cfg: Any, where: str = "config") -> RecognizerConfig:
        d = obj(cfg, where)
        n = d.get("num_classes")
        R = RecognizerConfig
        return R(
            charset=file_name(d, "charset", where, R.charset),
            blank_index=get_int(d, "blank_index", where, R.blank_index, hi=10**7),
            num_classes=None if n is None else get_int(d, "num_classes", where, lo=2, hi=10**7),
            decoder=get_str(d, "decoder", where, R.decoder, choices=DECODERS))

    def to_manifest(self) -> dict[str, Any]:
        out: dict[str, Any] = {"charset": self.charset, "blank_index": self.blank_index}
        if self.num_classes is not None:
            out["num_classes"] = self.num_classes
        out["decoder"] = self.decoder
        return out
