"""Grouped cross-validation of the matcher's calibration: the one implementation every books script uses.

Folds are grouped (by shelf photo, or by library section): every segment of a photo is in the same
fold, so a model is always scored on photos it was not fitted on. For each fold the two-stage
logistic model is fitted on the other folds; the probability map (Platt scaling) of a fold is fitted
on the out-of-fold log-odds of the *other* folds, so no number reported for a fold has seen it.
The operating point (``min_confidence``) is then a probability that means the same in every fold.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
import numpy.typing as npt

from edgevl.books.calibration import (
    Calibration,
    fit_calibration,
    fit_isotonic,
    fit_probability,
    map_logit,
    map_probability,
    match_logits,
)
from edgevl.books.catalogue import normalize, work_key
from edgevl.books.evaluate import Segment, group_by_image, metrics
from edgevl.books.features import FEATURES, all_features
from edgevl.books.index import CatalogueIndex
from edgevl.books.match import Candidates, retrieve
from edgevl.books.matcher import BookMatch, assign_image

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
NO_REJECT = -1e6  # a reject log-odds below every match: assign whatever can be assigned


def grouped_folds(groups: Sequence[str], n_folds: int = 5, seed: int = 0) -> list[IntArray]:
    """Test indices of each fold: the distinct ``groups`` shuffled with ``seed`` and cut into
    ``n_folds`` parts of (nearly) equal group count; every item of a group lands in one fold."""
    g = np.asarray(groups)
    uniq = np.unique(g)
    if len(uniq) < n_folds:
        raise ValueError(f"{len(uniq)} groups cannot make {n_folds} folds")
    np.random.default_rng(seed).shuffle(uniq)
    return [np.where(np.isin(g, part))[0] for part in np.array_split(uniq, n_folds)]


def photo_of(image_name: str) -> str:
    """The shelf photo of a dataset image crop (``20221128_104830_1.jpg`` -> ``20221128_104830``)."""
    return "_".join(image_name.split("_")[:2])


@dataclass(frozen=True)
class Labelled:
    """Candidates and features of labelled segments, computed once for many fits."""

    segments: tuple[Segment, ...]
    cands: Candidates
    x: FloatArray  # n x k x len(FEATURES)
    labels: FloatArray  # n x k: 1 where the candidate is the true work
    groups: tuple[tuple[int, ...], ...]  # segment indices per image (the assignment unit)
    names: tuple[str, ...] = FEATURES  # the feature of each column of x

    def with_features(self, extra: FloatArray, names: Sequence[str]) -> Labelled:
        """A copy with more feature columns (n x k x len(names)), e.g. a feature under study."""
        return replace(self, x=np.concatenate([self.x, extra], axis=2), names=(*self.names, *names))

    def subset(self, rows: IntArray) -> Labelled:
        """The segments ``rows`` only (whole images, as grouped folds give), groups renumbered."""
        keep = np.sort(np.asarray(rows, dtype=np.int64))
        new = {int(i): j for j, i in enumerate(keep.tolist())}
        touched = [g for g in self.groups if any(i in new for i in g)]
        if any(i not in new for g in touched for i in g):
            raise ValueError("a subset of labelled segments must hold whole images")
        groups = tuple(tuple(new[i] for i in g) for g in touched)
        cands = Candidates(self.cands.works[keep], self.cands.cos[keep])
        return replace(self, segments=tuple(self.segments[i] for i in keep.tolist()), cands=cands,
                       x=self.x[keep], labels=self.labels[keep], groups=groups)

    @classmethod
    def build(cls, index: CatalogueIndex, segments: Sequence[Segment], k: int = 10) -> Labelled:
        queries = [normalize(s.ocr) for s in segments]
        cands = retrieve(index, queries, k)
        groups = group_by_image(segments)
        x = all_features(index, queries, cands, groups)
        keys = {int(w): work_key(index.titles[w], index.authors[w]) for w in np.unique(cands.works) if w >= 0}
        labels = np.array([[1.0 if w >= 0 and keys[int(w)] == s.truth else 0.0 for w in cands.works[i]]
                           for i, s in enumerate(segments)]).reshape(cands.works.shape)
        return cls(tuple(segments), cands, x, labels, tuple(tuple(g) for g in groups))


def assign_all(index: CatalogueIndex, data: Labelled, logits: FloatArray, reject: FloatArray | float,
               rows: IntArray | None = None) -> list[int | None]:
    """Per-image assignment of the segments ``rows`` (default all) with the given log-odds and
    reject log-odds (scalar or one per segment); returns the chosen work per segment (all n)."""
    rej = np.broadcast_to(np.asarray(reject, dtype=np.float64), (len(data.segments),))
    keep = None if rows is None else set(rows.tolist())
    out: list[int | None] = [None] * len(data.segments)
    for g in data.groups:
        gi = [i for i in g if keep is None or i in keep]
        if not gi:
            continue
        chosen = assign_image(data.cands.works[gi], logits[gi], rej[gi], index.multiplicity)
        for i, c in zip(gi, chosen, strict=True):
            out[i] = c
    return out


def predictions(index: CatalogueIndex, data: Labelled, chosen: Sequence[int | None]) -> list[BookMatch]:
    return [BookMatch(s.ocr, None, "", "", "", (), 0.0) if c is None
            else BookMatch(s.ocr, c, index.titles[c], index.authors[c], index.tags[c], (), 0.0)
            for s, c in zip(data.segments, chosen, strict=True)]


@dataclass(frozen=True)
class CrossValidation:
    """Out-of-fold log-odds of every candidate and, per fold, its probability map."""

    features: tuple[str, ...]
    folds: tuple[IntArray, ...]
    logits: FloatArray  # n x k, each row from the model of the fold that did not see it
    maps: tuple[tuple[float, float], ...]  # per fold: (scale, shift) fitted on the other folds
    assigned_logit: FloatArray  # n: log-odds of the work assigned with no reject (-inf if none)
    assigned_correct: FloatArray  # n: 1 when that work is the truth
    # per fold: the isotonic map's knots fitted on the other folds (empty: Platt, ``maps``)
    knot_maps: tuple[tuple[tuple[float, float], ...], ...] = ()

    def _knots(self) -> tuple[tuple[tuple[float, float], ...], ...]:
        return self.knot_maps or tuple(() for _ in self.folds)

    def probabilities(self) -> FloatArray:
        """Out-of-fold P(correct) of each segment's assigned work (0 where none)."""
        p = np.zeros(len(self.assigned_logit))
        for fold, (a, b), kn in zip(self.folds, self.maps, self._knots(), strict=True):
            z = self.assigned_logit[fold]
            p[fold] = np.where(np.isfinite(z), map_probability(z, a, b, kn), 0.0)
        return p

    def reject_logits(self, min_confidence: float) -> FloatArray:
        """Per segment, the reject log-odds of its fold at this confidence."""
        out = np.zeros(len(self.assigned_logit))
        for fold, (a, b), kn in zip(self.folds, self.maps, self._knots(), strict=True):
            out[fold] = map_logit(min_confidence, a, b, kn)
        return out

    def with_map(self, probability_map: str) -> CrossValidation:
        """The same out-of-fold log-odds with each fold's probability map refitted on the other
        folds: ``"platt"`` (Platt scaling) or ``"isotonic"`` (:func:`fit_isotonic`)."""
        if probability_map == "platt":
            return replace(self, knot_maps=())
        if probability_map != "isotonic":
            raise ValueError(f"unknown probability map {probability_map!r}")
        n = len(self.assigned_logit)
        knots = []
        for test in self.folds:
            others = np.setdiff1d(np.arange(n), test)
            knots.append(fit_isotonic(self.assigned_logit[others], self.assigned_correct[others]))
        return replace(self, knot_maps=tuple(knots))


