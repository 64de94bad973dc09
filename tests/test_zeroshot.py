"""Zero-shot classification on a hand-made CLIP-contract bundle whose embeddings are known.

Image embedding = mean RGB (normalised to ±1); text embedding = sum of colour-word vectors. So a
red image is labelled "red", and the probabilities follow from the cosines and the logit scale.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import cv2
import numpy as np
import pytest
from tiny_encoders import LOGIT_SCALE, make_clip_bundle, make_text_embedding_bundle, solid_image

from edgevl.bundle import Bundle
from edgevl.cli import main
from edgevl.errors import InputError
from edgevl.tasks.zeroshot import (
    EmbeddingCache,
    Prediction,
    ZeroShotClassifier,
    build_prompts,
    default_templates,
    parse_labels,
    parse_templates,
    top_k,
    zero_shot_probs,
)


@pytest.fixture(autouse=True)
def _private_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Default caches go under the test's tmp dir, never the user's ~/.cache."""
    monkeypatch.setenv("EDGEVL_HOME", str(tmp_path / "edgevl-home"))


@pytest.fixture()
def clip_bundle(tmp_path: Path) -> Bundle:
    return make_clip_bundle(tmp_path)


def test_default_templates_are_the_80_clip_imagenet_templates() -> None:
    t = default_templates()
    assert len(t) == 80 and len(set(t)) == 80
    assert all(x.count("{}") == 1 for x in t)
    assert "a photo of a {}." in t and "itap of my {}." in t


def test_prompt_helpers() -> None:
    assert parse_labels(" cat, dog ,bird") == ("cat", "dog", "bird")
    with pytest.raises(InputError, match="no labels"):
        parse_labels(" , ")
    with pytest.raises(InputError, match="duplicate"):
        parse_labels("cat,cat")
    with pytest.raises(InputError, match=r":2:"):
        parse_templates("# comment\nno placeholder here\n")
    p = build_prompts(["cat", "dog"], ["a {}.", "the {} again"], {"dog": ["a loyal hound"]})
    assert p == {"cat": ("a cat.", "the cat again"), "dog": ("a loyal hound",)}
    with pytest.raises(InputError, match="fish"):
        build_prompts(["cat"], ["{}"], {"fish": ["x"]})


def test_probabilities_follow_logit_scale_and_top_k_order() -> None:
    img = np.array([[1.0, -1.0, -1.0]], np.float32)
    cls = np.array([[-1.0, 1.0, -1.0], [2.0, -2.0, -2.0], [-1.0, -1.0, 1.0]], np.float32)
    probs = zero_shot_probs(img, cls, 10.0)
    # cosines: -1/3, 1, -1/3
    z = math.exp(10) + 2 * math.exp(-10 / 3)
    assert probs[0, 1] == pytest.approx(math.exp(10) / z, rel=1e-5)
    res = top_k(probs, ["green", "red", "blue"], 2, ["x.png"])
    assert res[0].label == "red" and [p.label for p in res[0].predictions] == ["red", "green"]
    assert res[0].to_dict()["image"] == "x.png"
    assert Prediction("a", 0.5).to_dict() == {"label": "a", "score": 0.5}


def test_classify_labels_with_default_templates(clip_bundle: Bundle, tmp_path: Path) -> None:
    clf = ZeroShotClassifier(clip_bundle, cache=tmp_path / "cache")
    clf.set_labels(["red", "green", "blue"])
    res = clf.classify([solid_image("green"), solid_image("red", 50, 9), solid_image("blue")], top_k=3)
    assert [r.label for r in res] == ["green", "red", "blue"]
    z = math.exp(LOGIT_SCALE) + 2 * math.exp(-LOGIT_SCALE / 3)
    assert res[0].predictions[0].score == pytest.approx(math.exp(LOGIT_SCALE) / z, rel=1e-4)
    assert sum(p.score for p in res[0].predictions) == pytest.approx(1.0, abs=1e-5)


def test_descriptions_are_averaged_per_class(clip_bundle: Bundle, tmp_path: Path) -> None:
    clf = ZeroShotClassifier(clip_bundle, cache=False)
    # "warm": one red and one green description → the average points between red and green
    clf.set_descriptions({"warm": ["a crimson thing", "an emerald thing"], "cold": ["navy"]})
    assert np.allclose(clf.class_embeds[0], np.array([0.0, 0.0, -1.0]), atol=1e-6)
    assert clf.classify([solid_image("blue")], top_k=1)[0].label == "cold"
    assert clf.classify([solid_image("red")], top_k=1)[0].label == "warm"


