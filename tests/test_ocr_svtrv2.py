"""SVTRv2 as a recogniser (issue 21): bundle from the wheel, fixed input sizes, --rec, the cascade,
bad crops."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
from benchlib.synth import render_vertical, render_word

import edgevl.models.ppocr as ppocr
import edgevl.models.recognizers as recognizers
from edgevl.bundle import load_bundle, sha256_file
from edgevl.cli import main
from edgevl.errors import BundleError, InputError
from edgevl.models import svtrv2
from edgevl.tasks.ocr import OcrPipeline, TextRecognizer
from edgevl.tasks.ocr.sections import Normalization, RecognizerPreprocess
from edgevl.vision.fixedsize import add_margin, nearest_aspect


def _norm(s: str) -> str:
    return re.sub(r"[^0-9a-z]", "", s.lower())


def _wheel() -> Path:
    try:
        return svtrv2.package_dir()
    except BundleError as e:
        pytest.skip(str(e))


# ------------------------------------------------------------------ pure parts (no model)


def test_nearest_aspect_picks_the_size_whose_ratio_is_closest() -> None:
    sizes = svtrv2.SIZES  # ratios 1, 2, 2.8, 4
    assert nearest_aspect(40, 40, sizes) == 0
    assert nearest_aspect(30, 57, sizes) == 1  # 1.9
    assert nearest_aspect(30, 90, sizes) == 2  # 3.0 is nearer 2.8 than 4
    assert nearest_aspect(10, 1000, sizes) == 3
    assert nearest_aspect(1000, 10, sizes) == 0
    assert nearest_aspect(0, 5, sizes) == 3  # a zero height never divides by zero


def test_margin_adds_a_border_of_the_edge_colour() -> None:
    crop = np.full((20, 50, 3), 200, np.uint8)
    crop[5:15, 10:40] = 0
    out = add_margin(crop, 0.25)
    assert out.shape == (30, 60, 3)
    assert (out[:5] == 200).all() and (out[:, -5:] == 200).all()
    assert add_margin(crop, 0.0) is crop


def test_fixed_sizes_round_trip_and_ppocr_manifests_keep_their_keys() -> None:
    pre = svtrv2.PREPROCESS
    d = pre.to_manifest()
    assert d["sizes"] == [[64, 64], [48, 96], [40, 112], [32, 128]] and d["color"] == "RGB"
    assert d["mean"] == [0.5] * 3 and d["std"] == [0.5] * 3 and d["size_policy"] == "aspect"
    assert RecognizerPreprocess.from_manifest(d) == pre
    # a variable-width recogniser's manifest is what it was before fixed sizes existed
    assert set(ppocr.REC_PREPROCESS.to_manifest()) == {"color", "scale", "mean", "std", "height", "min_width",
                                                       "max_width", "width_multiple", "interpolation"}


@pytest.mark.parametrize("bad", [[[32]], [[0, 128]], [[32, "128"]], "32x128", [[32, 128.0]], [[True, 4]]])
def test_bad_sizes_are_bundle_errors(bad: object) -> None:
    d = {**svtrv2.PREPROCESS.to_manifest(), "sizes": bad}
    with pytest.raises(BundleError, match="sizes"):
        RecognizerPreprocess.from_manifest(d)


def test_selector_policy_needs_a_selector_file() -> None:
    norm = Normalization(mean=(0.5,) * 3, std=(0.5,) * 3, scale=1 / 255, color="RGB")
    pre = RecognizerPreprocess(norm=norm,
                               height=32, min_width=64, max_width=128, sizes=((32, 128),),
                               size_policy="selector")
    with pytest.raises(BundleError, match="selector"):
        RecognizerPreprocess.from_manifest(pre.to_manifest())


def test_fixed_sizes_give_the_trt_profile_ranges() -> None:
    from edgevl.tasks.registry import input_dims

    dims = input_dims("text-recognition", "model", ["batch", 3, "height", "width"], "float32",
                      svtrv2.PREPROCESS.to_manifest(), svtrv2.CONFIG.to_manifest())
    h, w = dims[2], dims[3]
    assert (h.min, h.max, w.min, w.max) == (32, 64, 64, 128)


# ------------------------------------------------------------------ the real model (wheel installed)


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    _wheel()
    root = tmp_path_factory.mktemp("svtr")
    return svtrv2.build_bundle(root, fuse=False).path


@pytest.fixture()
def home(tmp_path: Path, bundle: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    h = tmp_path / "home"
    (h / "bundles").mkdir(parents=True)
    (h / "bundles" / bundle.name).symlink_to(bundle)
    monkeypatch.setenv("EDGEVL_HOME", str(h))
    monkeypatch.setattr(recognizers, "_CACHE", {})
    return h


def test_manifest_names_the_wheel_and_its_digests(bundle: Path) -> None:
    pkg = _wheel()
    b = load_bundle(bundle)
    src = b.manifest.source
    assert src["package"] == "azcrawlerpy-recaptcha-text" and src["licence"] == "MIT"
    assert src["version"] == svtrv2.installed_version() != "not installed"
    assert src["sha256"] == sha256_file(pkg / "svtrv2.onnx")
    assert src["selector_sha256"] == sha256_file(pkg / "selector.onnx")
    assert b.manifest.config["num_classes"] == 95 and b.manifest.task == "text-recognition"
    assert svtrv2.is_current(b)


@pytest.mark.parametrize("word", ["Library", "MUSEUM", "garden42", "Zebra"])
def test_reads_real_words_so_the_charset_order_is_right(bundle: Path, word: str) -> None:
    rec = TextRecognizer(rec=str(bundle))
    r = rec.read([render_word(word, size=36)])[0]
    # case and digits both depend on the class order: digits, lower, upper, punctuation
    assert r.text == word and 0.5 < r.score <= 1.0


def test_batches_per_size_give_what_one_crop_alone_gives(bundle: Path) -> None:
    rec = TextRecognizer(rec=str(bundle), batch_size=2)
    words = ["at", "Garden", "Mountains", "encyclopedia", "tea", "Ocean"]
    crops = [render_word(w, size=30) for w in words]
    together = rec.read(crops)
    alone = [rec.read([c])[0] for c in crops]
    assert [r.text for r in together] == [r.text for r in alone]
    assert np.allclose([r.score for r in together], [r.score for r in alone], atol=1e-4)
    assert sorted({rec._chooser(crops)[i] for i in range(len(crops))}) != [0]  # more than one size used


def test_vertical_crops_are_laid_flat_as_today(home: Path, bundle: Path) -> None:
    pipe = OcrPipeline(rec="svtrv2")
    res = pipe.read_crops([render_vertical("HISTORIA", "down", size=32)])
    assert _norm(res[0].text) == "historia"


def test_rec_and_model_and_recognizer_conflicts_are_input_errors(bundle: Path) -> None:
    with pytest.raises(InputError):
        TextRecognizer(rec=str(bundle), model="ppocrv6")
    rec = TextRecognizer(rec=str(bundle))
    with pytest.raises(InputError):
        OcrPipeline(recognizer=rec, rec="svtrv2")
    with pytest.raises(InputError):
        OcrPipeline(recognizer=rec, rec_cascade=rec, cascade_below=1.5)


def test_cascade_rereads_only_readings_below_the_threshold(home: Path, bundle: Path) -> None:
    svtr = TextRecognizer(rec=str(bundle))
    crops = [render_word(w, size=34) for w in ("Cervantes", "river", "Lorca")]
    base = OcrPipeline()
    first = base.read_crops(crops)
    none = OcrPipeline(recognizer=base.recognizer, rec_cascade=svtr, cascade_below=0.0).read_crops(crops)
    assert none.timings.cascaded == 0 and [r.text for r in none] == [r.text for r in first]
    every = OcrPipeline(recognizer=base.recognizer, rec_cascade=svtr, cascade_below=1.0).read_crops(crops)
    assert every.timings.cascaded == sum(r.score < 1.0 for r in first) > 0
    assert [_norm(r.text) for r in every] == ["cervantes", "river", "lorca"]
    assert every.timings.cascade > 0


def test_cli_rec_name_and_folder(home: Path, bundle: Path, tmp_path: Path,
                                 capsys: pytest.CaptureFixture[str]) -> None:
    word = tmp_path / "w.png"
    cv2.imwrite(str(word), render_word("Quixote", size=36))
    for spec in ("svtrv2", str(bundle)):
        assert main(["ocr", "--crops", "--rec", spec, "--json", str(word)]) == 0
        assert json.loads(capsys.readouterr().out)["crops"][0]["text"] == "Quixote"
    assert main(["ocr", "--crops", "--rec-cascade", "svtrv2", "--cascade-below", "1", str(word)]) == 0
    assert "Quixote" in capsys.readouterr().out


@pytest.mark.parametrize("args", [["--rec", "nosuchmodel"], ["--cascade-below", "0.5"],
                                  ["--rec-cascade", "svtrv2", "--cascade-below", "2"]])
def test_cli_bad_rec_options_are_one_error_line(home: Path, tmp_path: Path, args: list[str],
                                                capsys: pytest.CaptureFixture[str]) -> None:
    word = tmp_path / "w.png"
    cv2.imwrite(str(word), render_word("Lorca"))
    assert main(["ocr", "--crops", *args, str(word)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("edgevl: error:")


def test_rec_folder_of_another_task_is_refused(home: Path, bundle: Path, tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    other = tmp_path / "other"
    shutil.copytree(bundle, other)
    m = json.loads((other / "manifest.json").read_text())
    m["task"] = "text-orientation"
    (other / "manifest.json").write_text(json.dumps(m))
    word = tmp_path / "w.png"
    cv2.imwrite(str(word), render_word("Lorca"))
    assert main(["ocr", "--crops", "--rec", str(other), str(word)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("edgevl: error:")


@pytest.mark.parametrize("shape", [(1, 1), (1, 10000), (10000, 1), (40, 120)])
def test_degenerate_and_black_crops_give_a_result(home: Path, tmp_path: Path, shape: tuple[int, int],
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    p = tmp_path / "c.png"
    cv2.imwrite(str(p), np.zeros((*shape, 3), np.uint8))  # all black
    for extra in (["--rec", "svtrv2"], ["--rec-cascade", "svtrv2", "--cascade-below", "1"]):
        rc = main(["ocr", "--crops", *extra, "--json", str(p)])
        out, err = capsys.readouterr()
        if rc == 0:
            doc = json.loads(out)["crops"][0]
            assert isinstance(doc["text"], str) and 0.0 <= doc["score"] <= 1.0
        else:
            assert rc == 2 and len(err.strip().splitlines()) == 1 and err.startswith("edgevl: error:")


def test_models_list_shows_svtrv2(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["models", "list", "--json"]) == 0
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)["models"]}
    r = rows["svtrv2"]
    assert r["source"] == "azcrawlerpy-recaptcha-text" and r["licence"] == "MIT" and r["verified"] is True
    assert r["size_mb"] > 50
    assert main(["models", "list"]) == 0
    assert "svtrv2" in capsys.readouterr().out


def test_missing_wheel_is_a_bundle_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(svtrv2, "PACKAGE", "no_such_package_here")
    with pytest.raises(BundleError, match="pip install azcrawlerpy-recaptcha-text"):
        svtrv2.package_dir()


def test_accented_words_are_read_as_their_base_letters(bundle: Path) -> None:
    """SVTRv2's charset is ASCII: an accented title loses its accents, which is exactly the form the
    book matcher compares (NFKD, accents stripped), so a match is not lost."""
    from edgevl.books.catalogue import normalize

    words = ["Matemáticas", "Niño", "Corazón", "Canción"]
    got = TextRecognizer(rec=str(bundle)).read([render_word(w, size=34) for w in words])
    assert [r.text for r in got] == ["Matematicas", "Nino", "Corazon", "Cancion"]
    assert [normalize(r.text) for r in got] == [normalize(w) for w in words]


@pytest.mark.parametrize(("text", "spaced", "want"), [
    ("TENISENLAESCUELA", "TENIS EN LA ESCUELA", "TENIS EN LA ESCUELA"),
    ("TENISENLAESCUELA", "TENIS ENLAESCUELA", "TENIS ENLAESCUELA"),
    ("FISICAYELDEPORTE", "D FÍSICAY EL DEPORTE", "FISICAY EL DEPORTE"),  # accents compared as base letters
    ("796.42Pol", "日796.42 Pol", "796.42 Pol"),
    ("NPam", "N Pam", "N Pam"),
    ("ORHAN", "ORHHN", "ORHAN"),  # no space to take
    ("already spaced", "al ready spaced", "already spaced"),  # text with spaces is kept
    ("", "a b", ""),
])
def test_respace_takes_the_word_spaces_of_the_other_reading(text: str, spaced: str, want: str) -> None:
    from edgevl.text.respace import respace

    assert respace(text, spaced) == want


def test_respaced_reading_keeps_one_confidence_per_character() -> None:
    from edgevl.tasks.ocr.results import Reading
    from edgevl.tasks.ocr.results import respaced as _respaced

    r = _respaced(Reading("ab", 0.5, (0.9, 0.4)), "a b")
    assert r.text == "a b" and r.char_scores == (0.9, 0.4, 0.4) and r.score == 0.5


def test_cascade_skips_crops_wider_than_the_limit(home: Path, bundle: Path) -> None:
    svtr = TextRecognizer(rec=str(bundle))
    base = OcrPipeline()
    crops = [render_word("Cervantes", size=34), render_word("a very long line of words here", size=20)]
    pipe = OcrPipeline(recognizer=base.recognizer, rec_cascade=svtr, cascade_below=1.0)
    assert crops[1].shape[1] > pipe.cascade_max_aspect * crops[1].shape[0]
    res = pipe.read_crops(crops)
    assert res.timings.cascaded == 1
    pipe.cascade_max_aspect = 1e9
    assert pipe.read_crops(crops).timings.cascaded == 2


def test_models_build_svtrv2_stores_the_checked_fused_graph(tmp_path: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    _wheel()
    assert main(["models", "build", "svtrv2", "--out", str(tmp_path), "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)["bundles"]
    assert [r["name"] for r in rows] == ["svtrv2-rec"]
    graph = load_bundle(tmp_path / "svtrv2-rec").manifest.extra["graph"]
    assert graph["applied"] is True and graph["max_abs_diff"] <= 1e-3
    assert graph["ops"]["Erf"] == -21 and len(graph["checked_sizes"]) == 4


def test_tensorrt_target_rewrites_every_attention_block(tmp_path: Path,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    _wheel()
    pytest.importorskip("onnxruntime_extensions")
    assert main(["models", "build", "svtrv2", "--target", "tensorrt", "--out", str(tmp_path), "--json"]) == 0
    capsys.readouterr()
    b = load_bundle(tmp_path / "svtrv2-rec-tensorrt")
    trt = b.manifest.config["tensorrt"]
    assert trt["attention_nodes"]["model"] == 11  # all Q.K^T softmax blocks of the graph
    assert max(trt["parity_by_size"].values()) <= 1e-4 and len(trt["parity_by_size"]) == 4
    # the ONNX Runtime model is the wheel's graph (TensorRT cannot parse ORT's BiasGelu)
    assert b.manifest.extra["graph"]["applied"] is False
    assert main(["models", "build", "ppocrv6", "--target", "tensorrt", "--out", str(tmp_path)]) == 2
