"""The matcher's calibration (weights by feature name, probability map, operating point), the grouped
cross-validation and ``--min-confidence``."""

from __future__ import annotations

import csv
import json
import math
import pickle
import random
from pathlib import Path

import numpy as np
import pytest

from edgevl.books import BookMatcher, Catalogue, build_index
from edgevl.books.calibration import (
    Calibration,
    default_calibration,
    fit_isotonic,
    fit_probability,
    load_calibration,
    match_logits,
    stage_a,
)
from edgevl.books.catalogue import normalize
from edgevl.books.crossval import Labelled, calibrate, cross_validate, grouped_folds, photo_of
from edgevl.books.evaluate import Segment, evaluate, read_segments
from edgevl.books.features import (
    FEATURES,
    all_features,
    call_class,
    class_number,
    count_labels,
    flipped_readings,
    language,
)
from edgevl.books.match import retrieve
from edgevl.cli import main
from edgevl.errors import CalibrationError
from tests.test_books_matcher import make_catalogue, make_shelves


def test_calibration_round_trips_by_feature_name_and_reads_version_1() -> None:
    cal = Calibration({"cos": 2.0, "tag": -1.5}, 0.25, (0.1, 0.9, 0.2), 1.3, -0.2, 0.4, 7, "test")
    back = Calibration.from_dict(json.loads(json.dumps(cal.to_dict())))
    assert back == cal and back.features == ("cos", "tag")
    assert pickle.loads(pickle.dumps(cal)) == cal  # worker processes receive calibrations pickled
    # version 1 stored a weight list in a fixed feature order and a reject log-odds
    v1 = Calibration.from_dict({"w": list(range(19)), "bias": 0.5, "stage2": [0, 1, 0], "reject": -1.0})
    assert v1.weights["cos"] == 0 and v1.weights["explained_x_len"] == 18
    assert v1.reject_logit == pytest.approx(-1.0)
    with pytest.raises(CalibrationError, match="malformed"):
        Calibration.from_dict({"weights": {"cos": 1.0}})


def test_the_reject_log_odds_is_where_the_probability_reaches_min_confidence() -> None:
    cal = Calibration({"cos": 1.0}, 0.0, (0.0, 1.0, 0.0), scale=0.7, shift=0.3, min_confidence=0.8)
    assert float(cal.probability(cal.reject_logit)) == pytest.approx(0.8)
    assert float(cal.probability(-math.inf)) == 0.0
    for bad in (0.0, 1.0, 1.5, -0.1):
        with pytest.raises(CalibrationError, match="strictly between 0 and 1"):
            cal.with_min_confidence(bad)


def test_weights_are_read_by_name_whatever_the_column_order() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(4, 3, len(FEATURES)))
    cal = Calibration({"tag": 2.0, "cos": -1.0}, 0.5, (0.0, 1.0, 0.0))
    want = 2.0 * x[..., FEATURES.index("tag")] - 1.0 * x[..., FEATURES.index("cos")] + 0.5
    np.testing.assert_allclose(stage_a(x, cal, FEATURES), want)
    # the same features in another order give the same scores
    order = list(reversed(FEATURES))
    np.testing.assert_allclose(stage_a(x[..., ::-1], cal, order), want)
    with pytest.raises(CalibrationError, match="does not compute"):
        bad = Calibration({"nope": 1.0}, 0.0, (0, 1, 0))
        match_logits(x, np.zeros((4, 3), dtype=np.int64), bad, FEATURES)


def test_a_matcher_refuses_a_calibration_with_an_unknown_feature() -> None:
    index = build_index(Catalogue.from_records([("Title one", "Author, A", "N Aut")]))
    with pytest.raises(CalibrationError, match="unknown_feature"):
        BookMatcher(index, Calibration({"unknown_feature": 1.0}, 0.0, (0, 1, 0)))