def cross_validate(index: CatalogueIndex, data: Labelled, features: Sequence[str], folds: Sequence[IntArray],
                   l2: float = 0.01) -> CrossValidation:
    """Fit on all folds but one, predict that one; then fit each fold's probability map."""
    n, k = data.cands.works.shape
    logits = np.full((n, k), -np.inf)
    for test in folds:
        train = np.setdiff1d(np.arange(n), test)
        cal = fit_calibration(data.x[train], data.cands.works[train], data.labels[train], k, features,
                              data.names, l2)
        logits[test] = match_logits(data.x[test], data.cands.works[test], cal, data.names)
    chosen = assign_all(index, data, logits, NO_REJECT)
    z = np.full(n, -np.inf)
    correct = np.zeros(n)
    for i, c in enumerate(chosen):
        if c is None:
            continue
        r = [j for j in range(k) if data.cands.works[i, j] == c]
        z[i] = max(logits[i, j] for j in r)
        correct[i] = max(data.labels[i, j] for j in r)
    maps = []
    for test in folds:
        others = np.setdiff1d(np.arange(n), test)
        maps.append(fit_probability(z[others], correct[others]))
    return CrossValidation(tuple(features), tuple(folds), logits, tuple(maps), z, correct)


def fold_metrics(index: CatalogueIndex, data: Labelled, cv: CrossValidation, min_confidence: float
                 ) -> tuple[dict[str, float], list[dict[str, float]]]:
    """Pooled and per-fold recall / precision / F1 / reject rate at one operating point."""
    chosen = assign_all(index, data, cv.logits, cv.reject_logits(min_confidence))
    preds = predictions(index, data, chosen)
    keep = ("recall", "precision", "f1", "reject_rate")
    pooled = metrics(data.segments, preds)
    per_fold = []
    for fold in cv.folds:
        m = metrics([data.segments[i] for i in fold], [preds[i] for i in fold])
        per_fold.append({key: float(m[key]) for key in keep})
    return {key: float(pooled[key]) for key in keep}, per_fold


