from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from edgevl.errors import ImageError
from edgevl.vision import io as vio


def _write(path: Path, arr: np.ndarray) -> Path:
    assert cv2.imwrite(str(path), arr)
    return path


def test_colour_png_round_trip(tmp_path: Path) -> None:
    arr = np.random.default_rng(0).integers(0, 255, (9, 7, 3), dtype=np.uint8)
    out = vio.read_image(_write(tmp_path / "c.png", arr))
    assert out.dtype == np.uint8 and out.shape == (9, 7, 3)
    np.testing.assert_array_equal(out, arr)


def test_greyscale_becomes_three_equal_channels(tmp_path: Path) -> None:
    g = np.arange(20, dtype=np.uint8).reshape(4, 5) * 10
    out = vio.read_image(_write(tmp_path / "g.png", g))
    assert out.shape == (4, 5, 3)
    for c in range(3):
        np.testing.assert_array_equal(out[..., c], g)


def test_sixteen_bit_is_scaled_not_truncated(tmp_path: Path) -> None:
    a = np.full((3, 3, 3), 65535, np.uint16)
    a[0, 0] = 0
    a[1, 1] = 32896  # ~ half
    out = vio.read_image(_write(tmp_path / "s.png", a))
    assert out.dtype == np.uint8
    assert out[2, 2, 0] == 255 and out[0, 0, 0] == 0 and 126 <= out[1, 1, 0] <= 129


def test_rgba_is_composited_on_white(tmp_path: Path) -> None:
    a = np.zeros((2, 2, 4), np.uint8)
    a[0, 0] = (0, 0, 255, 255)  # opaque red (BGRA)
    a[1, 1] = (0, 0, 0, 0)  # transparent
    out = vio.read_image(_write(tmp_path / "a.png", a))
    assert tuple(out[0, 0]) == (0, 0, 255)
    assert tuple(out[1, 1]) == (255, 255, 255)


def test_float_arrays_are_accepted() -> None:
    out = vio.to_bgr8(np.full((2, 2, 3), 0.5, np.float32))
    assert out.dtype == np.uint8 and int(out[0, 0, 0]) in (127, 128)


@pytest.mark.parametrize(
    ("content", "message"),
    [(b"", "empty file"), (b"not an image at all", "not a readable image")],
)
def test_bad_files(tmp_path: Path, content: bytes, message: str) -> None:
    p = tmp_path / "x.jpg"
    p.write_bytes(content)
    with pytest.raises(ImageError, match=message):
        vio.read_image(p)


def test_truncated_jpeg(tmp_path: Path) -> None:
    p = _write(tmp_path / "t.jpg", np.full((64, 64, 3), 128, np.uint8))
    p.write_bytes(p.read_bytes()[:40])
    with pytest.raises(ImageError, match="not a readable image"):
        vio.read_image(p)


def test_missing_and_directory(tmp_path: Path) -> None:
    with pytest.raises(ImageError, match="no such file"):
        vio.read_image(tmp_path / "missing.png")
    with pytest.raises(ImageError, match="is a directory"):
        vio.read_image(tmp_path)


@pytest.mark.parametrize(
    ("arr", "message"),
    [
        (np.zeros((0, 4, 3), np.uint8), "expected an HxW"),
        (np.zeros((4, 4, 5), np.uint8), "5 channels"),
        (np.zeros((4, 4, 3), np.int32), "unsupported dtype"),
        (np.full((2, 2), np.nan, np.float32), "NaN"),
        (np.zeros((2, 2, 2, 2), np.uint8), "expected an HxW"),
    ],
)
def test_bad_arrays(arr: np.ndarray, message: str) -> None:
    with pytest.raises(ImageError, match=message):
        vio.to_bgr8(arr)


def test_huge_image_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(vio, "MAX_PIXELS", 100)
    with pytest.raises(ImageError, match="megapixels"):
        vio.to_bgr8(np.zeros((11, 10, 3), np.uint8))
