"""Runtime encoders without torch: tokenizer batching, CLIP preprocessing, TextEncoder/ImageEncoder feeds."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from tiny_encoders import (
    COLOURS,
    WORDS,
    make_clip_bundle,
    make_text_embedding_bundle,
    make_tokenizer,
    solid_image,
)

from edgevl.errors import BundleError, ImageError, InputError
from edgevl.tasks.encoders import ImageEncoder, TextEncoder
from edgevl.text.tokenizer import Tokenizer
from edgevl.vision.preprocess import (
    ClipPreprocess,
    center_crop,
    normalize,
    preprocess_images,
    resize_shortest,
)

ID = {w: i for i, w in enumerate(WORDS)}


# ---------------------------------------------------------------- tokenizer

@pytest.fixture()
def tok_path(tmp_path: Path) -> Path:
    return make_tokenizer(tmp_path / "tokenizer.json")


def test_tokenizer_pads_to_longest_with_pad_id_and_mask(tok_path: Path) -> None:
    tok = Tokenizer(tok_path, max_length=16, pad_id=0)
    enc = tok(["a red photo", "Blue"])
    assert enc.input_ids.dtype == np.int64 and enc.attention_mask.dtype == np.int64
    assert enc.input_ids.tolist() == [
        [ID["[CLS]"], ID["a"], ID["red"], ID["photo"], ID["[SEP]"]],
        [ID["[CLS]"], ID["blue"], ID["[SEP]"], 0, 0],
    ]
    assert enc.attention_mask.tolist() == [[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]]
    assert enc.token_type_ids.shape == enc.input_ids.shape and not enc.token_type_ids.any()


def test_tokenizer_truncates_to_limit_keeping_end_token(tok_path: Path) -> None:
    tok = Tokenizer(tok_path, max_length=6)
    enc = tok(["red " * 50, "green"])
    assert enc.input_ids.shape == (2, 6)
    assert enc.input_ids[0, 0] == ID["[CLS]"] and enc.input_ids[0, -1] == ID["[SEP]"]
    assert (enc.input_ids[0, 1:-1] == ID["red"]).all()
    full = Tokenizer(tok_path, max_length=6, pad_to_max=True)(["green"])
    assert full.input_ids.shape == (1, 6) and full.attention_mask.tolist() == [[1, 1, 1, 0, 0, 0]]


def test_tokenizer_errors(tok_path: Path, tmp_path: Path) -> None:
    tok = Tokenizer(tok_path, max_length=8)
    with pytest.raises(InputError):
        tok([])
    with pytest.raises(InputError, match="strings"):
        tok(["ok", 3])  # type: ignore[list-item]
    with pytest.raises(BundleError, match="not found"):
        Tokenizer(tmp_path / "nope.json", 8)
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(BundleError, match="tokenizers"):
        Tokenizer(bad, 8)


# ---------------------------------------------------------------- preprocessing

def test_resize_shortest_side() -> None:
    wide = np.zeros((20, 50, 3), np.uint8)
    assert resize_shortest(wide, 10).shape == (10, 25, 3)
    tall = np.zeros((45, 30, 3), np.uint8)
    assert resize_shortest(tall, 10, "bilinear").shape == (15, 10, 3)
    assert resize_shortest(np.zeros((7, 9, 3), np.uint8), 14).shape == (14, 18, 3)


def test_center_crop_takes_the_middle_and_pads_small_images() -> None:
    img = np.zeros((6, 10, 3), np.uint8)
    img[:, :, 0] = np.arange(10)[None, :]  # column index in channel 0
    img[:, :, 1] = np.arange(6)[:, None]   # row index in channel 1
    c = center_crop(img, 4)
    assert c.shape == (4, 4, 3)
    assert c[0, :, 0].tolist() == [3, 4, 5, 6] and c[:, 0, 1].tolist() == [1, 2, 3, 4]
    small = center_crop(np.full((2, 2, 3), 9, np.uint8), 4)
    assert small.shape == (4, 4, 3) and small[1:3, 1:3].min() == 9 and small[0].max() == 0


def test_normalize_orders_channels_and_scales() -> None:
    img = np.zeros((2, 2, 3), np.uint8)
    img[:] = (0, 51, 255)  # BGR: blue 0, green 51, red 255
    x = normalize(img, (0.5, 0.5, 0.5), (0.5, 0.25, 0.5), "RGB")
    assert x.shape == (3, 2, 2) and x.dtype == np.float32
    assert np.allclose(x[:, 0, 0], [(1.0 - 0.5) / 0.5, (0.2 - 0.5) / 0.25, (0.0 - 0.5) / 0.5])
    bgr = normalize(img, (0.0, 0.0, 0.0), (1.0, 1.0, 1.0), "BGR")
    assert np.allclose(bgr[:, 1, 1], [0.0, 0.2, 1.0])


def test_preprocess_images_batch_and_spec_errors() -> None:
    spec = {"size": 8, "mean": [0.5] * 3, "std": [0.5] * 3, "interpolation": "bicubic"}
    batch = preprocess_images([solid_image("red"), solid_image("green", 40, 12)], spec)
    assert batch.shape == (2, 3, 8, 8) and batch.dtype == np.float32
    assert np.allclose(batch[0, 0], 1.0) and np.allclose(batch[0, 1:], -1.0)
    assert np.allclose(batch[1, 1], 1.0)
    with pytest.raises(BundleError, match="mean"):
        ClipPreprocess.from_manifest({"size": 8, "std": [1, 1, 1]})
    with pytest.raises(BundleError, match="interpolation"):
        ClipPreprocess.from_manifest({**spec, "interpolation": "lanczos9"})
    with pytest.raises(ImageError):
        preprocess_images([], spec)
    with pytest.raises(ImageError):
        preprocess_images([np.zeros((0, 4, 3), np.uint8)], spec)


# ---------------------------------------------------------------- encoders

def test_text_encoder_feeds_whatever_the_model_declares(tmp_path: Path) -> None:
    for inputs in (("input_ids",), ("input_ids", "attention_mask"),
                   ("input_ids", "attention_mask", "token_type_ids")):
        b = make_text_embedding_bundle(tmp_path / "-".join(inputs), inputs)
        enc = TextEncoder(b, batch_size=2)
        assert enc.input_names == inputs
        emb = enc.encode(["red", "a photo of navy", "green red", "the"])
        want = np.array([COLOURS["red"], COLOURS["navy"],
                         np.add(COLOURS["green"], COLOURS["red"]), (0, 0, 0)], np.float32)
        assert np.allclose(emb, want)


def test_text_encoder_normalize_and_errors(tmp_path: Path) -> None:
    b = make_clip_bundle(tmp_path)
    emb = TextEncoder(b, normalize=True).encode(["red red"])
    assert np.allclose(emb, np.array(COLOURS["red"]) / np.sqrt(3), atol=1e-6)
    with pytest.raises(InputError):
        TextEncoder(b).encode([])
    te = make_text_embedding_bundle(tmp_path)
    with pytest.raises(BundleError, match="clip"):
        ImageEncoder(te)


def test_image_encoder_from_paths_and_arrays(tmp_path: Path) -> None:
    import cv2

    b = make_clip_bundle(tmp_path)
    p = tmp_path / "blue.png"
    cv2.imwrite(str(p), solid_image("blue", 33, 17))
    emb = ImageEncoder(b, batch_size=1).encode([solid_image("red"), p])
    assert np.allclose(emb, [COLOURS["red"], COLOURS["blue"]], atol=1e-5)
    with pytest.raises(ImageError):
        ImageEncoder(b).encode([tmp_path / "missing.png"])


def test_runtime_modules_do_not_import_torch() -> None:
    import subprocess
    import sys

    code = ("import sys, edgevl.cli, edgevl.tasks.zeroshot, edgevl.tasks.encoders, edgevl.text.tokenizer, "
            "edgevl.vision.preprocess\n"
            "bad = [m for m in ('torch', 'onnx', 'transformers') if m in sys.modules]\n"
            "print(bad)\nsys.exit(1 if bad else 0)")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
