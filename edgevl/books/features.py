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
- the label read upside down: a call-number sticker mounted the other way round is read rotated by
  180 degrees (``91(026)(55)`` comes out as ``(55)(920)I6``); :func:`flipped_readings` turns such runs
  back and ``tag_flipped`` says whether the candidate's class number is among them;
- several labels: ``labels_extra`` counts call-number-shaped label patterns (a class number followed
  by a three-letter author code) beyond the first, whether or not the catalogue holds them: a spine
  carries one label, a segment with two covers two books;
- librarian evidence: the surname read as a whole word and where it stands on the spine (first or
  last words: the author is printed at one end), series and volume numbers, the language of the
  title words vs the language of the OCR words, and the shelf: the call-number class of the
  candidate vs the classes the *other* spines of the same photo point to (a shelf holds one
  section, so a candidate from another class is less likely); whether the *other* spines of the
  photo show any call-number label at all (``shelf_unlabelled``: books on a shelf without library
  labels are not the labelled collection - a display, a cart, books for sale); and whether another
  segment of the same photo reads more of this work's title and author (``rival_reads_more``: a
  spine cut in two, where the label fragment and the title fragment compete for one book); and the
  medium: ``media_mismatch`` when the spine says DVD and the candidate's title and series do not.
"""

from __future__ import annotations

import functools
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
        "surname_exact", "surname_at_end", "number_match", "number_conflict", "lang_conflict",
        "tag_flipped", "labels_extra", "media_mismatch")
# products of two features (name -> the two factors)
PRODUCTS: dict[str, tuple[str, str]] = {
    "title_x_author": ("title_cov", "author_cov"), "tag_x_author": ("tag", "author_cov"),
    "tag_x_title": ("tag", "title_cov"), "cos_x_margin": ("cos", "cos_margin"),
    "explained_x_len": ("ocr_explained", "log_len"),
}
# per candidate, from the other segments of the same photo (needs the photo's grouping)
SHELF = ("shelf_class", "shelf_unlabelled", "rival_reads_more", "label_elsewhere")
FEATURES: tuple[str, ...] = BASE + tuple(PRODUCTS) + SHELF
COLUMN = {name: i for i, name in enumerate(FEATURES)}

_EMPTY = np.zeros(0, dtype=np.int64)
_NUMBER = re.compile(r"^\d{1,4}$")
# a call-number label in normalised text: class number (digits, maybe a letter and more number
# words) followed by a three-letter author code, e.g. ``834b 3 ovi``, ``331 tel``, ``p 834 ben``
_LABEL = re.compile(r"(?<![a-z0-9])\d{1,3}[a-z]?(?: \d{1,4}[a-z]?)*(?: [a-z]{3})(?![a-z0-9])")
# what a glyph read from text rotated by 180 degrees stands for (normalised, lower-case):
# 6 <-> 9, and letters that rotated digits are read as (I/T = 1, E = 3, L = 7, b/d/h/p = 4, S = 5)
_FLIP = {"0": "0", "o": "0", "1": "1", "i": "1", "t": "1", "2": "2", "z": "2", "e": "3", "b": "4", "d": "4",
         "h": "4", "p": "4", "5": "5", "s": "5", "6": "9", "9": "6", "l": "7", "7": "l", "8": "8"}
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


def flipped_readings(query: str) -> list[str]:
    """The runs of ``query`` (normalised) that read as numbers once turned by 180 degrees: maximal
    runs of words made only of rotatable glyphs, holding a digit and at least 4 glyphs, each given
    back in reading order (words reversed, glyphs reversed and mapped): ``55 920 i6`` -> ``91 026 55``."""
    out: list[str] = []
    run: list[str] = []
    for word in [*query.split(), ""]:
        if word and all(c in _FLIP for c in word):
            run.append(word)
            continue
        if sum(len(x) for x in run) >= 4 and any(c.isdigit() for x in run for c in x):
            out.append(" ".join("".join(_FLIP[c] for c in reversed(x)) for x in reversed(run)))
        run = []
    return out


def class_number(norm_tag: str) -> str:
    """The numeric part of a normalised call number: its words up to the last one holding a digit
    (``91 026 43 7 di d`` -> ``91 026 43 7``); '' when that has fewer than 2 digits."""
    words = norm_tag.split()
    last = max((i for i, w in enumerate(words) if any(c.isdigit() for c in w)), default=-1)
    part = " ".join(words[: last + 1])
    return part if sum(c.isdigit() for c in part) >= 2 else ""


def count_labels(query: str) -> int:
    """How many call-number-shaped labels (class number + three-letter code) a normalised query holds."""
    return len(_LABEL.findall(query))


def has_label(index: CatalogueIndex, query: str) -> bool:
    """Whether a normalised segment shows a library label: a catalogue call number or a
    call-number-shaped one (class number + three-letter code)."""
    return count_tags(index, query) > 0 or count_labels(query) > 0


def strip_labels(index: CatalogueIndex, query: str) -> str:
    """``query`` (normalised) with its call numbers removed: the catalogue call numbers it holds
    (2-4 words) and the call-number-shaped labels. Simulates a shelf whose labels are unreadable
    or absent (a home shelf, another library), for calibrating that condition out of fold."""
    words = query.split()
    drop = [False] * len(words)
    i = 0
    while i < len(words):
        for span in (4, 3, 2):
            part = words[i: i + span]
            if len(part) == span and " ".join(part) in index.tag_set:
                drop[i: i + span] = [True] * span
                i += span
                break
        else:
            i += 1
    kept = " ".join(w for w, d in zip(words, drop, strict=True) if not d)
    return " ".join(_LABEL.sub(" ", kept).split())


def _numbers(words: Sequence[str]) -> set[str]:
    return {w.lstrip("0") or "0" for w in words if _NUMBER.match(w)}


LIBRARIAN = ("surname_exact", "surname_at_end", "number_match", "number_conflict", "lang_conflict",
             "tag_flipped", "media_mismatch")
# words on a case that mark it as another medium than a book
_MEDIA = frozenset({"dvd"})


def candidate_features(index: CatalogueIndex, query: str, works: IntArray, cos: FloatArray,
                       needed: frozenset[str] | None = None, n_tags: int | None = None) -> FloatArray:
    """Feature rows (len(works) x len(FEATURES)) for one normalised query and its candidates; the
    shelf features are left at 0 (:func:`shelf_features` fills them). The per-word librarian
    features are computed only when ``needed`` (default: all) names one of them, else left at 0.
    ``n_tags``: :func:`count_tags` of the query, when the caller has it already."""
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
    tags_read = count_tags(index, query) if n_tags is None else n_tags
    f["extra_tags"] = np.full(k, float(max(0, tags_read - 1)))
    f["labels_extra"] = np.full(k, float(min(2, max(0, count_labels(query) - 1))))
    _word_evidence(index, query, qwords, works, tags, f,
                   frozenset(LIBRARIAN) if needed is None else needed & frozenset(LIBRARIAN))
    for name in BASE:
        out[:, COLUMN[name]] = f[name]
    for name, (a, b) in PRODUCTS.items():
        out[:, COLUMN[name]] = f[a] * f[b]
    out[~valid] = 0.0
    return out


def _word_evidence(index: CatalogueIndex, query: str, qwords: list[str], works: IntArray, tags: list[str],
                   f: dict[str, FloatArray], wanted: frozenset[str]) -> None:
    """Exact-word evidence per candidate: tag, and the librarian features in ``wanted`` (surname,
    numbers, language, the label read upside down, the medium); the others stay 0."""
    k = len(works)
    for name in ("tag_exact", "tag_tokens", *LIBRARIAN):
        f[name] = np.zeros(k)
    padded = f" {query} "
    qset = set(qwords)
    ends = set(qwords[:2] + qwords[-2:])
    surname = bool(wanted & {"surname_exact", "surname_at_end"})
    numbers = bool(wanted & {"number_match", "number_conflict"})
    q_lang = language(qwords) if "lang_conflict" in wanted else ""
    flipped = [f" {x} " for x in flipped_readings(query)] if "tag_flipped" in wanted else []
    media = qset & _MEDIA if "media_mismatch" in wanted else set()
    for r, w in enumerate(works):
        if w < 0:
            continue
        tag = tags[r]
        tw = tag.split()
        if tag:
            f["tag_exact"][r] = 1.0 if f" {tag} " in padded else 0.0
            f["tag_tokens"][r] = sum(x in qset for x in tw) / len(tw)
        if flipped:
            number = class_number(tag)
            if number and any(f" {number} " in x for x in flipped):
                f["tag_flipped"][r] = 1.0
        if surname:
            long_surname = [x for x in index.words(int(w))[1] if len(x) >= 3]
            if long_surname:
                f["surname_exact"][r] = float(any(x in qset for x in long_surname))
                f["surname_at_end"][r] = float(any(x in ends for x in long_surname))
        if numbers:
            # numbers on the spine that the call number does not explain: volume / series numbers
            q_nums = _numbers([x for x in qwords if x not in tw])
            c_nums = _entry_numbers(index.norm_title[int(w)], index.norm_series[int(w)]) if q_nums else set()
            if q_nums and c_nums:
                hit = bool(q_nums & c_nums)
                f["number_match"][r] = float(hit)
                f["number_conflict"][r] = float(not hit)
        if media:
            entry = set(index.norm_title[int(w)].split()) | set(index.norm_series[int(w)].split())
            f["media_mismatch"][r] = float(not media <= entry)
        if q_lang:
            c_lang = language(index.words(int(w))[0])
            if c_lang and q_lang != c_lang:
                f["lang_conflict"][r] = 1.0


@functools.lru_cache(maxsize=1 << 16)
def _entry_numbers(norm_title: str, norm_series: str) -> frozenset[str]:
    """The volume / series numbers of a catalogue entry (cached: the same works come back often)."""
    return frozenset(_numbers(norm_title.split()) | _numbers(norm_series.split()))


def shelf_features(index: CatalogueIndex, tag_counts: Sequence[int], cands: Candidates, x: FloatArray,
                   groups: Sequence[Sequence[int]], needed: frozenset[str] | None = None) -> None:
    """Fill the shelf features of ``x`` (n x k x F) in place, photo by photo (``groups``: the
    segment indices of each photo; ``tag_counts``: :func:`count_tags` of every segment's OCR).
    ``needed``: the shelf features to compute (default: all)."""
    need = frozenset(SHELF) if needed is None else needed
    top = cands.works[:, 0] if cands.works.shape[1] else np.full(len(cands.works), -1)
    # a segment shows a label: a catalogue call number read in it, or its candidate's exactly
    labelled = (np.asarray(tag_counts) > 0) | (x[:, :, COLUMN["tag_exact"]].max(axis=1, initial=0.0) > 0)
    weight = np.where(top >= 0, np.maximum(x[:, 0, COLUMN["cos_margin"]], 0.0) + 0.05, 0.0)
    reads = x[:, :, COLUMN["title_cov"]] + x[:, :, COLUMN["author_cov"]]
    # a catalogue without call numbers says nothing about labels on the shelf
    labels_known = bool(index.tag_set)
    for g in groups:
        if len(g) < 2:
            continue
        if "shelf_class" in need:
            _shelf_class(index, cands, x, list(g), top, weight)
        others = len(g) - 1
        if "shelf_unlabelled" in need and others >= 2 and labels_known:
            # no other spine of the photo shows a label: every segment's neighbours are unlabelled
            n_lab = int(labelled[list(g)].sum())
            for i in g:
                x[i, :, COLUMN["shelf_unlabelled"]] = float(n_lab - int(labelled[i]) == 0)
        if "rival_reads_more" in need:
            _rival_reads_more(cands.works, reads, x, list(g))
        if "label_elsewhere" in need:
            _label_elsewhere(cands.works, reads, x, list(g))
    x[cands.works < 0] = 0.0


def _shelf_class(index: CatalogueIndex, cands: Candidates, x: FloatArray, g: list[int],
                 top: IntArray, weight: FloatArray) -> None:
    """``shelf_class`` of candidate (i, r): the weighted share of the photo's *other* segments whose
    best candidate has the same call-number class, each segment weighted by its best candidate's
    cosine margin (a confident read counts more)."""
    col = COLUMN["shelf_class"]
    top_class = {i: call_class(index.norm_tag[int(top[i])]) if top[i] >= 0 else "" for i in g}
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


def _rival_reads_more(works: IntArray, reads: FloatArray, x: FloatArray, g: list[int]) -> None:
    """``rival_reads_more`` of candidate (i, r): how much more of the work's title and author
    (``title_cov + author_cov``) the best *other* segment of the photo reads, 0 when none reads more."""
    best: dict[int, list[tuple[float, int]]] = {}  # work -> its two best (read, segment)
    for i in g:
        seen: dict[int, float] = {}
        for r, w in enumerate(works[i]):
            if w >= 0:
                seen[int(w)] = max(seen.get(int(w), 0.0), float(reads[i, r]))
        for w, v in seen.items():
            top2 = sorted([*best.get(w, []), (v, i)], reverse=True)[:2]
            best[w] = top2
    col = COLUMN["rival_reads_more"]
    for i in g:
        for r, w in enumerate(works[i]):
            if w < 0:
                continue
            rival = next((v for v, j in best[int(w)] if j != i), 0.0)
            x[i, r, col] = max(0.0, rival - float(reads[i, r]))


def _label_elsewhere(works: IntArray, reads: FloatArray, x: FloatArray, g: list[int]) -> None:
    """``label_elsewhere`` of candidate (i, r): 1 when segment i does not read the work's call number
    but another segment of the photo does and reads less of its title and author than i - a spine
    cut into a title piece and a label piece: the label corroborates the title piece's reading."""
    exact = x[:, :, COLUMN["tag_exact"]]
    label_reads: dict[int, float] = {}  # work -> the least title/author read by a segment holding its label
    for i in g:
        for r, w in enumerate(works[i]):
            if w >= 0 and exact[i, r] > 0:
                label_reads[int(w)] = min(label_reads.get(int(w), np.inf), float(reads[i, r]))
    col = COLUMN["label_elsewhere"]
    for i in g:
        for r, w in enumerate(works[i]):
            if w >= 0 and exact[i, r] <= 0 and label_reads.get(int(w), np.inf) < float(reads[i, r]):
                x[i, r, col] = 1.0


def all_features(index: CatalogueIndex, queries: list[str], cands: Candidates,
                 groups: Sequence[Sequence[int]] | None = None, needed: Sequence[str] | None = None
                 ) -> FloatArray:
    """Features for every query (n x k x F). ``groups``: the query indices of each photo (default:
    all queries are one photo). ``needed``: the features a calibration reads (default: all); the
    others may be left at 0 to save time."""
    if not queries:
        return np.zeros((0, cands.works.shape[1], len(FEATURES)))
    need = frozenset(needed) if needed is not None else None
    tag_counts = [count_tags(index, q) for q in queries]
    x = np.stack([candidate_features(index, q, cands.works[i], cands.cos[i], need, tag_counts[i])
                  for i, q in enumerate(queries)])
    if need is None or any(n in need for n in SHELF):
        photos = groups if groups is not None else [list(range(len(queries)))]
        shelf_features(index, tag_counts, cands, x, photos, need)
    return x
