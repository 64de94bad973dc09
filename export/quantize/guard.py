"""The accuracy guard: int8 against fp32 on held-out samples, with user thresholds."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

Floats = npt.NDArray[np.float32]


@dataclass(frozen=True)
class GuardThresholds:
    """What an int8 bundle must keep, measured against the fp32 bundle on held-out samples.

    ``min_cosine`` / ``min_mean_cosine``: worst-case and mean cosine between int8 and fp32
    embeddings (encoders). ``min_top1_agreement``: zero-shot top-1 agreement (CLIP, when texts are
    given). ``max_accuracy_drop``: recogniser word accuracy drop, in points of 1.0 (labels known);
    ``min_agreement``: share of held-out outputs identical to fp32 (recogniser words without
    labels, orientation labels). ``min_box_agreement``: detector box F1 at IoU ``box_iou``
    between int8 and fp32 boxes.
    """

    min_cosine: float = 0.99
    min_mean_cosine: float = 0.995
    min_top1_agreement: float = 0.95
    max_accuracy_drop: float = 0.01
    min_agreement: float = 0.95
    min_box_agreement: float = 0.95
    box_iou: float = 0.5

    def to_dict(self) -> dict[str, float]:
        return asdict(self)


@dataclass(frozen=True)
class Check:
    """One guarded metric: its value, the threshold, and whether it passes (higher is better)."""

    name: str
    value: float
    threshold: float
    passed: bool

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "value": round(self.value, 6), "threshold": self.threshold,
                "passed": self.passed}


@dataclass(frozen=True)
class GuardResult:
    """The checks and the extra metrics (reported, not guarded) of one int8 candidate."""

    checks: tuple[Check, ...]
    metrics: Mapping[str, float] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return all(c.passed for c in self.checks)

    @property
    def margin(self) -> float:
        """The smallest (value - threshold) over the checks: what the sweep maximises."""
        return min((c.value - c.threshold for c in self.checks), default=0.0)

    def to_dict(self) -> dict[str, Any]:
        return {"passed": self.passed, "checks": [c.to_dict() for c in self.checks],
                "metrics": {k: round(float(v), 6) for k, v in self.metrics.items()}}


def at_least(name: str, value: float, threshold: float) -> Check:
    return Check(name, float(value), float(threshold), bool(value >= threshold - 1e-12))


def cosines(a: Floats, b: Floats) -> Floats:
    """Row-wise cosine similarity of two [n, D] arrays."""
    a = np.asarray(a, np.float64).reshape(len(a), -1)
    b = np.asarray(b, np.float64).reshape(len(b), -1)
    na = np.linalg.norm(a, axis=1)
    nb = np.linalg.norm(b, axis=1)
    out: Floats = ((a * b).sum(1) / np.maximum(na * nb, 1e-12)).astype(np.float32)
    return out


def embedding_checks(ref: Floats, got: Floats, t: GuardThresholds, prefix: str = "") -> list[Check]:
    c = cosines(ref, got)
    return [at_least(f"{prefix}worst_cosine", float(c.min()), t.min_cosine),
            at_least(f"{prefix}mean_cosine", float(c.mean()), t.min_mean_cosine)]


def top1_agreement(img_ref: Floats, txt_ref: Floats, img: Floats, txt: Floats) -> float:
    """Share of images whose best-matching text is the same for fp32 and int8 embeddings."""
    def top1(i: Floats, x: Floats) -> npt.NDArray[np.int64]:
        i = i / np.maximum(np.linalg.norm(i, axis=1, keepdims=True), 1e-12)
        x = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
        return np.asarray((i @ x.T).argmax(1), np.int64)

    return float((top1(img_ref, txt_ref) == top1(img, txt)).mean())


def str_word(s: str) -> str:
    """The STR protocol's comparison form: case-insensitive, alphanumerics only."""
    return re.sub(r"[^0-9a-z]", "", s.lower())


def word_accuracy(preds: Sequence[str], labels: Sequence[str]) -> float:
    return float(np.mean([str_word(p) == str_word(g) for p, g in zip(preds, labels, strict=True)]))


def quad_iou(a: npt.NDArray[Any], b: npt.NDArray[Any]) -> float:
    from shapely.geometry import Polygon

    pa, pb = Polygon(a).buffer(0), Polygon(b).buffer(0)
    inter = pa.intersection(pb).area
    union = pa.union(pb).area
    return float(inter / union) if union > 0 else 0.0


def box_agreement(ref: Sequence[npt.NDArray[Any]], got: Sequence[npt.NDArray[Any]], iou: float) -> float:
    """F1 of int8 boxes against fp32 boxes, one-to-one matched (Hungarian) at IoU ≥ ``iou``.

    ``ref``/``got`` hold one (N, 4, 2) quad array per image; images without boxes on both sides
    count as agreeing.
    """
    from scipy.optimize import linear_sum_assignment

    tp = n_ref = n_got = 0
    for r, g in zip(ref, got, strict=True):
        n_ref += len(r)
        n_got += len(g)
        if len(r) == 0 or len(g) == 0:
            continue
        m = np.array([[quad_iou(x, y) for y in g] for x in r])
        rows, cols = linear_sum_assignment(-m)
        tp += int((m[rows, cols] >= iou).sum())
    if n_ref == 0 and n_got == 0:
        return 1.0
    return 2.0 * tp / (n_ref + n_got)