def test_shipped_calibration_only_names_features_the_matcher_computes() -> None:
    cal = default_calibration()
    assert set(cal.features) <= set(FEATURES) and 0 < cal.min_confidence < 1 and cal.scale > 0


def test_platt_scaling_recovers_a_known_probability_map() -> None:
    rng = np.random.default_rng(1)
    z = rng.normal(scale=3.0, size=20000)
    y = (rng.random(z.size) < 1 / (1 + np.exp(-(2.0 * z - 1.0)))).astype(np.float64)
    a, b = fit_probability(z, y)
    assert a == pytest.approx(2.0, abs=0.1) and b == pytest.approx(-1.0, abs=0.1)
    with pytest.raises(CalibrationError):
        fit_probability(z, np.ones_like(z))


def test_grouped_folds_never_split_a_group_and_cover_everything_once() -> None:
    groups = [f"p{i % 13}" for i in range(200)]
    folds = grouped_folds(groups, 5, seed=3)
    seen = np.concatenate(folds)
    assert sorted(seen.tolist()) == list(range(200))
    owner = {}
    for k, fold in enumerate(folds):
        for i in fold:
            assert owner.setdefault(groups[i], k) == k
    assert [f.tolist() for f in grouped_folds(groups, 5, seed=3)] == [f.tolist() for f in folds]
    with pytest.raises(ValueError):
        grouped_folds(["a", "b"], 5)
    assert photo_of("20221128_104830_1.jpg") == "20221128_104830"


def test_librarian_helpers() -> None:
    assert language(["la", "casa", "de", "los", "espiritus", "y", "otros"]) == "es"
    assert language(["els", "ulls", "grocs", "dels", "cocodrils"]) == "ca"
    assert language(["the", "lord", "of", "the", "rings"]) == "en"
    assert language(["casa", "blanca"]) == ""
    assert [call_class(t) for t in ("796 4 sal", "n sap", "i pav", "")] == ["79", "n", "i", ""]


def test_shelf_class_rewards_a_candidate_from_the_class_of_the_other_spines() -> None:
    cat = Catalogue.from_records([("Atletismo basico", "Perez, Ana", "796 Per"),
                                  ("Atletismo", "Perez, Ana", "N Per"),
                                  ("Tenis moderno", "Lopez, Luis", "796 Lop"),
                                  ("Futbol total", "Gil, Marta", "796 Gil")])
    index = build_index(cat)
    queries = ["atletismo perez", "tenis moderno lopez 796 lop", "futbol total gil 796 gil"]
    cands = retrieve(index, queries, 4)
    x = all_features(index, queries, cands)
    col = FEATURES.index("shelf_class")
    score = {index.tags[w]: x[0, r, col] for r, w in enumerate(cands.works[0]) if w >= 0}
    assert score["796 Per"] > 0.9 and score["N Per"] == 0.0
    # alone on its photo, a segment has no shelf evidence
    alone = all_features(index, queries, cands, groups=[[0], [1], [2]])
    assert np.all(alone[..., col] == 0.0)


def test_a_label_read_upside_down_is_turned_back() -> None:
    # 91(026)(55) on a sticker mounted the other way round, as a commercial OCR read it
    assert flipped_readings(normalize("lonelu planet Iran EXI (55) (920) 16")) == ["91 026 55"]
    # 91(026)(43.7): the letters are rotated digits (L = 7, E = 3, D = 4, T = 1)
    assert flipped_readings(normalize("lonely planet PRAGA (L*ED)(920)T6")) == ["91 026 43 7"]
    # ordinary words are not rotatable runs; a run needs a digit and four glyphs
    assert flipped_readings(normalize("el poder del record")) == []
    assert flipped_readings(normalize("TOMO 2")) == []
    numbers = [class_number(t) for t in ("91 026 43 7 di d", "n sap", "5 boa", "")]
    assert numbers == ["91 026 43 7", "", "", ""]


