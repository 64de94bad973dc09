"""The matcher's calibration: a two-stage logistic model, a probability map and the operating point.

Stage A scores each candidate from its features (one weight per feature *name*, see
:mod:`edgevl.books.features`); stage B adds the margin of that score to the best *other* candidate
of the same segment (how much better this work explains the spine than any rival). The result is a
match log-odds ``z``. A one-dimensional logistic map fitted out of fold (Platt scaling on the
assigned matches of grouped cross-validation) turns ``z`` into ``P(the match is correct)``; the
assignment rejects a segment when no candidate reaches ``min_confidence``.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import MappingProxyType
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy.optimize import minimize

from edgevl.errors import CalibrationError, InputError
from edgevl.safeio import read_json_file, write_text_atomic

FloatArray = npt.NDArray[np.float64]

# the feature order of calibrations saved before weights were stored by name (index version 1)
_LEGACY_FEATURES = ("cos", "cos_margin", "title_cov", "author_cov", "tag", "ocr_explained", "log_len",
                    "other_tag", "no_author", "unexplained", "other_explains", "tag_exact", "tag_tokens",
                    "extra_tags", "title_x_author", "tag_x_author", "tag_x_title", "cos_x_margin",
                    "explained_x_len")


def logit(p: float) -> float:
    if not 0.0 < p < 1.0:
        raise CalibrationError(f"a confidence must lie strictly between 0 and 1, got {p}")
    return math.log(p / (1.0 - p))


@dataclass(frozen=True)
class Calibration:
    """Weights by feature name, stage B, the probability map and the reject operating point."""

    weights: Mapping[str, float]
    bias: float
    stage2: tuple[float, float, float]  # z = a0 + a1 * stage_a + a2 * margin
    scale: float = 1.0  # P(correct) = sigmoid(scale * z + shift)
    shift: float = 0.0
    min_confidence: float = 0.5
    k: int = 10
    source: str = "default"
    notes: Mapping[str, Any] = field(default_factory=dict)
    # an isotonic probability map instead of Platt scaling: (z, P) knots, z increasing, P
    # non-decreasing; P(z) interpolated linearly between knots and flat beyond them (empty: Platt)
    knots: tuple[tuple[float, float], ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "weights", MappingProxyType(dict(self.weights)))
        object.__setattr__(self, "notes", MappingProxyType(dict(self.notes)))
        object.__setattr__(self, "knots", tuple((float(a), float(b)) for a, b in self.knots))
        _check_values(self)

    def __reduce__(self) -> tuple[Any, tuple[dict[str, Any]]]:
        # mapping proxies do not pickle; worker processes receive the plain dict form
        return (Calibration.from_dict, (self.to_dict(),))

    @property
    def features(self) -> tuple[str, ...]:
        return tuple(self.weights)

    @property
    def reject_logit(self) -> float:
        """The match log-odds ``z`` at which P(correct) equals ``min_confidence``."""
        return map_logit(self.min_confidence, self.scale, self.shift, self.knots)

    def probability(self, z: FloatArray | float) -> FloatArray:
        """P(correct) of match log-odds ``z`` (0 where z is -inf)."""
        return map_probability(z, self.scale, self.shift, self.knots)

    def with_min_confidence(self, p: float) -> Calibration:
        return replace(self, min_confidence=float(p))

    def to_dict(self) -> dict[str, Any]:
        d = {"source": self.source, "k": self.k, "weights": dict(self.weights), "bias": self.bias,
             "stage2": list(self.stage2), "scale": self.scale, "shift": self.shift,
             "min_confidence": self.min_confidence, "notes": dict(self.notes)}
        if self.knots:
            d["knots"] = [list(k) for k in self.knots]
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Calibration:
        """Read :meth:`to_dict` output (or a version-1 calibration: weights as a list, reject log-odds)."""
        try:
            if "weights" in d:
                weights = {str(k): float(v) for k, v in d["weights"].items()}
            else:
                w = [float(v) for v in d["w"]]
                if len(w) != len(_LEGACY_FEATURES):
                    raise CalibrationError(
                        f"a list calibration needs {len(_LEGACY_FEATURES)} weights, got {len(w)}")
                weights = dict(zip(_LEGACY_FEATURES, w, strict=True))
            a0, a1, a2 = (float(v) for v in d["stage2"])
            min_conf = (float(d["min_confidence"]) if "min_confidence" in d
                        else 1 / (1 + math.exp(-float(d["reject"]))))
            return cls(weights, float(d["bias"]), (a0, a1, a2), float(d.get("scale", 1.0)),
                       float(d.get("shift", 0.0)), min_conf, _integer(d.get("k", 10), "k"),
                       str(d.get("source", "")), dict(d.get("notes", {})),
                       tuple((float(a), float(b)) for a, b in d.get("knots", ())))
        except (KeyError, TypeError, ValueError, AttributeError, OverflowError) as e:
            raise CalibrationError(f"malformed matcher calibration ({type(e).__name__}: {e})") from e


#: candidates per segment a calibration may ask for (shipped: 10; retrieval cost grows with it)
MAX_K = 200
#: features a calibration may weigh (the matcher computes a few dozen)
MAX_FEATURES = 256
#: largest magnitude of any weight, bias, stage-B coefficient, scale or shift
MAX_COEFFICIENT = 1e9
#: knots an isotonic probability map may have
MAX_KNOTS = 512


def _check_values(cal: Calibration) -> None:
    """Every number of a calibration in its range: a hand-edited or hostile file (k = 10**9, k = 0,
    NaN weights) is refused here, before any matching, instead of hanging or matching nothing."""
    if isinstance(cal.k, bool) or not isinstance(cal.k, int) or not 1 <= cal.k <= MAX_K:
        raise CalibrationError(f"calibration k (candidates per segment) must be an integer in 1..{MAX_K}, "
                               f"got {cal.k!r}")
    if len(cal.weights) > MAX_FEATURES:
        raise CalibrationError(f"calibration weighs {len(cal.weights)} features; at most {MAX_FEATURES}")
    named = [*(f"weight {k!r}" for k in cal.weights), "bias", "stage2[0]", "stage2[1]", "stage2[2]",
             "scale", "shift"]
    values = [*cal.weights.values(), cal.bias, *cal.stage2, cal.scale, cal.shift]
    if len(cal.stage2) != 3:
        raise CalibrationError(f"calibration stage2 needs 3 coefficients, got {len(cal.stage2)}")
    for name, v in zip(named, values, strict=True):
        if not isinstance(v, (int, float)) or not math.isfinite(v) or abs(v) > MAX_COEFFICIENT:
            raise CalibrationError(f"calibration {name} must be a finite number of magnitude at most "
                                   f"{MAX_COEFFICIENT:g}, got {v!r}")
    if cal.scale <= 0:
        raise CalibrationError(f"calibration scale must be positive, got {cal.scale}")
    if not isinstance(cal.min_confidence, (int, float)) or not math.isfinite(cal.min_confidence):
        raise CalibrationError("calibration min_confidence must be a finite number, "
                               f"got {cal.min_confidence!r}")
    logit(cal.min_confidence)  # validates the range
    if len(cal.knots) > MAX_KNOTS:
        raise CalibrationError(f"calibration probability map has {len(cal.knots)} knots; at most {MAX_KNOTS}")
    if cal.knots:
        kz = np.array([k[0] for k in cal.knots])
        kp = np.array([k[1] for k in cal.knots])
        if not (np.isfinite(kz).all() and np.isfinite(kp).all() and (np.abs(kz) <= MAX_COEFFICIENT).all()):
            raise CalibrationError("calibration probability map knots must be finite numbers")
        if (np.diff(kz) <= 0).any() or (np.diff(kp) < 0).any() or kp.min() < 0 or kp.max() > 1:
            raise CalibrationError("calibration probability map knots need increasing z and non-decreasing "
                                   "probabilities in [0, 1]")


def _integer(value: Any, name: str) -> int:
    """A JSON integer (10 or 10.0), never a bool or a fraction."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != int(value):
        raise CalibrationError(f"calibration {name} must be an integer, got {value!r}")
    return int(value)


