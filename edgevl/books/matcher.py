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
from edgevl.books.calibration import Calibration, default_calibration, match_logits
from edgevl.books.catalogue import Columns, load_catalogue, normalize
from edgevl.books.features import FEATURES, all_features
from edgevl.books.index import CatalogueIndex, load_or_build
from edgevl.books.match import Candidates, retrieve


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
                 min_confidence: float | None = None) -> None:
        self.index = index
        cal = calibration or index.calibration or default_calibration()
        if min_confidence is not None:
            cal = cal.with_min_confidence(min_confidence)
        match_logits(np.zeros((0, cal.k, len(FEATURES))), np.zeros((0, cal.k), dtype=np.int64), cal,
                     FEATURES)  # fails early (CalibrationError) when it names a feature we lack
        self.calibration = cal
        self.k = cal.k

    @classmethod
    def from_catalogue(cls, path: Path | str, cache_dir: Path | str | None = None,
                       columns: Columns | None = None, rebuild: bool = False,
                       min_confidence: float | None = None,
                       calibration: Calibration | None = None) -> BookMatcher:
        index, _, _ = load_or_build(load_catalogue(path, columns), cache_dir, rebuild=rebuild)
        return cls(index, calibration=calibration, min_confidence=min_confidence)

    def candidates(self, texts: Sequence[str], groups: Sequence[Sequence[int]] | None = None
                   ) -> tuple[list[str], Candidates, np.ndarray]:
        """Normalised queries, stage-1 candidates and their match log-odds (n x k). ``groups``: the
        text indices of each photo (default: one photo)."""
        queries = [normalize(t) for t in texts]
        cands = retrieve(self.index, queries, self.k)
        feats = all_features(self.index, queries, cands, groups, self.calibration.features)
        logits = (match_logits(feats, cands.works, self.calibration, FEATURES) if len(queries)
                  else np.zeros((0, self.k)))
        return queries, cands, logits

    def assign_group(self, works: np.ndarray, logits: np.ndarray) -> list[int | None]:
        """One image: the best one-to-one assignment of its segments (rows) to candidate works."""
        return assign_image(works, logits, self.calibration.reject_logit, self.index.multiplicity)

    def _result(self, text: str, work: int | None, best_logit: float, logit: float) -> BookMatch:
        p = float(self.calibration.probability(best_logit if work is None else logit))
        if work is None:
            return BookMatch(text, None, "", "", "", (), p)
        ix = self.index
        return BookMatch(text, work, ix.titles[work], ix.authors[work], ix.tags[work], ix.rows_of(work), p)

    def match(self, texts: Sequence[str]) -> list[BookMatch]:
        """Match the segments of ONE image (they are distinct books)."""
        return self.match_groups([list(texts)])[0]

    def match_groups(self, groups: Sequence[Sequence[str]]) -> list[list[BookMatch]]:
        """Match several images at once (retrieval batched over all segments, assignment per image)."""
        flat = [t for g in groups for t in g]
        bounds = np.cumsum([0] + [len(g) for g in groups]).tolist()
        _, cands, logits = self.candidates(flat, [list(range(a, b)) for a, b in itertools.pairwise(bounds)])
        out: list[list[BookMatch]] = []
        start = 0
        for g in groups:
            sl = slice(start, start + len(g))
            start += len(g)
            works, lg = cands.works[sl], logits[sl]
            chosen = self.assign_group(works, lg)
            res = []
            for i, w in enumerate(chosen):
                best = float(lg[i].max()) if lg.shape[1] else -math.inf
                lw = float(max((lg[i, r] for r in range(works.shape[1]) if works[i, r] == w),
                               default=-math.inf)) if w is not None else -math.inf
                res.append(self._result(g[i], w, best, lw))
            out.append(res)
        return out
