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


#: above this many cells (segments x (columns + segments)) an image is assigned on a sparse graph
DENSE_CELLS = 4_000_000


def assign_edges(n: int, rows: npt.NDArray[np.int64], cols: npt.NDArray[np.int64], scores: FloatArray,
                 reject: FloatArray, capacity: npt.NDArray[np.int64]) -> list[int | None]:
    """:func:`assign` on a sparse problem: ``scores[e]`` is the log-odds of segment ``rows[e]`` and
    column ``cols[e]`` (one edge per candidate; the rest are not allowed). Memory and time grow with
    the edges, not segments x columns, so one image of 20,000 segments against a large catalogue
    is solved in seconds instead of allocating gigabytes (scipy's sparse LAPJVsp)."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import min_weight_full_bipartite_matching

    if n == 0:
        return []
    rej = np.broadcast_to(np.asarray(reject, dtype=np.float64), (n,))
    order = np.lexsort((-scores, cols, rows))  # one edge per (segment, column): its best score
    rows, cols, scores = rows[order], cols[order], scores[order]
    first = np.ones(len(rows), dtype=bool)
    first[1:] = (rows[1:] != rows[:-1]) | (cols[1:] != cols[:-1])
    rows, cols, scores = rows[first], cols[first], scores[first]
    keep = np.isfinite(scores) & (scores > rej[rows])  # never pick a column worse than rejecting
    rows, cols, gain = rows[keep], cols[keep], scores[keep] - rej[rows[keep]]
    used = np.unique(cols)  # only columns some segment may take, each expanded to its capacity
    cap = np.minimum(capacity[used], n)
    slot_start = np.concatenate([[0], np.cumsum(cap)])
    pos = np.searchsorted(used, cols)
    reps = cap[pos]
    e_rows = np.repeat(rows, reps)
    e_gain = np.repeat(gain, reps)
    offs = np.arange(len(e_rows)) - np.repeat(np.cumsum(reps) - reps, reps)
    e_slot = np.repeat(slot_start[pos], reps) + offs
    n_slots = int(slot_start[-1])
    big = float(np.abs(e_gain).max() + 1.0) if e_gain.size else 1.0
    eps = 1e-9 * big / max(1, n_slots + n)  # ties: towards the lower column, then towards rejecting
    # costs all positive (LAPJVsp ignores no edge then); one reject slot per row, cost big + 1
    e_cost = (big + 1.0) - e_gain + eps * e_slot
    r_all = np.concatenate([e_rows, np.arange(n)])
    c_all = np.concatenate([e_slot, n_slots + np.arange(n)])
    w_all = np.concatenate([e_cost, np.full(n, big + 1.0 + eps * (n_slots + n))])
    graph = coo_matrix((w_all, (r_all, c_all)), shape=(n, n_slots + n)).tocsr()
    row_ind, col_ind = min_weight_full_bipartite_matching(graph)
    slot_col = np.repeat(used, cap)
    out: list[int | None] = [None] * n
    for r, c in zip(row_ind.tolist(), col_ind.tolist(), strict=True):
        if c < n_slots:
            out[r] = int(slot_col[c])
    return out
