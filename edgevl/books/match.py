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


def retrieve(index: CatalogueIndex, queries: list[str], k: int = 10) -> Candidates:
    """Stage 1: top-k works for each normalised query by n-gram cosine similarity."""
    q = index.query_vectors(queries)
    sims = (q @ index.vectors.T).tocsr()
    return top_k_sparse(sims, k)


def _coverage(sim: FloatArray, lengths: FloatArray) -> float:
    """Length-weighted mean of each word's best similarity (rows = the words being covered)."""
    total = float(lengths.sum())
    if total == 0.0 or sim.shape[1] == 0:
        return 0.0
    return float((sim.max(axis=1) * lengths).sum() / total)


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
    # one rapidfuzz cdist per query over the union of the candidates' words
    vocab: dict[str, int] = {}
    per_cand: list[tuple[list[int], list[int], list[int]]] = []
    for w in works:
        if w < 0:
            per_cand.append(([], [], []))
            continue
        tw, aw, rest = index.words(int(w))
        t = [vocab.setdefault(x, len(vocab)) for x in tw]
        a = [vocab.setdefault(x, len(vocab)) for x in aw]
        allw = [vocab.setdefault(x, len(vocab)) for x in rest]
        per_cand.append((t, a, allw))
    words = list(vocab)
    sim = process.cdist(words, qwords, scorer=fuzz.ratio, dtype=np.uint8).astype(np.float64) / 100.0
    wlen = np.array([len(x) for x in words], dtype=np.float64)
    tag_scores = np.zeros(k)
    for r, w in enumerate(works):
        if w < 0:
            continue
        tag = index.norm_tag[w]
        tag_scores[r] = fuzz.partial_ratio(tag, query) / 100.0 if tag else 0.0
    # best similarity of each OCR word to each candidate's words (k x len(qwords))
    best_q = np.zeros((k, len(qwords)))
    for r, w in enumerate(works):
        if w >= 0:
            t, a, allw = per_cand[r]
            cw = sorted(set(t + a + allw))
            if cw:
                best_q[r] = sim[cw].max(axis=0)
    qsum = float(qlen.sum())
    ncos = np.where(valid, cos, 0.0)
    wk = np.where(valid, works, -1)
    # pairs (r, s) of different valid candidates
    other = valid[None, :] & valid[:, None] & (wk[None, :] != wk[:, None])
    best_other = np.where(other, ncos[None, :], 0.0).max(axis=1)
    tags = [index.norm_tag[w] if w >= 0 else "" for w in works]
    diff_tag = other & np.array([[tags[r] != tags[s] for s in range(k)] for r in range(k)])
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
        t, a, _ = per_cand[r]
        out[r, 2] = _coverage(sim[t], wlen[t]) if t else 0.0
        out[r, 3] = _coverage(sim[a], wlen[a]) if a else 0.0
        out[r, 8] = 0.0 if a else 1.0
        tag = tags[r]
        if tag:
            out[r, 11] = 1.0 if f" {tag} " in padded else 0.0
            tw = tag.split()
            out[r, 12] = sum(x in qset for x in tw) / len(tw)
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