def _columns(cal: Calibration, feature_names: Sequence[str]) -> list[int]:
    pos = {n: i for i, n in enumerate(feature_names)}
    unknown = [f for f in cal.features if f not in pos]
    if unknown:
        raise CalibrationError(f"calibration uses feature(s) {', '.join(unknown)} that this matcher does not "
                               "compute; refit it (`edgevl books index --calibrate ... --calibration-out`) "
                               "or rebuild the index")
    return [pos[f] for f in cal.features]


def stage_a(x: FloatArray, cal: Calibration, feature_names: Sequence[str]) -> FloatArray:
    w = np.array(list(cal.weights.values()), dtype=np.float64)
    return np.asarray(x[..., _columns(cal, feature_names)] @ w + cal.bias, dtype=np.float64)


def margins(z: FloatArray, works: npt.NDArray[np.int64]) -> FloatArray:
    """z minus the best z of another (different, valid) candidate of the same row; rows = segments."""
    z = np.where(works >= 0, z, -np.inf)
    out = np.zeros_like(z)
    k = z.shape[1]
    for r in range(k):
        other = np.delete(z, r, axis=1)
        other_w = np.delete(works, r, axis=1)
        other = np.where(other_w == works[:, [r]], -np.inf, other)
        best = other.max(axis=1) if k > 1 else np.full(z.shape[0], -np.inf)
        diff = np.where(np.isfinite(best), z[:, r] - np.where(np.isfinite(best), best, 0.0), 10.0)
        out[:, r] = np.clip(diff, -10.0, 10.0)
    out[works < 0] = 0.0
    return out