def test_tag_flipped_marks_only_the_candidate_whose_class_number_the_rotated_label_gives() -> None:
    cat = Catalogue.from_records([("Iran", "Vives, Toni", "91(026)(55) Viv"),
                                  ("Iran", "Burke, Andrew", "91(026)(56) Bur")])
    index = build_index(cat)
    queries = [normalize("53 IRAN AIA(SS)(920)I6")]
    cands = retrieve(index, queries, 2)
    x = all_features(index, queries, cands)
    col = FEATURES.index("tag_flipped")
    score = {index.tags[w]: x[0, r, col] for r, w in enumerate(cands.works[0]) if w >= 0}
    assert score == {"91(026)(55) Viv": 1.0, "91(026)(56) Bur": 0.0}


def test_labels_extra_counts_call_number_labels_beyond_the_first() -> None:
    assert count_labels(normalize("LA DOBLE JORNADA 331 Hoc VIVIR Y TRABAJAR MEJOR 331 Tel")) == 2
    assert count_labels(normalize("Tu lado del sofa PATRICIA BENITO P 834 Fue P 834 Ben")) == 2
    assert count_labels(normalize("Alaman facil ESPASA 442 Pin")) == 1
    assert count_labels(normalize("Historia de la literatura 1917")) == 0


def test_an_isotonic_map_follows_a_shape_platt_scaling_cannot() -> None:
    # true P(correct) flat at 0.05 up to z = 0, then rising steeply: a sigmoid in z over-states the
    # low end (the no-labels shelves' 0.1-0.3 bins); the isotonic map follows it
    rng = np.random.default_rng(3)
    z = rng.uniform(-6.0, 6.0, size=40000)
    truth = np.where(z < 0.0, 0.05, np.minimum(0.05 + 0.3 * z, 0.99))
    y = (rng.random(z.size) < truth).astype(np.float64)
    knots = fit_isotonic(z, y)
    kz = np.array([k[0] for k in knots])
    kp = np.array([k[1] for k in knots])
    assert (np.diff(kz) > 0).all() and (np.diff(kp) >= 0).all() and kp[0] > 0.0 and kp[-1] < 1.0
    cal = Calibration({"cos": 1.0}, 0.0, (0.0, 1.0, 0.0), min_confidence=0.5, knots=knots)
    probe = np.array([-4.0, -1.0, 1.0, 2.0, 5.0])
    want = np.where(probe < 0.0, 0.05, np.minimum(0.05 + 0.3 * probe, 0.99))
    assert np.abs(cal.probability(probe) - want).max() < 0.04
    a, b = fit_probability(z, y)
    platt = 1 / (1 + np.exp(-(a * probe + b)))
    assert np.abs(platt - want).max() > 0.08  # the sigmoid cannot follow it
    # the reject log-odds is where the map reaches min_confidence; -inf stays 0; round trip by dict
    assert float(cal.probability(cal.reject_logit)) == pytest.approx(0.5, abs=1e-9)
    assert cal.reject_logit == pytest.approx((0.5 - 0.05) / 0.3, abs=0.25)
    assert float(cal.probability(-math.inf)) == 0.0
    assert Calibration.from_dict(json.loads(json.dumps(cal.to_dict()))) == cal
    # a confidence beyond the map's range: nothing (or everything) is matched
    assert cal.with_min_confidence(0.999).reject_logit > kz[-1]
    assert cal.with_min_confidence(0.001).reject_logit < kz[0]
    for bad in ([(0.0, 0.2), (0.0, 0.3)], [(0.0, 0.5), (1.0, 0.4)], [(0.0, 1.5)], [(math.nan, 0.5)]):
        with pytest.raises(CalibrationError, match="probability map"):
            Calibration({"cos": 1.0}, 0.0, (0.0, 1.0, 0.0), knots=tuple(bad))


