"""BookMatcher: OCR text of spine segments -> catalogue entries, one image (shelf) at a time."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edgevl.books.assign import assign
from edgevl.books.calibration import DEFAULT_CALIBRATION, match_logits
from edgevl.books.catalogue import Columns, load_catalogue, normalize
from edgevl.books.index import CatalogueIndex, load_or_build
from edgevl.books.match import Candidates, all_features, retrieve


@dataclass(frozen=True)
class BookMatch:
    """The match of one segment: the catalogue work (or None) and its calibrated probability.

    ``score`` is the probability of the chosen work; for a rejected segment, of its best candidate
    (how close it came). ``rows`` are the catalogue positions of the work's copies.
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


def _sigmoid(z: float) -> float:
    if z == -math.inf:
        return 0.0
    return 1.0 / (1.0 + math.exp(-z)) if z > -50 else 0.0


class BookMatcher:
    """Matches the OCR strings of segments against a catalogue index, one shelf image at a time."""

    def __init__(self, index: CatalogueIndex, calibration: dict[str, Any] | None = None) -> None:
        self.index = index
        self.calibration = dict(calibration or index.calibration or DEFAULT_CALIBRATION)
        self.k = int(self.calibration.get("k", 10))

    @classmethod
    def from_catalogue(cls, path: Path | str, cache_dir: Path | str | None = None,
                       columns: Columns | None = None, rebuild: bool = False) -> BookMatcher:
        index, _, _ = load_or_build(load_catalogue(path, columns), cache_dir, rebuild=rebuild)
        return cls(index)

    def candidates(self, texts: Sequence[str]) -> tuple[list[str], Candidates, np.ndarray]:
        """Normalised queries, stage-1 candidates and their match log-odds (n x k)."""
        queries = [normalize(t) for t in texts]
        cands = retrieve(self.index, queries, self.k)
        feats = all_features(self.index, queries, cands)
        logits = match_logits(feats, cands.works, self.calibration) if len(queries) else np.zeros((0, self.k))
        return queries, cands, logits

    def assign_group(self, works: np.ndarray, logits: np.ndarray) -> list[int | None]:
        """One image: the best one-to-one assignment of its segments (rows) to candidate works."""
        cols = sorted({int(w) for w in works.ravel() if w >= 0})
        col_of = {w: c for c, w in enumerate(cols)}
        scores = np.full((works.shape[0], len(cols)), -np.inf)
        for i in range(works.shape[0]):
            for r in range(works.shape[1]):
                w = int(works[i, r])
                if w >= 0:
                    scores[i, col_of[w]] = max(scores[i, col_of[w]], logits[i, r])
        mult = self.index.multiplicity
        capacity = [int(mult[w]) for w in cols]
        chosen = assign(scores, float(self.calibration.get("reject", 0.0)), capacity)
        return [None if c is None else cols[c] for c in chosen]

    def _result(self, text: str, work: int | None, best_logit: float, logit: float) -> BookMatch:
        if work is None:
            return BookMatch(text, None, "", "", "", (), _sigmoid(best_logit))
        ix = self.index
        return BookMatch(text, work, ix.titles[work], ix.authors[work], ix.tags[work],
                         ix.rows_of(work), _sigmoid(logit))

    def match(self, texts: Sequence[str]) -> list[BookMatch]:
        """Match the segments of ONE image (they are distinct books)."""
        return self.match_groups([list(texts)])[0]

    def match_groups(self, groups: Sequence[Sequence[str]]) -> list[list[BookMatch]]:
        """Match several images at once (retrieval batched over all segments, assignment per image)."""
        flat = [t for g in groups for t in g]
        _, cands, logits = self.candidates(flat)
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