def test_cache_hit_skips_the_text_model_and_prompts_change_the_key(clip_bundle: Bundle,
                                                                    tmp_path: Path) -> None:
    cache_dir = tmp_path / "cache"
    first = ZeroShotClassifier(clip_bundle, cache=cache_dir)
    first.set_labels(["red", "blue"], templates=["a photo of a {}."])
    assert first.cache is not None and (first.cache.hits, first.cache.misses) == (0, 2)
    second = ZeroShotClassifier(clip_bundle, cache=EmbeddingCache(cache_dir))
    second.set_labels(["red", "blue"], templates=["a photo of a {}."])
    assert second.cache is not None and (second.cache.hits, second.cache.misses) == (2, 0)
    assert second._text is None  # the text model was never opened
    assert np.array_equal(first.class_embeds, second.class_embeds)
    second.set_labels(["red", "blue"], templates=["the {}."])
    assert (second.cache.hits, second.cache.misses) == (2, 2)
    # a corrupt entry is a miss, recomputed
    for f in cache_dir.rglob("*.npy"):
        f.write_bytes(b"garbage")
    third = ZeroShotClassifier(clip_bundle, cache=cache_dir)
    third.set_labels(["red", "blue"], templates=["a photo of a {}."])
    assert third.cache is not None and third.cache.misses == 2
    assert np.allclose(third.class_embeds, first.class_embeds)


def test_zeroshot_rejects_wrong_task_and_unset_labels(clip_bundle: Bundle, tmp_path: Path) -> None:
    from edgevl.errors import BundleError

    with pytest.raises(BundleError, match="clip"):
        ZeroShotClassifier(make_text_embedding_bundle(tmp_path))
    with pytest.raises(InputError, match="no classes"):
        ZeroShotClassifier(clip_bundle, cache=False).classify([solid_image("red")])


# ---------------------------------------------------------------- CLI

@pytest.fixture()
def images(tmp_path: Path) -> dict[str, Path]:
    out = {}
    for c in ("red", "green", "blue"):
        out[c] = tmp_path / f"{c}.png"
        cv2.imwrite(str(out[c]), solid_image(c))
    return out


def test_cli_classify_json(clip_bundle: Bundle, images: dict[str, Path], tmp_path: Path,
                           monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("EDGEVL_HOME", str(tmp_path / "home"))
    labels = tmp_path / "labels.txt"
    labels.write_text("# colours\nred\ngreen\n\nblue\n")
    rc = main(["classify", str(images["blue"]), str(images["red"]), "--bundle", str(clip_bundle.path),
               "--labels-file", str(labels), "--top-k", "2", "--json"])
    assert rc == 0
    out = json.loads(capsys.readouterr().out)
    assert [r["predictions"][0]["label"] for r in out["results"]] == ["blue", "red"]
    assert len(out["results"][0]["predictions"]) == 2
    assert list((tmp_path / "home" / "text-embeddings").rglob("*.npy"))  # cache under $EDGEVL_HOME
    desc = tmp_path / "d.json"
    desc.write_text(json.dumps({"fire": ["scarlet"], "sea": ["navy", "a blue thing"]}))
    tmpl = tmp_path / "t.txt"
    tmpl.write_text("a {} picture\n")
    rc = main(["classify", str(images["red"]), "-b", str(clip_bundle.path), "--descriptions", str(desc),
               "--templates", str(tmpl)])
    assert rc == 0 and capsys.readouterr().out.startswith(f"{images['red']}: fire ")


def test_cli_embed_text_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    b = make_text_embedding_bundle(tmp_path)
    assert main(["embed", str(b.path), "--text", "red", "--text", "navy navy", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["dim"] == 3 and out["items"][1]["embedding"] == [-2.0, -2.0, 2.0]


@pytest.mark.parametrize("case", ["wrong-task", "empty-labels", "bad-image", "both-kinds", "no-labels",
                                  "missing-image", "bad-template"])
def test_cli_errors_exit_2_one_line(case: str, clip_bundle: Bundle, images: dict[str, Path], tmp_path: Path,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not an image at all")
    tmpl = tmp_path / "t.txt"
    tmpl.write_text("no placeholder\n")
    clip = str(clip_bundle.path)
    argv = {
        "wrong-task": ["classify", str(images["red"]), "-b", str(make_text_embedding_bundle(tmp_path).path),
                       "--labels", "a,b"],
        "empty-labels": ["classify", str(images["red"]), "-b", clip, "--labels", " , "],
        "bad-image": ["classify", str(bad), "-b", clip, "--labels", "red,blue"],
        "both-kinds": ["embed", clip, "--text", "x", "--image", str(images["red"])],
        "no-labels": ["classify", str(images["red"]), "-b", clip],
        "missing-image": ["embed", clip, "--image", str(tmp_path / "nope.png")],
        "bad-template": ["classify", str(images["red"]), "-b", clip, "--labels", "red",
                         "--templates", str(tmpl)],
    }[case]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("edgevl: error: ") and "\n" not in err