def test_label_elsewhere_marks_the_title_piece_of_a_spine_whose_label_was_read_apart() -> None:
    cat = Catalogue.from_records([("Manual de ganchillo", "Hazell, Sarah", "746 Haz"),
                                  ("Tenis moderno", "Lopez, Luis", "796 Lop"),
                                  ("Futbol total", "Gil, Marta", "796 Gil")])
    index = build_index(cat)
    queries = [normalize(t) for t in ("746 Haz", "MANUAL DE GANCHILLO Sarah Hazell", "tenis moderno 796 lop",
                                      "futbol total")]
    cands = retrieve(index, queries, 3)
    x = all_features(index, queries, cands, groups=[[0, 1, 2], [3]])
    col = FEATURES.index("label_elsewhere")

    def value(i: int, tag: str) -> float:
        rows = [r for r, w in enumerate(cands.works[i]) if w >= 0 and index.tags[w] == tag]
        return float(x[i, rows[0], col])

    assert value(1, "746 Haz") == 1.0  # the title piece: its label is the other segment
    assert value(0, "746 Haz") == 0.0  # the label piece reads the label itself
    assert value(2, "796 Lop") == 0.0  # a whole spine reads its own label
    assert value(3, "796 Gil") == 0.0  # another photo: nobody reads its label


def test_shelf_unlabelled_and_rival_reads_more() -> None:
    cat = Catalogue.from_records([("Manual de ganchillo", "Hazell, Sarah", "746 Haz"),
                                  ("Tenis moderno", "Lopez, Luis", "796 Lop"),
                                  ("Futbol total", "Gil, Marta", "796 Gil"),
                                  ("Coches exclusivos", "Ruiz, Ana", "629 Rui")])
    index = build_index(cat)
    queries = [normalize(t) for t in ("746 Haz", "MANUAL DE GANCHILLO Sarah Hazell", "tenis moderno 796 lop",
                                      "futbol total", "coches exclusivos", "tenis moderno")]
    cands = retrieve(index, queries, 4)
    # photo A: the label fragment and the title fragment of one spine, and a labelled spine;
    # photo B: three spines, none showing a label
    x = all_features(index, queries, cands, groups=[[0, 1, 2], [3, 4, 5]])
    rival, unlab = FEATURES.index("rival_reads_more"), FEATURES.index("shelf_unlabelled")

    def value(i: int, tag: str, col: int) -> float:
        rows = [r for r, w in enumerate(cands.works[i]) if w >= 0 and index.tags[w] == tag]
        return float(x[i, rows[0], col])

    assert value(0, "746 Haz", rival) > 1.0  # the title fragment reads title and author, the label neither
    assert value(1, "746 Haz", rival) == 0.0
    assert value(2, "796 Lop", rival) == 0.0  # nobody else reads it
    assert all(value(i, t, unlab) == 0.0 for i, t in ((0, "746 Haz"), (1, "746 Haz"), (2, "796 Lop")))
    assert all(value(i, t, unlab) == 1.0 for i, t in ((3, "796 Gil"), (4, "629 Rui"), (5, "796 Lop")))
    # a segment's own label does not count for itself: one labelled spine among unlabelled ones
    c2 = retrieve(index, queries[2:5], 4)
    x2 = all_features(index, queries[2:5], c2, groups=[[0, 1, 2]])
    own = next(x2[0, r, unlab] for r, w in enumerate(c2.works[0]) if w >= 0 and index.tags[w] == "796 Lop")
    others = next(x2[1, r, unlab] for r, w in enumerate(c2.works[1]) if w >= 0 and index.tags[w] == "796 Gil")
    assert own == 1.0 and others == 0.0
    # a catalogue without call numbers says nothing about labels: the feature stays off
    bare = build_index(Catalogue.from_records([(t, a, "") for t, a in (("Futbol total", "Gil, Marta"),
                                                                        ("Coches exclusivos", "Ruiz, Ana"),
                                                                        ("Tenis moderno", "Lopez, Luis"))]))
    c3 = retrieve(bare, queries[3:6], 3)
    assert np.all(all_features(bare, queries[3:6], c3, groups=[[0, 1, 2]])[..., unlab] == 0.0)


