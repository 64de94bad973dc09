"""The rescoring features of the book matcher, each written and read by name.

Every candidate work of a segment gets one value per feature in :data:`FEATURES`; a calibration
(:class:`edgevl.books.calibration.Calibration`) stores one weight per feature *name* and selects the
columns it uses, so adding a feature means adding it here (its name in one of the tuples below and
its value in :func:`candidate_features` or :func:`shelf_features`) and nothing else.

Kinds of evidence:

- text: n-gram cosine and its margin, how much of the main title / surname the OCR words cover
  (length-weighted ``fuzz.ratio`` word alignment), how much of the OCR the candidate explains and
  how much more a second work would explain (two books in one segment);
- call number: fuzzy and exact tag, share of tag tokens, extra call numbers in the OCR;
- librarian evidence: the surname read as a whole word and where it stands on the spine (first or
  last words: the author is printed at one end), series and volume numbers, the language of the
  title words vs the language of the OCR words, and the shelf: the call-number class of the
  candidate vs the classes the *other* spines of the same photo point to (a shelf holds one
  section, so a candidate from another class is less likely).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
from rapidfuzz import fuzz, process

from edgevl.books.index import CatalogueIndex
from edgevl.books.match import Candidates

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

# per candidate, from the OCR text and the candidate's catalogue entry
BASE = ("cos", "cos_margin", "title_cov", "author_cov", "tag", "ocr_explained", "log_len", "other_tag",
        "no_author", "unexplained", "other_explains", "tag_exact", "tag_tokens", "extra_tags",
        "surname_exact", "surname_at_end", "number_match", "number_conflict", "lang_conflict")
# products of two features (name -> the two factors)
PRODUCTS: dict[str, tuple[str, str]] = {
    "title_x_author": ("title_cov", "author_cov"), "tag_x_author": ("tag", "author_cov"),
    "tag_x_title": ("tag", "title_cov"), "cos_x_margin": ("cos", "cos_margin"),
    "explained_x_len": ("ocr_explained", "log_len"),
}
# per candidate, from the other segments of the same photo (needs the photo's grouping)
SHELF = ("shelf_class",)
FEATURES: tuple[str, ...] = BASE + tuple(PRODUCTS) + SHELF
COLUMN = {name: i for i, name in enumerate(FEATURES)}

_EMPTY = np.zeros(0, dtype=np.int64)
_NUMBER = re.compile(r"^\d{1,4}$")
# words that mark a language (normalised: accents stripped, split at apostrophes)
_LANG_WORDS = {
    "es": frozenset({"y", "los", "las", "del", "por", "para", "con", "como", "al", "sus", "mas", "desde"}),
    "ca": frozenset({"i", "els", "les", "amb", "per", "dels", "pel", "als", "com", "des", "l", "d", "mes",
                     "seva"}),
    "en": frozenset({"the", "of", "and", "to", "in", "for", "with", "on", "from", "an"}),
    "fr": frozenset({"le", "les", "des", "du", "et", "pour", "avec", "une", "sur", "dans", "au", "aux"}),
}


def language(words: Sequence[str]) -> str:
    """The language whose marker words occur most in ``words`` ('' if none, or a tie)."""
    hits = {lang: sum(w in marks for w in words) for lang, marks in _LANG_WORDS.items()}
    best = max(hits.values())
    if best == 0:
        return ""
    winners = [lang for lang, n in hits.items() if n == best]
    return winners[0] if len(winners) == 1 else ""


def call_class(norm_tag: str) -> str:
    """The classification part of a normalised call number: its first word, numbers cut to their
    first two digits (``796 4 sal`` -> ``79``, ``n sap`` -> ``n``, ``i pav`` -> ``i``)."""
    first = norm_tag.split(" ", 1)[0] if norm_tag else ""
    return first[:2] if first.isdigit() else first


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


def _numbers(words: Sequence[str]) -> set[str]:
    return {w.lstrip("0") or "0" for w in words if _NUMBER.match(w)}


LIBRARIAN = ("surname_exact", "surname_at_end", "number_match", "number_conflict", "lang_conflict")


def candidate_features(index: CatalogueIndex, query: str, works: IntArray, cos: FloatArray,
                       needed: frozenset[str] | None = None) -> FloatArray:
    """Feature rows (len(works) x len(FEATURES)) for one normalised query and its candidates; the
    shelf features are left at 0 (:func:`shelf_features` fills them). The per-word librarian
    features are computed only when ``needed`` (default: all) names one of them, else left at 0."""
    k = len(works)
    out = np.zeros((k, len(FEATURES)), dtype=np.float64)
    qwords = query.split()
    valid = works >= 0
    if not qwords or not valid.any():
        return out
    f: dict[str, FloatArray] = {}
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
    explained = best_q @ qlen
    union = np.maximum(best_q[:, None, :], best_q[None, :, :]) @ qlen  # k x k
    extra = np.where(other, union - explained[:, None], 0.0).max(axis=1)
    f["cos"] = ncos
    f["cos_margin"] = ncos - best_other
    f["title_cov"] = coverage[:k]
    f["author_cov"] = coverage[k: 2 * k]
    f["tag"] = tag_scores
    f["ocr_explained"] = explained / qsum
    f["log_len"] = np.full(k, np.log1p(qsum))
    f["other_tag"] = np.where(diff_tag, tag_scores[None, :], 0.0).max(axis=1)
    f["no_author"] = (sizes[k: 2 * k] == 0).astype(np.float64)
    f["unexplained"] = np.log1p(np.maximum(qsum - explained, 0.0))
    # how many more OCR characters the best *other* work would explain (two books in one segment)
    f["other_explains"] = np.log1p(np.maximum(extra, 0.0))
    f["extra_tags"] = np.full(k, float(max(0, count_tags(index, query) - 1)))
    _word_evidence(index, query, qwords, works, tags, f,
                   needed is None or any(n in needed for n in LIBRARIAN))
    for name in BASE:
        out[:, COLUMN[name]] = f[name]
    for name, (a, b) in PRODUCTS.items():
        out[:, COLUMN[name]] = f[a] * f[b]
    out[~valid] = 0.0
    return out


def _word_evidence(index: CatalogueIndex, query: str, qwords: list[str], works: IntArray, tags: list[str],
                   f: dict[str, FloatArray], librarian: bool) -> None:
    """Exact-word evidence per candidate: tag and, with ``librarian``, surname, numbers, language."""
    k = len(works)
    for name in ("tag_exact", "tag_tokens", *LIBRARIAN):
        f[name] = np.zeros(k)
    padded = f" {query} "
    qset = set(qwords)
    ends = set(qwords[:2] + qwords[-2:])
    q_lang = language(qwords)
    for r, w in enumerate(works):
        if w < 0:
            continue
        tag = tags[r]
        tw = tag.split()
        if tag:
            f["tag_exact"][r] = 1.0 if f" {tag} " in padded else 0.0
            f["tag_tokens"][r] = sum(x in qset for x in tw) / len(tw)
        if not librarian:
            continue
        title_words, surname_words, _ = index.words(int(w))
        long_surname = [x for x in surname_words if len(x) >= 3]
        if long_surname:
            f["surname_exact"][r] = float(any(x in qset for x in long_surname))
            f["surname_at_end"][r] = float(any(x in ends for x in long_surname))
        # numbers on the spine that the call number does not explain: volume / series numbers
        q_nums = _numbers([x for x in qwords if x not in tw])
        c_nums = _numbers(index.norm_title[int(w)].split()) | _numbers(index.norm_series[int(w)].split())
        if q_nums and c_nums:
            hit = bool(q_nums & c_nums)
            f["number_match"][r] = float(hit)
            f["number_conflict"][r] = float(not hit)
        c_lang = language(title_words)
        if q_lang and c_lang and q_lang != c_lang:
            f["lang_conflict"][r] = 1.0


def shelf_features(index: CatalogueIndex, cands: Candidates, x: FloatArray,
                   groups: Sequence[Sequence[int]]) -> None:
    """Fill the shelf features of ``x`` (n x k x F) in place, photo by photo (``groups``: the
    segment indices of each photo). ``shelf_class`` of candidate (i, r): the weighted share of the
    photo's *other* segments whose best candidate has the same call-number class, each segment
    weighted by its best candidate's cosine margin (a confident read counts more)."""
    col = COLUMN["shelf_class"]
    top = cands.works[:, 0] if cands.works.shape[1] else np.full(len(cands.works), -1)
    weight = np.where(top >= 0, np.maximum(x[:, 0, COLUMN["cos_margin"]], 0.0) + 0.05, 0.0)
    top_class = [call_class(index.norm_tag[int(w)]) if w >= 0 else "" for w in top]
    for g in groups:
        if len(g) < 2:
            continue
        totals: dict[str, float] = {}
        for i in g:
            if top_class[i]:
                totals[top_class[i]] = totals.get(top_class[i], 0.0) + float(weight[i])
        all_w = float(sum(weight[i] for i in g))
        for i in g:
            rest = all_w - float(weight[i])
            if rest <= 0:
                continue
            for r, w in enumerate(cands.works[i]):
                if w < 0:
                    continue
                c = call_class(index.norm_tag[int(w)])
                same = totals.get(c, 0.0) - (float(weight[i]) if c and c == top_class[i] else 0.0)
                x[i, r, col] = same / rest if c else 0.0


def all_features(index: CatalogueIndex, queries: list[str], cands: Candidates,
                 groups: Sequence[Sequence[int]] | None = None, needed: Sequence[str] | None = None
                 ) -> FloatArray:
    """Features for every query (n x k x F). ``groups``: the query indices of each photo (default:
    all queries are one photo). ``needed``: the features a calibration reads (default: all); the
    others may be left at 0 to save time."""
    if not queries:
        return np.zeros((0, cands.works.shape[1], len(FEATURES)))
    need = frozenset(needed) if needed is not None else None
    x = np.stack([candidate_features(index, q, cands.works[i], cands.cos[i], need)
                  for i, q in enumerate(queries)])
    if need is None or any(n in need for n in SHELF):
        shelf_features(index, cands, x, groups if groups is not None else [list(range(len(queries)))])
    return x
