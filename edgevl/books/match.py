"""Stage 1 (retrieval) and the rescoring features of the book matcher.

Stage 1: top-k works per OCR segment by cosine similarity of char n-gram TF-IDF vectors.
Rescoring: for each candidate, rapidfuzz word alignment of the OCR words to the title, author and
tag words (how much of the title/author is on the spine, how much of the OCR the candidate
explains), tag evidence and the margin to the best other candidate. A logistic model (weights in
the index calibration) turns the features into a match log-odds for the per-image assignment.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp
from rapidfuzz import fuzz, process

from edgevl.books.index import CatalogueIndex

FEATURES = ("cos", "cos_margin", "title_cov", "author_cov", "tag", "ocr_explained", "log_len",
            "other_tag", "no_author", "unexplained", "other_explains", "tag_exact", "tag_tokens",
            "extra_tags", "title_x_author", "tag_x_author", "tag_x_title", "cos_x_margin", "explained_x_len")

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


_EMPTY = np.zeros(0, dtype=np.int64)


def count_tags(index: CatalogueIndex, query: str) -> int:
    """How many catalogue call numbers (of 2+ words) the OCR contains: a spine carries one label,
    so two or more means the segment covers several books."""
    words = query.split()
    tags = index.tag_set
    i = n = 0
    while i < len(words):
        for span in (4, 3, 2):
            if " ".join(words[i: i + span]) in tags:
                n += 1
                i += span
                break
        else:
            i += 1
    return n


def candidate_features(index: CatalogueIndex, query: str, works: IntArray, cos: FloatArray
                       ) -> FloatArray:
    """Feature rows (len(works) x len(FEATURES)) for one normalised query and its candidates."""
    k = len(works)
    out = np.zeros((k, len(FEATURES)), dtype=np.float64)
    qwords = query.split()
    valid = works >= 0
    if not qwords or not valid.any():
        return out
    qlen = np.array([len(w) for w in qwords], dtype=np.float64)
    # one rapidfuzz cdist per query over the union of the candidates' words (global word ids)
    ids = [index.word_ids(int(w)) if w >= 0 else (_EMPTY, _EMPTY, _EMPTY) for w in works]
    parts = [x[p] for p in range(3) for x in ids]  # titles of all candidates, surnames, all words
    sizes = np.array([len(x) for x in parts], dtype=np.int64)
    flat_global = np.concatenate(parts)
    vocab_ids = np.unique(flat_global)
    gwords = index.vocab_words()
    words = [gwords[i] for i in vocab_ids.tolist()]
    sim = process.cdist(words, qwords, scorer=fuzz.ratio, dtype=np.uint8).astype(np.float64) / 100.0
    wlen = np.array([len(x) for x in words], dtype=np.float64)
    flat = np.searchsorted(vocab_ids, flat_global)
    owner = np.repeat(np.arange(3 * k), sizes)
    word_best = sim.max(axis=1)[flat] * wlen[flat]
    covered = np.bincount(owner, weights=word_best, minlength=3 * k)
    lengths = np.bincount(owner, weights=wlen[flat], minlength=3 * k)
    coverage = np.divide(covered, lengths, out=np.zeros(3 * k), where=lengths > 0)
    tags = [index.norm_tag[w] if w >= 0 else "" for w in works]
    tag_scores = np.array([fuzz.partial_ratio(t, query) / 100.0 if t else 0.0 for t in tags])
    # best similarity of each OCR word to each candidate's words (k x len(qwords))
    best_q = np.zeros((k, len(qwords)))
    starts = np.concatenate([[0], np.cumsum(sizes)])[2 * k: 3 * k]
    nonempty = sizes[2 * k:] > 0
    if nonempty.any():
        seg = sim[flat[starts[0]:]]
        best_q[nonempty] = np.maximum.reduceat(seg, starts[nonempty] - starts[0], axis=0)
    qsum = float(qlen.sum())
    ncos = np.where(valid, cos, 0.0)
    wk = np.where(valid, works, -1)
    # pairs (r, s) of different valid candidates
    other = valid[None, :] & valid[:, None] & (wk[None, :] != wk[:, None])
    best_other = np.where(other, ncos[None, :], 0.0).max(axis=1)
    tag_arr = np.array(tags, dtype=object)
    diff_tag = other & (tag_arr[:, None] != tag_arr[None, :])
    other_tag = np.where(diff_tag, tag_scores[None, :], 0.0).max(axis=1)
    explained = best_q @ qlen
    union = np.maximum(best_q[:, None, :], best_q[None, :, :]) @ qlen  # k x k
    extra = np.where(other, union - explained[:, None], 0.0).max(axis=1)
    out[:, 0] = ncos
    out[:, 1] = ncos - best_other
    out[:, 4] = tag_scores
    out[:, 5] = explained / qsum
    out[:, 6] = np.log1p(qsum)
    out[:, 7] = other_tag
    out[:, 9] = np.log1p(np.maximum(qsum - explained, 0.0))
    # how many more OCR characters the best *other* work would explain (two books in one segment)
    out[:, 10] = np.log1p(np.maximum(extra, 0.0))
    padded = f" {query} "
    qset = set(qwords)
    for r, w in enumerate(works):
        if w < 0:
            continue
        tag = tags[r]
        if tag:
            out[r, 11] = 1.0 if f" {tag} " in padded else 0.0
            tw = tag.split()
            out[r, 12] = sum(x in qset for x in tw) / len(tw)
    out[:, 2] = coverage[:k]
    out[:, 3] = coverage[k: 2 * k]
    out[:, 8] = (sizes[k: 2 * k] == 0).astype(np.float64)
    out[:, 13] = max(0, count_tags(index, query) - 1)
    out[:, 14] = out[:, 2] * out[:, 3]
    out[:, 15] = out[:, 4] * out[:, 3]
    out[:, 16] = out[:, 4] * out[:, 2]
    out[:, 17] = out[:, 0] * out[:, 1]
    out[:, 18] = out[:, 5] * out[:, 6]
    out[~valid] = 0.0
    return out


def all_features(index: CatalogueIndex, queries: list[str], cands: Candidates) -> FloatArray:
    """Features for every query (n x k x F)."""
    return np.stack([candidate_features(index, q, cands.works[i], cands.cos[i])
                     for i, q in enumerate(queries)]) if queries else np.zeros((0, cands.works.shape[1],
                                                                                 len(FEATURES)))
