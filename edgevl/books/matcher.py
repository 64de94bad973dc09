"""BookMatcher: OCR text of spine segments -> catalogue entries, one image (shelf) at a time."""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from edgevl.books.assign import DENSE_CELLS, assign, assign_edges
from edgevl.books.calibration import (
    Calibration,
    default_calibration,
    default_unlabelled_calibration,
    match_logits,
)
from edgevl.books.catalogue import Columns, load_catalogue, normalize
from edgevl.books.features import FEATURES, all_features, has_label
from edgevl.books.index import CatalogueIndex, load_or_build
from edgevl.books.match import Candidates, retrieve
from edgevl.errors import CalibrationError


@dataclass(frozen=True)
class BookMatch:
    """The match of one segment: the catalogue work (or None) and its calibrated probability.

    ``score`` is the calibrated probability that the chosen work is correct; for a rejected segment,
    that of its best candidate (how close it came). ``rows`` are the catalogue positions of the work's copies.
    """

    text: str
    work: int | None
    title: str
    author: str
    tag: str
    rows: tuple[int, ...]
    score: float
    labels_read: bool = True  # False: no segment of its photo shows a library label (see BookMatcher)

    @property
    def matched(self) -> bool:
        return self.work is not None

    def to_dict(self) -> dict[str, Any]:
        return {"text": self.text, "matched": self.matched, "title": self.title, "author": self.author,
                "tag": self.tag, "catalogue_rows": list(self.rows), "score": round(self.score, 4)}


def assign_image(works: npt.NDArray[np.int64], logits: npt.NDArray[np.float64],
                 reject: float | npt.NDArray[np.float64], multiplicity: npt.NDArray[np.int64]
                 ) -> list[int | None]:
    """One image: the best one-to-one assignment of its segments (rows of the candidate ``works``,
    n x k, with their match log-odds) to works, each usable as many times as it has copies; a
    segment is rejected (None) where no work beats ``reject`` (scalar or one per segment)."""
    cols = sorted({int(w) for w in works.ravel() if w >= 0})
    n = works.shape[0]
    if n * (len(cols) + n) > DENSE_CELLS:  # a huge image (20,000 segments): a sparse graph, same optimum
        seg, cand = np.nonzero(works >= 0)
        rej = np.broadcast_to(np.asarray(reject, dtype=np.float64), (n,))
        return assign_edges(n, seg.astype(np.int64), works[seg, cand].astype(np.int64),
                            np.asarray(logits[seg, cand], dtype=np.float64), rej,
                            np.asarray(multiplicity, dtype=np.int64))
    col_of = {w: c for c, w in enumerate(cols)}
    scores = np.full((works.shape[0], len(cols)), -np.inf)
    for i in range(works.shape[0]):
        for r in range(works.shape[1]):
            w = int(works[i, r])
            if w >= 0:
                scores[i, col_of[w]] = max(scores[i, col_of[w]], logits[i, r])
    capacity = [int(multiplicity[w]) for w in cols]
    return [None if c is None else cols[c] for c in assign(scores, reject, capacity)]