def match_logits(x: FloatArray, works: npt.NDArray[np.int64], cal: Calibration,
                 feature_names: Sequence[str]) -> FloatArray:
    """Final match log-odds (segments x k); ``-inf`` where there is no candidate. ``x``'s last axis
    holds the features ``feature_names`` in that order; the calibration picks its own by name."""
    z = stage_a(x, cal, feature_names)
    m = margins(z, works)
    a0, a1, a2 = cal.stage2
    out = a0 + a1 * z + a2 * m
    return np.where(works >= 0, out, -np.inf)


def fit_logistic(x: FloatArray, y: FloatArray, l2: float) -> tuple[FloatArray, float]:
    """L2-regularised logistic regression (bias not penalised), scipy L-BFGS on standardised
    columns (converges in tens of iterations instead of thousands); returns raw-scale weights."""
    mu = x.mean(axis=0)
    sd = x.std(axis=0)
    sd = np.where(sd > 1e-12, sd, 1.0)
    x = np.ascontiguousarray((x - mu) / sd)

    def f(params: FloatArray) -> tuple[float, FloatArray]:
        w, b = params[:-1], params[-1]
        z = x @ w + b
        # log(1 + e^z) - y z, numerically stable
        loss = float(np.sum(np.logaddexp(0.0, z) - y * z) + l2 * np.sum(w * w))
        p = 1.0 / (1.0 + np.exp(-z))
        g = np.concatenate([x.T @ (p - y) + 2 * l2 * w, [np.sum(p - y)]])
        return loss, g

    res = minimize(f, np.zeros(x.shape[1] + 1), jac=True, method="L-BFGS-B")
    w = np.asarray(res.x[:-1]) / sd
    return w, float(res.x[-1] - w @ mu)