def _write_segments(path: Path, texts: list[list[str]], truth: list[list[int | None]],
                    cat: Catalogue) -> None:
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["image_name", "mask_id", "ocr", "title", "author", "not_book"])
        for g, (ts, ys) in enumerate(zip(texts, truth, strict=True)):
            for k, (t, y) in enumerate(zip(ts, ys, strict=True)):
                b = cat.books[y] if y is not None else None
                w.writerow([f"2022_{g:04d}_1.jpg", k, t, b.title if b else "", b.author if b else "",
                            "False" if b else "True"])


@pytest.fixture(scope="module")
def labelled(tmp_path_factory: pytest.TempPathFactory) -> tuple[Catalogue, list[Segment], Path]:
    rng = random.Random(11)
    cat = make_catalogue(rng, 250)
    texts, truth = make_shelves(rng, cat, n_images=20, per_image=8)
    path = tmp_path_factory.mktemp("seg") / "segments.csv"
    _write_segments(path, texts, truth, cat)
    return cat, read_segments(path), path


def test_out_of_fold_probabilities_are_calibrated_and_the_fit_ships_them(
        labelled: tuple[Catalogue, list[Segment], Path]) -> None:
    cat, segs, _ = labelled
    index = build_index(cat)
    cal, point = calibrate(index, segs, features=("cos", "cos_margin", "title_cov", "author_cov", "tag"))
    assert cal.features == ("cos", "cos_margin", "title_cov", "author_cov", "tag")
    assert point["f1"] > 0.85 and cal.min_confidence == point["min_confidence"]
    data = Labelled.build(index, segs)
    folds = grouped_folds([photo_of(s.image_name) for s in segs], 4)
    cv = cross_validate(index, data, cal.features, folds)
    p = cv.probabilities()
    ok = np.isfinite(cv.assigned_logit)
    # the mean predicted probability matches the observed share of correct matches
    assert abs(p[ok].mean() - cv.assigned_correct[ok].mean()) < 0.05
    iso = cv.with_map("isotonic")  # each fold's isotonic map fitted on the other folds
    assert len(iso.knot_maps) == len(folds) and all(iso.knot_maps)
    p_iso = iso.probabilities()
    assert abs(p_iso[ok].mean() - cv.assigned_correct[ok].mean()) < 0.05
    assert np.all(p_iso[~ok] == 0.0) and not np.array_equal(p_iso, p)
    assert iso.with_map("platt").knot_maps == ()
    # a stricter operating point rejects more and is never less precise on these shelves
    loose = BookMatcher(index, cal, min_confidence=0.1).match_groups([[s.ocr for s in segs]])[0]
    strict = BookMatcher(index, cal, min_confidence=0.95).match_groups([[s.ocr for s in segs]])[0]
    assert sum(m.matched for m in strict) < sum(m.matched for m in loose)
    assert all(m.score >= 0.95 for m in strict if m.matched)


def test_a_labelled_subset_keeps_whole_images_and_their_rows(labelled: tuple[Catalogue, list[Segment], Path]
                                                              ) -> None:
    cat, segs, _ = labelled
    index = build_index(cat)
    data = Labelled.build(index, segs)
    test = grouped_folds([photo_of(s.image_name) for s in segs], 4)[1]
    sub = data.subset(test[::-1])  # any order: rows come back in dataset order
    assert [s.mask_id for s in sub.segments] == [segs[i].mask_id for i in sorted(test.tolist())]
    rows = np.sort(test)
    assert np.array_equal(sub.x, data.x[rows]) and np.array_equal(sub.labels, data.labels[rows])
    # groups are renumbered and still hold one image each, covering the subset once
    assert sorted(i for g in sub.groups for i in g) == list(range(len(test)))
    assert all(len({sub.segments[i].image_name for i in g}) == 1 for g in sub.groups)
    with pytest.raises(ValueError, match="whole images"):
        data.subset(np.array([data.groups[0][0]]))  # one segment of an 8-segment image


