"""A fake PP-OCR-shaped task family, defined the way a real one is: its own typed sections, range
policy, benchmark preprocessing and int8 calibration kind, all in this one module, and one
:class:`~edgevl.tasks.spec.TaskFamily` that ``tests/test_task_family.py`` registers.

Nothing here is known to edgevl until :data:`FAMILY` is registered.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from edgevl.manifest import Range, get_float, get_floats, get_int, no_unknown, obj
from edgevl.tasks.spec import JSON, Array, BundleLike, TaskFamily, TaskSpec

TASK = "fake-text-detection"


@dataclass(frozen=True)
class FakePreprocess:
    """A square detector input of ``side`` pixels, ``(x / 255 - mean) / std`` per channel."""

    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    side: int = 64

    KEYS = ("mean", "std", "side")
    PART = "preprocess"

    @staticmethod
    def from_manifest(pre: Any, where: str = "preprocess") -> FakePreprocess:
        d = obj(pre, where)
        no_unknown(d, FakePreprocess.KEYS, where)
        m, s = get_floats(d, "mean", where, 3), get_floats(d, "std", where, 3, positive=True)
        return FakePreprocess((m[0], m[1], m[2]), (s[0], s[1], s[2]),
                              get_int(d, "side", where, FakePreprocess.side, lo=8, hi=1024))

    def to_manifest(self) -> dict[str, Any]:
        return {"mean": list(self.mean), "std": list(self.std), "side": self.side}


@dataclass(frozen=True)
class FakeConfig:
    thresh: float = 0.25

    KEYS = ("thresh",)
    PART = "config"

    @staticmethod
    def from_manifest(cfg: Any, where: str = "config") -> FakeConfig:
        d = obj(cfg, where)
        return FakeConfig(get_float(d, "thresh", where, FakeConfig.thresh, lo=0.0, hi=1.0))

    def to_manifest(self) -> dict[str, Any]:
        return {"thresh": self.thresh}


def _sections(roles: Collection[str], pre: JSON, cfg: JSON) -> tuple[Any, ...]:
    return FakePreprocess.from_manifest(pre), FakeConfig.from_manifest(cfg)


def _ranges(pre: JSON, cfg: JSON) -> dict[str, Range]:
    side = FakePreprocess.from_manifest(pre).side
    return {"height": (side // 2, side, side * 2), "width": (side // 2, side, side * 2)}


def fake_input(image: np.ndarray[Any, Any], pre: FakePreprocess) -> Array:
    """What the fake task feeds its model: the image squashed to ``side`` x ``side``, normalised, NCHW."""
    r = cv2.resize(image, (pre.side, pre.side), interpolation=cv2.INTER_AREA)
    x = (r.astype(np.float32) / 255.0 - np.float32(pre.mean)) / np.float32(pre.std)
    return np.ascontiguousarray(x.transpose(2, 0, 1)[None], np.float32)


def _bench(bundle: BundleLike, role: str, paths: Sequence[Path]) -> list[Array]:
    from edgevl.vision.io import read_image

    pre = bundle.section(FakePreprocess)
    return [fake_input(read_image(p), pre) for p in paths]


def _kind_base() -> type[Any]:
    from edgevl_export.quantize.kinds import Kind

    return Kind


class FakeKind(_kind_base()):  # type: ignore[misc]
    """Calibrates the fake detector on a folder of images, through :func:`fake_input`."""

    def __init__(self, bundle: Any, data: Path, samples: int, holdout: int, thresholds: Any,
                 options: Any) -> None:
        super().__init__(bundle, thresholds, options)
        self.images = sorted(p for p in data.iterdir() if p.suffix == ".png")

    def calibration(self, role: str) -> list[dict[str, Array]]:
        from edgevl.vision.io import read_image

        pre = self.bundle.section(FakePreprocess)
        return [{"x": fake_input(read_image(p), pre)} for p in self.images]


FAMILY = TaskFamily("fake-ocr", (
    TaskSpec(TASK, ("model",), (FakePreprocess,), (FakeConfig,), _sections, _ranges,
             bench_inputs={"model": _bench}, quantize_kind=f"{__name__}:FakeKind",
             calibration_data="a folder of fake photos"),
))