def fit_calibration(x: FloatArray, works: npt.NDArray[np.int64], labels: FloatArray, k: int,
                    features: Sequence[str], feature_names: Sequence[str], l2: float = 0.01) -> Calibration:
    """Fit stage A (on the columns ``features`` of ``x``, n x k x F, named by ``feature_names``) and
    stage B with 0/1 ``labels`` (n x k). The probability map is the identity and ``min_confidence``
    0.5 until :func:`fit_probability` and the operating-point choice set them."""
    valid = works >= 0
    if not valid.any() or labels[valid].sum() == 0:
        raise CalibrationError("no labelled matches among the candidates: cannot calibrate")
    pos = {n: i for i, n in enumerate(feature_names)}
    cols = [pos[f] for f in features]
    w, b = fit_logistic(x[valid][:, cols], labels[valid].astype(np.float64), l2)
    cal = Calibration(dict(zip(features, w.tolist(), strict=True)), b, (0.0, 1.0, 0.0), k=k, source="fitted")
    z = stage_a(x, cal, feature_names)
    m = margins(z, works)
    feats2 = np.stack([z[valid], m[valid]], axis=1)
    w2, b2 = fit_logistic(feats2, labels[valid].astype(np.float64), l2)
    return replace(cal, stage2=(b2, float(w2[0]), float(w2[1])))


def map_probability(z: FloatArray | float, scale: float, shift: float,
                    knots: Sequence[tuple[float, float]] = ()) -> FloatArray:
    """P(correct) of match log-odds ``z`` (0 where z is -inf): the isotonic ``knots`` when given
    (linear between knots, flat beyond them), else Platt scaling ``sigmoid(scale * z + shift)``."""
    zz = np.asarray(z, dtype=np.float64)
    if knots:
        kz = np.array([k[0] for k in knots])
        kp = np.array([k[1] for k in knots])
        p = np.interp(np.where(np.isfinite(zz), zz, 0.0), kz, kp)
    else:
        s = np.clip(scale * zz + shift, -50.0, 50.0)
        p = 1.0 / (1.0 + np.exp(-s))
    return np.asarray(np.where(np.isneginf(zz), 0.0, p), dtype=np.float64)


#: a reject log-odds beyond every match (no match reaches the confidence, or every one does)
_BEYOND = 1e6


def map_logit(p: float, scale: float, shift: float, knots: Sequence[tuple[float, float]] = ()) -> float:
    """The match log-odds at which :func:`map_probability` reaches ``p``: a match is kept above it."""
    if not knots:
        return (logit(p) - shift) / scale
    logit(p)  # validates the range
    kz = [k[0] for k in knots]
    kp = [k[1] for k in knots]
    if kp[0] >= p:
        return kz[0] - _BEYOND  # every match is likely enough
    for j in range(1, len(kz)):
        if kp[j] >= p:
            return kz[j - 1] + (p - kp[j - 1]) * (kz[j] - kz[j - 1]) / (kp[j] - kp[j - 1])
    return kz[-1] + _BEYOND  # none is


def fit_isotonic(z: FloatArray, correct: FloatArray) -> tuple[tuple[float, float], ...]:
    """An isotonic probability map: pool-adjacent-violators on the log-odds of assigned matches and
    whether each was correct (out-of-fold values). Each pooled block is a step - two knots, at its
    lowest and highest log-odds, both at its share correct smoothed by half a match each way
    ((c + 0.5) / (n + 1): no block says 0 or 1 from a handful of matches) - so a match is given its
    own block's share, not a value interpolated towards the next block (knots at block means would
    lift the upper half of every low block). Unlike Platt scaling it does not force the map into a
    sigmoid's shape (on shelves without labels Platt over-states 0.1-0.3)."""
    from scipy.optimize import isotonic_regression

    ok = np.isfinite(z)
    if ok.sum() < 2 or len(np.unique(correct[ok])) < 2:
        raise CalibrationError("need both correct and wrong matches to fit the probability map")
    order = np.argsort(z[ok], kind="stable")
    zs, ys = z[ok][order], correct[ok][order].astype(np.float64)
    bounds = np.asarray(isotonic_regression(ys, increasing=True).blocks)
    kz: list[float] = []
    kp: list[float] = []
    for a, b in itertools.pairwise(bounds.tolist()):
        p = (float(ys[a:b].sum()) + 0.5) / (b - a + 1.0)
        p = max(p, kp[-1]) if kp else p  # smoothing must not break the order
        for zz in (float(zs[a]), float(zs[b - 1])):
            if not kz or zz > kz[-1]:
                kz.append(zz)
                kp.append(p)
            else:  # a tie in z with the previous knot: keep the higher share
                kp[-1] = max(kp[-1], p)
    if len(kz) > MAX_KNOTS:  # thin evenly, ends kept
        pick = np.unique(np.linspace(0, len(kz) - 1, MAX_KNOTS).round().astype(int)).tolist()
        kz, kp = [kz[i] for i in pick], [kp[i] for i in pick]
    return tuple(zip(kz, kp, strict=True))


