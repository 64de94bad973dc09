"""Dev-split evaluation on the real library data (skipped when ../shared is absent).

Floors are set just below what the shipped calibration reaches in-sample (R 0.967, P 0.961,
F1 0.964, reject rate 0.870; out of fold over 15 photo-grouped folds: R 0.966, P 0.957, F1 0.962
pooled, benchmarks/results/books_calibration.md).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from edgevl.books import BookMatcher, build_index, load_catalogue
from edgevl.books.evaluate import evaluate, read_segments

pytestmark = pytest.mark.shared


def test_dev_split_matching_meets_the_floor(library_dir: Path) -> None:
    cat = load_catalogue(library_dir / "library_books.csv")
    assert cat.encoding in ("utf-8", "utf-8-sig") and len(cat) == 15228
    segs = read_segments(library_dir / "annotations_dev.csv")
    _, res = evaluate(BookMatcher(build_index(cat)), segs)
    assert res["catalogued"] == 2448 and res["no_match_truth"] == 675
    assert res["recall"] >= 0.960, res
    assert res["precision"] >= 0.953, res
    assert res["f1"] >= 0.957, res
    assert res["reject_rate"] >= 0.85, res