class BookMatcher:
    """Matches the OCR strings of segments against a catalogue index, one shelf image at a time."""

    def __init__(self, index: CatalogueIndex, calibration: Calibration | None = None,
                 min_confidence: float | None = None, unlabelled: Calibration | None = None,
                 unlabelled_shelves: bool = False) -> None:
        """``unlabelled_shelves``: a photo none of whose segments shows a library label (where the
        catalogue has call numbers) is matched with ``unlabelled`` (default: the shipped calibration
        for unlabelled shelves, fitted on the dev split with its call numbers stripped) - a home
        shelf, another library's shelf. Off, such a photo is matched like any other: the library's
        own unlabelled shelves (displays, reference) rarely hold its catalogued books, and the
        shipped calibration has learnt that. An explicit ``unlabelled`` always routes.
        ``min_confidence`` overrides both calibrations' operating points."""
        self.index = index
        cal = calibration or index.calibration or default_calibration()
        if unlabelled is None and unlabelled_shelves:
            unlabelled = default_unlabelled_calibration()
        if unlabelled is not None and unlabelled.k != cal.k:
            raise CalibrationError(f"the calibration for unlabelled shelves needs k = {cal.k} "
                                   f"(one retrieval serves both), got {unlabelled.k}")
        if min_confidence is not None:
            cal = cal.with_min_confidence(min_confidence)
            unlabelled = unlabelled.with_min_confidence(min_confidence) if unlabelled else None
        for c in (cal, unlabelled):
            if c is not None:  # fails early (CalibrationError) when it names a feature we lack
                match_logits(np.zeros((0, c.k, len(FEATURES))), np.zeros((0, c.k), dtype=np.int64), c,
                             FEATURES)
        self.calibration = cal
        self.unlabelled = unlabelled
        self.k = cal.k

    @classmethod
    def from_catalogue(cls, path: Path | str, cache_dir: Path | str | None = None,
                       columns: Columns | None = None, rebuild: bool = False,
                       min_confidence: float | None = None,
                       calibration: Calibration | None = None,
                       unlabelled_shelves: bool = False) -> BookMatcher:
        index, _, _ = load_or_build(load_catalogue(path, columns), cache_dir, rebuild=rebuild)
        return cls(index, calibration=calibration, min_confidence=min_confidence,
                   unlabelled_shelves=unlabelled_shelves)

    def labels_read(self, queries: Sequence[str]) -> bool:
        """Whether a photo (its normalised segments) shows library labels: any segment holding a
        call number; always True when the catalogue has none (labels then say nothing)."""
        return not self.index.tag_set or any(has_label(self.index, q) for q in queries)

    def calibration_for(self, labels_read: bool) -> Calibration:
        """The calibration of a photo: the unlabelled one where it has no library label."""
        return self.calibration if labels_read or self.unlabelled is None else self.unlabelled

    def candidates(self, texts: Sequence[str], groups: Sequence[Sequence[int]] | None = None
                   ) -> tuple[list[str], Candidates, np.ndarray]:
        """Normalised queries, stage-1 candidates and their match log-odds (n x k), each photo's
        from its own calibration (:meth:`calibration_for`). ``groups``: the text indices of each
        photo (default: one photo)."""
        queries, cands, logits, _ = self._candidates(texts, groups)
        return queries, cands, logits

    def _candidates(self, texts: Sequence[str], groups: Sequence[Sequence[int]] | None
                    ) -> tuple[list[str], Candidates, np.ndarray, list[bool]]:
        """:meth:`candidates` and whether each photo shows library labels."""
        queries = [normalize(t) for t in texts]
        photos = groups if groups is not None else [list(range(len(queries)))]
        labels = [self.labels_read([queries[i] for i in g]) for g in photos]
        cands = retrieve(self.index, queries, self.k)
        needed = set(self.calibration.features) | set(self.unlabelled.features if self.unlabelled else ())
        feats = all_features(self.index, queries, cands, groups, tuple(needed))
        if not queries:
            return queries, cands, np.zeros((0, self.k)), labels
        logits = match_logits(feats, cands.works, self.calibration, FEATURES)
        for g, lab in zip(photos, labels, strict=True):
            if len(g) and not lab and self.unlabelled is not None:
                rows = list(g)
                logits[rows] = match_logits(feats[rows], cands.works[rows], self.unlabelled, FEATURES)
        return queries, cands, logits, labels

    def assign_group(self, works: np.ndarray, logits: np.ndarray, labels_read: bool = True
                     ) -> list[int | None]:
        """One image: the best one-to-one assignment of its segments (rows) to candidate works."""
        return assign_image(works, logits, self.calibration_for(labels_read).reject_logit,
                            self.index.multiplicity)

    def _result(self, text: str, work: int | None, best_logit: float, logit: float,
                labels_read: bool = True) -> BookMatch:
        p = float(self.calibration_for(labels_read).probability(best_logit if work is None else logit))
        if work is None:
            return BookMatch(text, None, "", "", "", (), p, labels_read)
        ix = self.index
        return BookMatch(text, work, ix.titles[work], ix.authors[work], ix.tags[work], ix.rows_of(work), p,
                         labels_read)

    def match(self, texts: Sequence[str]) -> list[BookMatch]:
        """Match the segments of ONE image (they are distinct books)."""
        return self.match_groups([list(texts)])[0]

    def match_groups(self, groups: Sequence[Sequence[str]]) -> list[list[BookMatch]]:
        """Match several images at once (retrieval batched over all segments, assignment per image)."""
        flat = [t for g in groups for t in g]
        bounds = np.cumsum([0] + [len(g) for g in groups]).tolist()
        _, cands, logits, photo_labels = self._candidates(flat, [list(range(a, b))
                                                                 for a, b in itertools.pairwise(bounds)])
        out: list[list[BookMatch]] = []
        start = 0
        for g, labels in zip(groups, photo_labels, strict=True):
            sl = slice(start, start + len(g))
            start += len(g)
            works, lg = cands.works[sl], logits[sl]
            chosen = self.assign_group(works, lg, labels)
            res = []
            for i, w in enumerate(chosen):
                best = float(lg[i].max()) if lg.shape[1] else -math.inf
                lw = float(max((lg[i, r] for r in range(works.shape[1]) if works[i, r] == w),
                               default=-math.inf)) if w is not None else -math.inf
                res.append(self._result(g[i], w, best, lw, labels))
            out.append(res)
        return out