def fit_probability(z: FloatArray, correct: FloatArray) -> tuple[float, float]:
    """Platt scaling: (scale, shift) so that sigmoid(scale * z + shift) = P(correct), fitted on the
    log-odds of assigned matches and whether each was correct (out-of-fold values)."""
    ok = np.isfinite(z)
    if ok.sum() < 2 or len(np.unique(correct[ok])) < 2:
        raise CalibrationError("need both correct and wrong matches to fit the probability map")
    w, b = fit_logistic(z[ok][:, None], correct[ok].astype(np.float64), 1e-6)
    if w[0] <= 0:
        raise CalibrationError("match log-odds do not increase with correctness: cannot calibrate")
    return float(w[0]), b


SHIPPED = "books_calibration.json"  # in edgevl/data/, written by benchmarks/books_calibrate.py


def default_calibration() -> Calibration:
    """The shipped calibration (fitted and chosen by grouped cross-validation on the library dev split)."""
    import json
    from importlib import resources

    text = resources.files("edgevl").joinpath("data", SHIPPED).read_text(encoding="utf-8")
    return Calibration.from_dict(json.loads(text))


UNLABELLED = "books_calibration_unlabelled.json"  # in edgevl/data/: photos with no library label


def default_unlabelled_calibration() -> Calibration | None:
    """The shipped calibration for photos whose spines show no library label (fitted out of fold on
    the dev split with its call numbers stripped; benchmarks/books_conditions.py), or None."""
    import json
    from importlib import resources

    path = resources.files("edgevl").joinpath("data", UNLABELLED)
    if not path.is_file():
        return None
    return Calibration.from_dict(json.loads(path.read_text(encoding="utf-8")))


def save_calibration(cal: Calibration, path: Path, *, inputs: Iterable[Path | str | None] = ()) -> None:
    """Write ``cal`` as JSON to a path the user named (never into the shared index cache, never over
    one of ``inputs``), whole or not at all."""
    import json

    write_text_atomic(path, json.dumps(cal.to_dict(), indent=2) + "\n", "calibration file",
                      inputs=[i for i in inputs if i is not None])


#: largest calibration file read (the shipped one is about 2 KB)
MAX_CALIBRATION_BYTES = 1 << 20


def load_calibration(path: Path) -> Calibration:
    """A calibration written by :func:`save_calibration`; CalibrationError when it is not one.

    Read with :func:`edgevl.safeio.read_json_file` (a regular file of at most 1 MiB, nesting at most
    16 levels, no duplicate keys, no NaN), then every value checked by :class:`Calibration`."""
    try:
        d = read_json_file(path, "matcher calibration", max_bytes=MAX_CALIBRATION_BYTES, max_depth=16)
    except InputError as e:
        raise CalibrationError(str(e)) from None
    if not isinstance(d, dict):
        raise CalibrationError(f"{path}: a matcher calibration is a JSON object")
    try:
        return Calibration.from_dict(d)
    except CalibrationError as e:
        raise CalibrationError(f"{path}: {e}") from None
