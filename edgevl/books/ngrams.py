"""Character n-gram vectors over the normalised alphabet ``[ 0-9a-z]`` (37 symbols).

An n-gram's id is its base-37 number, so there is no vocabulary to build or store and no hash
collisions (3-grams: 50,653 ids; 4-grams: 1.87M). Vectors are TF-IDF weighted, L2-normalised
rows of a ``scipy.sparse`` CSR matrix. Written here rather than with scikit-learn because the
whole thing is a few numpy lines and keeps the runtime dependency-free on a Jetson.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

ALPHABET = 37  # ' ' = 0, '0'-'9' = 1..10, 'a'-'z' = 11..36

_LUT = np.zeros(256, dtype=np.int64)
for _i, _c in enumerate("0123456789abcdefghijklmnopqrstuvwxyz"):
    _LUT[ord(_c)] = _i + 1

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float32]


def n_features(n: int) -> int:
    return int(ALPHABET**n)


def _codes(texts: Sequence[str]) -> tuple[IntArray, IntArray]:
    """Codes of ``' ' + text + ' '`` for every text, concatenated; and each text's start offset."""
    padded = [f" {t} " for t in texts]
    joined = "".join(padded).encode("ascii", "replace")
    codes = _LUT[np.frombuffer(joined, dtype=np.uint8)]
    lengths = np.fromiter((len(p) for p in padded), dtype=np.int64, count=len(padded))
    starts = np.zeros(len(padded) + 1, dtype=np.int64)
    np.cumsum(lengths, out=starts[1:])
    return codes, starts


def count_matrix(texts: Sequence[str], n: int = 3, chunk: int = 100_000) -> sp.csr_matrix:
    """Raw n-gram counts (rows = texts, already normalised with :func:`normalize`), built in chunks
    of ``chunk`` texts to bound the temporary memory on million-entry catalogues."""
    if len(texts) > chunk:
        parts = [_count_chunk(texts[i: i + chunk], n) for i in range(0, len(texts), chunk)]
        return sp.csr_matrix(sp.vstack(parts, format="csr"), dtype=np.float32)
    return _count_chunk(texts, n)


def _count_chunk(texts: Sequence[str], n: int) -> sp.csr_matrix:
    codes, starts = _codes(texts)
    total = codes.shape[0]
    if total < n:
        return sp.csr_matrix((len(texts), n_features(n)), dtype=np.float32)
    ids = np.zeros(total - n + 1, dtype=np.int64)
    for k in range(n):
        ids = ids * ALPHABET + codes[k: total - n + 1 + k]
    pos = np.arange(total - n + 1, dtype=np.int64)
    row = np.searchsorted(starts, pos, side="right") - 1
    # keep windows that lie inside one text
    keep = pos + n <= starts[row + 1]
    row, ids = row[keep], ids[keep]
    data = np.ones(row.shape[0], dtype=np.float32)
    m = sp.csr_matrix((data, (row, ids)), shape=(len(texts), n_features(n)), dtype=np.float32)
    m.sum_duplicates()
    return m


def idf_weights(counts: sp.csr_matrix) -> FloatArray:
    """Smooth IDF over the documents of ``counts``: ``log((1 + N) / (1 + df)) + 1``."""
    df = np.bincount(counts.indices, minlength=counts.shape[1]).astype(np.float64)
    n_docs = counts.shape[0]
    out: FloatArray = (np.log((1.0 + n_docs) / (1.0 + df)) + 1.0).astype(np.float32)
    return out


def tfidf(counts: sp.csr_matrix, idf: FloatArray, copy: bool = True) -> sp.csr_matrix:
    """Sublinear TF (1 + log tf) times IDF, rows L2-normalised. ``copy=False`` shares the index
    arrays with ``counts`` (which must then not be used again): saves memory on huge catalogues."""
    data = ((1.0 + np.log(counts.data)) * idf[counts.indices]).astype(np.float32)
    sq = np.zeros(data.size + 1, dtype=np.float64)
    if data.size:
        np.cumsum(data.astype(np.float64) ** 2, out=sq[1:])
    row_sq = sq[counts.indptr[1:]] - sq[counts.indptr[:-1]]
    norms = np.sqrt(np.maximum(row_sq, 0.0))
    norms[norms == 0] = 1.0
    data /= np.repeat(norms, np.diff(counts.indptr)).astype(np.float32)
    indices, indptr = counts.indices, counts.indptr
    if copy:
        indices, indptr = indices.copy(), indptr.copy()
    return sp.csr_matrix((data, indices, indptr), shape=counts.shape, copy=False)
