"""Stage 1 of the book matcher: top-k works per OCR segment by cosine similarity of char n-gram
TF-IDF vectors. The rescoring features of each candidate are in :mod:`edgevl.books.features`."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

from edgevl.books.index import CatalogueIndex

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


@dataclass(frozen=True)
class Candidates:
    """Top-k works per query: ``works[i, r]`` (-1 where fewer than k), ``cos[i, r]``."""

    works: IntArray
    cos: FloatArray


def top_k_sparse(sims: sp.csr_matrix, k: int) -> Candidates:
    """Row-wise top-k of a sparse similarity matrix (descending; ties broken by work id)."""
    n = sims.shape[0]
    works = np.full((n, k), -1, dtype=np.int64)
    cos = np.zeros((n, k), dtype=np.float64)
    indptr, indices, data = sims.indptr, sims.indices, sims.data
    for i in range(n):
        a, b = indptr[i], indptr[i + 1]
        if a == b:
            continue
        d = data[a:b]
        ids = indices[a:b]
        part = np.argpartition(-d, k - 1)[:k] if b - a > k else np.arange(b - a)
        order = part[np.lexsort((ids[part], -d[part]))]
        works[i, : len(order)] = ids[order]
        cos[i, : len(order)] = d[order]
    return Candidates(works, cos)


# Above PRUNE_ABOVE works, retrieval scores each query with its rarest n-grams only -- rarest first,
# until their posting lists hold POSTINGS_BUDGET entries (the common n-grams dominate the cost and
# carry little IDF weight) -- shortlists SHORTLIST works by that partial score and re-ranks them by
# the exact cosine.
PRUNE_ABOVE = 200_000
POSTINGS_BUDGET = 100_000
SHORTLIST = 100
QUERY_CHUNK = 256


def retrieve(index: CatalogueIndex, queries: list[str], k: int = 10, prune: bool | None = None) -> Candidates:
    """Stage 1: top-k works for each normalised query by n-gram cosine similarity."""
    q = index.query_vectors(queries)
    if prune is None:
        prune = len(index) > PRUNE_ABOVE
    if not prune:
        return top_k_sparse((q @ index.postings).tocsr(), k)
    qp = q.copy()
    df = index.doc_freq[qp.indices]
    keep = np.zeros(len(df), dtype=bool)
    for i in range(qp.shape[0]):
        a, b = qp.indptr[i], qp.indptr[i + 1]
        order = np.argsort(df[a:b], kind="stable")
        used = np.cumsum(df[a:b][order])
        keep[a + order[(used - df[a:b][order]) < POSTINGS_BUDGET]] = True
    qp.data = np.where(keep, qp.data, 0.0).astype(qp.data.dtype)
    qp.eliminate_zeros()
    parts = [top_k_sparse((qp[s: s + QUERY_CHUNK] @ index.postings).tocsr(), max(k, SHORTLIST))
             for s in range(0, qp.shape[0], QUERY_CHUNK)]
    short = Candidates(np.concatenate([p.works for p in parts]), np.concatenate([p.cos for p in parts]))
    # exact cosine of the shortlisted works
    n, s = short.works.shape
    flat = np.where(short.works >= 0, short.works, 0).ravel()
    rows = index.vectors[flat]
    reps = q[np.repeat(np.arange(n), s)]
    exact = np.asarray(rows.multiply(reps).sum(axis=1)).reshape(n, s)
    exact = np.where(short.works >= 0, exact, -1.0)
    order = np.argsort(-exact, axis=1, kind="stable")[:, :k]
    works = np.take_along_axis(short.works, order, axis=1)
    cos = np.take_along_axis(exact, order, axis=1)
    works = np.where(cos >= 0, works, -1)
    return Candidates(works, np.maximum(cos, 0.0))