def _write_catalogue(cat: Catalogue, path: Path) -> Path:
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["title", "author", "tag"])
        for b in cat.books:
            w.writerow([b.title, b.author, b.tag])
    return path


def test_cli_min_confidence(labelled: tuple[Catalogue, list[Segment], Path], tmp_path: Path,
                            capsys: pytest.CaptureFixture[str]) -> None:
    cat, _, seg_path = labelled
    cat_path = _write_catalogue(cat, tmp_path / "cat.csv")
    base = ["books", "eval", "--catalogue", str(cat_path), "--segments", str(seg_path), "--json",
            "--cache-dir", str(tmp_path / "cache")]
    assert main([*base, "--min-confidence", "0.05"]) == 0
    loose = json.loads(capsys.readouterr().out)
    assert main([*base, "--min-confidence", "0.99"]) == 0
    strict = json.loads(capsys.readouterr().out)
    assert strict["predicted"] < loose["predicted"] and strict["precision"] >= loose["precision"]
    assert main([*base, "--min-confidence", "1.5"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("edgevl: error:") and "between 0 and 1" in err and err.count("\n") == 1


def test_cli_calibration_goes_only_where_the_user_names_it(
        labelled: tuple[Catalogue, list[Segment], Path], tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    """Issue 11: `books index --calibrate` writes the fit to --calibration-out and never into the shared
    index cache, so a later plain `books eval` is unchanged; the fit is used only when passed."""
    cat, _, _ = labelled
    cat_path = _write_catalogue(cat, tmp_path / "cat.csv")
    # every other segment cut to a few letters, so the fit sees wrong matches as well as right ones
    texts, truth = make_shelves(random.Random(5), cat, n_images=20, per_image=8)
    texts = [[t if i % 2 else t[:7] for i, t in enumerate(img)] for img in texts]
    seg_path = tmp_path / "segments.csv"
    _write_segments(seg_path, texts, truth, cat)
    cache = tmp_path / "cache"
    ev = ["books", "eval", "--catalogue", str(cat_path), "--segments", str(seg_path), "--json",
          "--cache-dir", str(cache)]
    assert main(ev) == 0
    before = json.loads(capsys.readouterr().out)
    cached = {p: p.read_bytes() for p in cache.rglob("*") if p.is_file()}

    idx = ["books", "index", "--catalogue", str(cat_path), "--cache-dir", str(cache),
           "--calibrate", str(seg_path)]
    assert main([*idx, "--min-recall", "0.99"]) == 2  # no --calibration-out: refused, nothing fitted
    err = capsys.readouterr().err
    assert err.startswith("edgevl: error:") and "--calibration-out" in err and err.count("\n") == 1
    out = tmp_path / "mine" / "cal.json"
    assert main([*idx, "--min-recall", "0.99", "--calibration-out", str(out), "--json"]) == 0
    capsys.readouterr()
    fitted = load_calibration(out)
    assert seg_path.name in fitted.source and fitted.to_dict() != default_calibration().to_dict()
    # the shared cache is byte for byte what it was, and plain eval gives the same numbers
    assert {p: p.read_bytes() for p in cache.rglob("*") if p.is_file()} == cached
    assert main(ev) == 0
    after = json.loads(capsys.readouterr().out)
    metrics = ("predicted", "recall", "precision", "f1", "reject_rate")
    assert [after[k] for k in metrics] == [before[k] for k in metrics]
    # passed explicitly, the fit is what the matcher uses
    assert main([*ev, "--calibration", str(out)]) == 0
    with_fit = json.loads(capsys.readouterr().out)
    _, direct = evaluate(BookMatcher(build_index(cat), fitted), read_segments(seg_path))
    assert [with_fit[k] for k in metrics] == [direct[k] for k in metrics]
    out.write_text("[1, 2]")
    assert main([*ev, "--calibration", str(out)]) == 2
    assert capsys.readouterr().err.startswith("edgevl: error:")
