"""Per-image assignment on hand-made log-odds matrices."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from edgevl.books.assign import assign
from edgevl.errors import InputError

NO = -np.inf


def brute_force(s: np.ndarray, reject: float, cap: list[int]) -> float:
    """Best total over every assignment (rows -> column or None), for checking small cases."""
    best = -np.inf
    n, m = s.shape
    for choice in itertools.product([None, *range(m)], repeat=n):
        used = [sum(c == j for c in choice) for j in range(m)]
        if any(u > c for u, c in zip(used, cap, strict=True)):
            continue
        if any(c is not None and not np.isfinite(s[i, c]) for i, c in enumerate(choice)):
            continue
        total = sum(reject if c is None else s[i, c] for i, c in enumerate(choice))
        best = max(best, total)
    return best


def total(s: np.ndarray, reject: float, out: list[int | None]) -> float:
    return sum(reject if c is None else float(s[i, c]) for i, c in enumerate(out))


def test_one_to_one_prefers_the_best_total_not_each_best() -> None:
    s = np.array([[5.0, 4.0], [4.5, 1.0]])
    # greedy would give row 0 col 0 and row 1 nothing useful; the optimum swaps
    assert assign(s, reject=0.0) == [1, 0]


def test_rejection_when_nothing_beats_the_reject_score() -> None:
    s = np.array([[2.0, NO], [-0.5, NO], [NO, 0.4]])
    assert assign(s, reject=0.0) == [0, None, 1]
    assert assign(s, reject=1.0) == [0, None, None]
    # a per-row reject score: row 1 would take column 0 (-0.5 > -1) but row 0 needs it more
    assert assign(s, reject=[0.0, -1.0, 0.0]) == [0, None, 1]
    assert assign(np.array([[NO], [-0.5]]), reject=[0.0, -1.0]) == [None, 0]


def test_a_column_is_used_once_and_the_loser_is_rejected() -> None:
    s = np.array([[3.0], [2.0]])
    assert assign(s, reject=0.0) == [0, None]


def test_capacity_allows_copies_of_one_work() -> None:
    s = np.array([[3.0], [2.0], [1.0]])
    assert assign(s, reject=0.0, capacity=[2]) == [0, 0, None]
    assert assign(s, reject=0.0, capacity=[0]) == [None, None, None]


def test_more_segments_than_candidates() -> None:
    s = np.array([[1.0, 2.0], [2.5, 0.5], [3.0, 1.0], [0.2, 0.1]])
    out = assign(s, reject=0.0)
    assert sorted(c for c in out if c is not None) == [0, 1]
    assert total(s, 0.0, out) == pytest.approx(brute_force(s, 0.0, [1, 1]))


def test_ties_are_deterministic_and_optimal() -> None:
    s = np.ones((3, 3))
    out = assign(s, reject=0.0)
    assert sorted(out) == [0, 1, 2]  # type: ignore[type-var]
    assert out == assign(s.copy(), reject=0.0)
    # a tie with the reject score rejects
    assert assign(np.array([[0.0]]), reject=0.0) == [None]


def test_matches_brute_force_on_random_small_problems() -> None:
    rng = np.random.default_rng(0)
    for _ in range(60):
        n, m = rng.integers(1, 5), rng.integers(1, 4)
        s = rng.normal(size=(n, m))
        s[rng.random((n, m)) < 0.3] = NO
        cap = rng.integers(0, 3, size=m).tolist()
        reject = float(rng.normal(scale=0.5))
        out = assign(s, reject=reject, capacity=cap)
        for j in range(m):
            assert sum(c == j for c in out) <= cap[j]
        assert total(s, reject, out) == pytest.approx(brute_force(s, reject, cap))


def test_empty_and_bad_input() -> None:
    assert assign(np.zeros((0, 3))) == []
    assert assign(np.zeros((2, 0))) == [None, None]
    with pytest.raises(InputError):
        assign(np.zeros(3))
    with pytest.raises(InputError):
        assign(np.zeros((2, 2)), capacity=[1])


def test_sparse_assignment_reaches_the_dense_optimum() -> None:
    """assign_edges (used for huge images) finds an assignment as good as the dense solver, with
    capacities, per-row reject scores, duplicate edges (the best one counts) and -inf scores."""
    from edgevl.books.assign import assign_edges

    rng = np.random.default_rng(1)
    for _ in range(80):
        n, m = int(rng.integers(1, 9)), int(rng.integers(1, 6))
        s = rng.normal(0.5, 1.0, (n, m))
        s[rng.random((n, m)) < 0.3] = NO
        rej = rng.normal(0.0, 0.5, n)
        cap = rng.integers(0, 3, m)
        rows, cols = np.nonzero(np.isfinite(s) | (rng.random((n, m)) < 0.5))
        scores = s[rows, cols]
        # a worse duplicate of some edges: must not add up or win
        dup = rng.random(len(rows)) < 0.3
        rows2 = np.concatenate([rows, rows[dup]])
        cols2 = np.concatenate([cols, cols[dup]])
        scores2 = np.concatenate([scores, scores[dup] - 1.0])
        dense = assign(s, reject=rej, capacity=cap.tolist())
        sparse = assign_edges(n, rows2.astype(np.int64), cols2.astype(np.int64), scores2, rej, cap)
        for c in range(m):
            assert sum(x == c for x in sparse) <= cap[c]
        assert all(x is None or np.isfinite(s[i, x]) for i, x in enumerate(sparse))

        def tot(out: list[int | None], s: np.ndarray = s, rej: np.ndarray = rej) -> float:
            return sum(float(rej[i]) if c is None else float(s[i, c]) for i, c in enumerate(out))

        assert tot(sparse) == pytest.approx(tot(dense), abs=1e-9)


def test_one_image_of_20000_segments_is_assigned_without_a_dense_matrix() -> None:
    """A hostile segments file (20,000 segments in one image, each with 10 candidates among 150,000
    works) is assigned in bounded memory: the dense matrix would need 20,000 x 170,000 floats."""
    from edgevl.books.matcher import assign_image

    rng = np.random.default_rng(0)
    n, k, works_n = 20_000, 10, 150_000
    works = rng.integers(0, works_n, (n, k)).astype(np.int64)
    logits = rng.normal(0.0, 2.0, (n, k))
    out = assign_image(works, logits, 0.0, np.ones(works_n, dtype=np.int64))
    assert len(out) == n
    chosen = [w for w in out if w is not None]
    assert len(chosen) == len(set(chosen))  # one copy of each work: used once
    best = np.where(logits > 0, logits, -np.inf).max(axis=1)
    assert len(chosen) >= 0.9 * int(np.isfinite(best).sum())  # most segments with a positive score match
