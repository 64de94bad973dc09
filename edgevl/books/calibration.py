"""The matcher's calibration: a two-stage logistic model and the reject threshold.

Stage A scores each candidate from its features (:data:`edgevl.books.match.FEATURES`); stage B
adds the margin of that score to the best *other* candidate of the same segment (how much better
this work explains the spine than any rival). The result is a match log-odds; the assignment
rejects a segment when no candidate beats ``reject``. Fitted on labelled segments with
:func:`fit_calibration` (L2-regularised logistic regression, scipy L-BFGS) -- a dozen parameters,
so it transfers to unseen data; the shipped default was fitted on the library dev split.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
from scipy.optimize import minimize

from edgevl.errors import CalibrationError

FloatArray = npt.NDArray[np.float64]

# Fitted with `edgevl books index --calibrate` on ../shared/data/library/annotations_dev.csv against
# library_books.csv (19 weights + 3 stage-B + the reject log-odds). 5-fold cross-validation grouped by
# shelf photo gives R 0.962 / P 0.943 / F1 0.952 at reject -1.0 (in-sample F1 0.953): no sign of
# overfitting. The reject log-odds -1.0 is where the grouped CV reaches recall >= 0.96 at the best F1.
DEFAULT_CALIBRATION: dict[str, Any] = {
    "source": "default",
    "k": 10,
    "w": [-4.228, 21.609, 11.407, 7.552, 4.977, -12.042, -0.988, -0.676, 0.582, -0.747, -1.052, 1.51,
          2.095, -5.133, -4.024, -3.797, -3.304, -17.953, 2.875],
    "b": -4.895,
    "stage2": [-0.353, 0.89, 0.087],
    "reject": -1.0,
}


def stage_a(x: FloatArray, cal: dict[str, Any]) -> FloatArray:
    w = np.asarray(cal["w"], dtype=np.float64)
    if x.shape[-1] != w.shape[0]:
        raise CalibrationError(f"calibration has {w.shape[0]} weights but the matcher computes "
                               f"{x.shape[-1]} features; rebuild the index (`edgevl books index --rebuild`)")
    return np.asarray(x @ w + float(cal["b"]), dtype=np.float64)


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


def match_logits(x: FloatArray, works: npt.NDArray[np.int64], cal: dict[str, Any]) -> FloatArray:
    """Final match log-odds (segments x k); ``-inf`` where there is no candidate."""
    z = stage_a(x, cal)
    m = margins(z, works)
    a0, a1, a2 = (float(v) for v in cal["stage2"])
    out = a0 + a1 * z + a2 * m
    return np.where(works >= 0, out, -np.inf)


def _fit_logistic(x: FloatArray, y: FloatArray, l2: float) -> tuple[FloatArray, float]:
    def f(params: FloatArray) -> tuple[float, FloatArray]:
        w, b = params[:-1], params[-1]
        z = x @ w + b
        # log(1 + e^z) - y z, numerically stable
        loss = float(np.sum(np.logaddexp(0.0, z) - y * z) + l2 * np.sum(w * w))
        p = 1.0 / (1.0 + np.exp(-z))
        g = np.concatenate([x.T @ (p - y) + 2 * l2 * w, [np.sum(p - y)]])
        return loss, g

    res = minimize(f, np.zeros(x.shape[1] + 1), jac=True, method="L-BFGS-B")
    return np.asarray(res.x[:-1]), float(res.x[-1])


def fit_calibration(x: FloatArray, works: npt.NDArray[np.int64], labels: FloatArray, k: int,
                    l2: float = 0.01) -> dict[str, Any]:
    """Fit stage A and stage B on candidate features ``x`` (n x k x F) with 0/1 ``labels`` (n x k).

    The reject threshold is left at 0 (p = 0.5); tune it with :func:`tune_reject`.
    """
    valid = works >= 0
    if not valid.any() or labels[valid].sum() == 0:
        raise CalibrationError("no labelled matches among the candidates: cannot calibrate")
    w, b = _fit_logistic(x[valid], labels[valid].astype(np.float64), l2)
    cal: dict[str, Any] = {"source": "fitted", "k": k, "w": w.tolist(), "b": b, "stage2": [0.0, 1.0, 0.0],
                           "reject": 0.0}
    z = stage_a(x, cal)
    m = margins(z, works)
    feats2 = np.stack([z[valid], m[valid]], axis=1)
    w2, b2 = _fit_logistic(feats2, labels[valid].astype(np.float64), l2)
    cal["stage2"] = [b2, float(w2[0]), float(w2[1])]
    return cal