def summary(per_fold: Sequence[dict[str, float]]) -> dict[str, dict[str, float]]:
    """Mean, standard deviation, min and max across folds of each metric."""
    out = {}
    for key in per_fold[0]:
        v = np.array([f[key] for f in per_fold])
        out[key] = {"mean": float(v.mean()), "std": float(v.std(ddof=1)) if len(v) > 1 else 0.0,
                    "min": float(v.min()), "max": float(v.max())}
    return out


def fit_final(data: Labelled, features: Sequence[str], cv: CrossValidation, min_confidence: float,
              source: str, l2: float = 0.01) -> Calibration:
    """The calibration to ship: stage A/B fitted on all segments, the probability map (``cv``'s kind:
    Platt, or isotonic after :meth:`CrossValidation.with_map`) fitted on all out-of-fold assigned
    log-odds of ``cv``, the operating point chosen by cross-validation."""
    k = data.cands.works.shape[1]
    cal = fit_calibration(data.x, data.cands.works, data.labels, k, features, data.names, l2)
    scale, shift = fit_probability(cv.assigned_logit, cv.assigned_correct)
    knots = fit_isotonic(cv.assigned_logit, cv.assigned_correct) if cv.knot_maps else ()
    return replace(cal, scale=scale, shift=shift, min_confidence=min_confidence, source=source, knots=knots)


def operating_points(index: CatalogueIndex, data: Labelled, cv: CrossValidation,
                     grid: Sequence[float]) -> list[dict[str, float]]:
    """Pooled out-of-fold recall / precision / F1 (and the per-fold F1 spread) at each confidence."""
    out = []
    for p in grid:
        pooled, per_fold = fold_metrics(index, data, cv, p)
        f1 = np.array([f["f1"] for f in per_fold])
        rec = np.array([f["recall"] for f in per_fold])
        out.append({"min_confidence": float(p), **pooled, "f1_fold_std": float(f1.std(ddof=1)),
                    "recall_fold_min": float(rec.min()), "f1_fold_min": float(f1.min())})
    return out


def choose_operating_point(points: Sequence[dict[str, float]], min_recall: float = 0.0) -> dict[str, float]:
    """The confidence with the best pooled out-of-fold F1 among those reaching ``min_recall`` (all,
    when none does); ties go to the higher confidence (fewer wrong matches)."""
    ok = [p for p in points if p["recall"] >= min_recall] or list(points)
    return max(ok, key=lambda p: (round(p["f1"], 6), p["min_confidence"]))


GRID = tuple(round(x, 3) for x in np.arange(0.05, 0.951, 0.025))
#: the coarser grid the deciding protocol (benchmarks/books_calibrate.py and the scripts that repeat
#: its folds) chooses each outer fold's operating point on
COARSE = tuple(round(x, 3) for x in np.arange(0.1, 0.91, 0.05))


def fit_inside(index: CatalogueIndex, data: Labelled, photos: Sequence[str], train: IntArray,
               features: Sequence[str], grid: Sequence[float] = COARSE, maps: Sequence[str] = ("platt",),
               source: str = "outer fold") -> dict[str, tuple[Calibration, dict[str, float]]]:
    """The calibration an outer fold is matched with, fitted on the segments ``train`` alone (whole
    photos; ``photos``: each segment's photo): a photo-grouped cross-validation inside them chooses
    the operating point over ``grid``, once per probability map in ``maps`` (``"platt"``,
    ``"isotonic"``); returns ``{map: (calibration, chosen point)}``."""
    inner = data.subset(train)
    cv = cross_validate(index, inner, features, grouped_folds([photos[i] for i in train], 5, 0))
    out = {}
    for kind in maps:
        cvk = cv.with_map(kind)
        point = choose_operating_point(operating_points(index, inner, cvk, grid))
        out[kind] = (fit_final(inner, features, cvk, point["min_confidence"], source), point)
    return out


def calibrate(index: CatalogueIndex, segments: Sequence[Segment], features: Sequence[str] | None = None,
              min_recall: float = 0.0, n_folds: int = 5, k: int = 10, source: str = "fitted"
              ) -> tuple[Calibration, dict[str, float]]:
    """Fit a calibration on labelled segments: folds grouped by photo (the image name's first two
    ``_`` fields), probability map and operating point from the out-of-fold predictions.

    Returns the calibration and the chosen operating point's out-of-fold metrics."""
    from edgevl.books.calibration import default_calibration
    from edgevl.errors import CalibrationError

    if not segments or not segments[0].has_truth:
        raise CalibrationError("calibration needs segments with truth columns title, author")
    feats = tuple(features) if features is not None else default_calibration().features
    data = Labelled.build(index, segments, k)
    photos = [photo_of(s.image_name) for s in segments]
    try:
        folds = grouped_folds(photos, min(n_folds, len(set(photos))))
    except ValueError as e:
        raise CalibrationError(f"calibration needs labelled segments from at least 2 photos ({e})") from e
    cv = cross_validate(index, data, feats, folds)
    point = choose_operating_point(operating_points(index, data, cv, GRID), min_recall)
    return fit_final(data, feats, cv, point["min_confidence"], source), point
