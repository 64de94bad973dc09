"""Per-image one-to-one assignment of segments to catalogue works, with a "no match" per segment.

The books on one shelf image are distinct catalogue entries, so matching a whole image is an
assignment problem (Llabrés et al., 2024). ``scores[i, j]`` is the match log-odds of segment i and
candidate column j (``-inf`` where j is not a candidate of i). Each segment also gets its own
reject column worth ``reject[i]``; :func:`scipy.optimize.linear_sum_assignment` then maximises the
total score, so a segment is matched only where that beats rejecting it and no column is used twice.
Columns can have a capacity (copies of one work on the same shelf).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
from scipy.optimize import linear_sum_assignment

from edgevl.errors import InputError

FloatArray = npt.NDArray[np.float64]


def assign(scores: FloatArray, reject: float | Sequence[float] | FloatArray = 0.0,
           capacity: Sequence[int] | npt.NDArray[np.int64] | None = None) -> list[int | None]:
    """Best one-to-one assignment; returns, per row, the chosen column or None (rejected).

    ``scores``: (segments x columns) log-odds, ``-inf`` (or nan) = not allowed. ``reject``: the
    score of "no match" per row (scalar or one per row). ``capacity``: how many rows each column may
    take (default 1). Ties are broken towards the lower column index and towards rejecting.
    """
    s = np.asarray(scores, dtype=np.float64)
    if s.ndim != 2:
        raise InputError(f"assignment scores must be 2-D (segments x candidates), got shape {s.shape}")
    n, m = s.shape
    rej = np.broadcast_to(np.asarray(reject, dtype=np.float64), (n,)).copy() if n else np.zeros(0)
    if capacity is None:
        cap = np.ones(m, dtype=np.int64)
    else:
        cap = np.asarray(capacity, dtype=np.int64)
        if cap.shape != (m,) or (cap < 0).any():
            raise InputError(f"capacity must be {m} non-negative integers, got {cap.tolist()}")
    if n == 0:
        return []
    cap = np.minimum(cap, n)
    col_of = np.repeat(np.arange(m), cap)
    allowed = np.isfinite(s)
    expanded = s[:, col_of]
    ok = allowed[:, col_of] & (expanded > rej[:, None])  # never pick a column worse than rejecting
    finite = np.concatenate([s[allowed], rej])
    big = float(np.abs(finite).max() + 1.0) * (n + 1) if finite.size else 1.0
    # maximise => minimise the negated gains; a tiny column-order term breaks ties deterministically
    eps = 1e-9 * big / max(1, n * (len(col_of) + n))
    gain = np.where(ok, expanded - rej[:, None], -big)
    cost = -gain + eps * np.arange(len(col_of))[None, :]
    reject_block = np.full((n, n), big)
    np.fill_diagonal(reject_block, 0.0)
    full = np.concatenate([cost, reject_block], axis=1)
    rows, cols = linear_sum_assignment(full)
    out: list[int | None] = [None] * n
    for r, c in zip(rows.tolist(), cols.tolist(), strict=True):
        if c < len(col_of) and ok[r, c]:
            out[r] = int(col_of[c])
    return out
