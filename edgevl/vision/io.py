"""Reading images into one canonical form: HxWx3 uint8, BGR (OpenCV's order).

Every way an image can be unusable raises :class:`ImageError` with the path; 16-bit, greyscale,
RGBA and palette images are converted, not rejected.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt

from edgevl.errors import ImageError

Image = npt.NDArray[np.uint8]
MAX_PIXELS = 200_000_000  # 200 MP: far above any phone photo, below what exhausts a Jetson


def to_bgr8(arr: npt.NDArray[np.generic], where: str = "image") -> Image:
    """Convert a decoded array (grey, grey+alpha, BGR, BGRA; 8/16-bit or float) to HxWx3 uint8 BGR."""
    if not isinstance(arr, np.ndarray):
        raise ImageError(f"{where}: expected a numpy array, got {type(arr).__name__}")
    if arr.ndim not in (2, 3) or arr.size == 0 or min(arr.shape[:2]) < 1:
        raise ImageError(f"{where}: expected an HxW or HxWxC image, got shape {arr.shape}")
    if arr.ndim == 3 and arr.shape[2] not in (1, 2, 3, 4):
        raise ImageError(f"{where}: {arr.shape[2]} channels; expected 1, 3 or 4")
    if arr.shape[0] * arr.shape[1] > MAX_PIXELS:
        raise ImageError(
            f"{where}: {arr.shape[1]}x{arr.shape[0]} is over {MAX_PIXELS // 1_000_000} megapixels; "
            "downscale it first"
        )
    a8 = _to_uint8(arr, where)
    if a8.ndim == 2 or a8.shape[2] == 1:
        grey: Image = a8.reshape(a8.shape[:2])
        return np.ascontiguousarray(cv2.cvtColor(grey, cv2.COLOR_GRAY2BGR), dtype=np.uint8)
    if a8.shape[2] == 2:  # grey + alpha: composite on white
        al = a8[..., 1].astype(np.float32) / 255.0
        g = a8[..., 0].astype(np.float32) * al + 255.0 * (1.0 - al)
        g8 = g.round().astype(np.uint8)
        return np.ascontiguousarray(cv2.cvtColor(g8, cv2.COLOR_GRAY2BGR), dtype=np.uint8)
    if a8.shape[2] == 4:  # BGRA: composite on white, as a viewer shows it
        al3 = a8[..., 3:4].astype(np.float32) / 255.0
        bgr = a8[..., :3].astype(np.float32) * al3 + 255.0 * (1.0 - al3)
        return np.ascontiguousarray(bgr.round().astype(np.uint8))
    return np.ascontiguousarray(a8)


def _to_uint8(arr: npt.NDArray[np.generic], where: str) -> Image:
    """Scale 16-bit and float pixel values to uint8 (floats in [0, 1] or [0, 255])."""
    if arr.dtype == np.uint8:
        return arr.astype(np.uint8, copy=False)
    if arr.dtype == np.uint16:
        return (arr.astype(np.uint32) * 255 // 65535).astype(np.uint8)
    if arr.dtype in (np.float32, np.float64):
        f = arr.astype(np.float64)
        if not np.isfinite(f).all():
            raise ImageError(f"{where}: float image holds NaN or infinity")
        scale = 255.0 if float(f.max(initial=0.0)) <= 1.0 else 1.0
        return np.clip(f * scale, 0, 255).round().astype(np.uint8)
    raise ImageError(f"{where}: unsupported dtype {arr.dtype}; expected uint8, uint16 or float")


def read_image(path: Path | str) -> Image:
    """Read an image file as HxWx3 uint8 BGR; ImageError if missing, empty or not an image."""
    p = Path(path)
    if not p.exists():
        raise ImageError(f"{p}: no such file")
    if p.is_dir():
        raise ImageError(f"{p}: is a directory, expected an image file")
    return decode_image(np.fromfile(str(p), dtype=np.uint8), str(p))


def decode_image(encoded: bytes | npt.NDArray[np.uint8], where: str = "image") -> Image:
    """Decode the bytes of an image file (as :func:`read_image` does) to HxWx3 uint8 BGR."""
    data = np.frombuffer(encoded, dtype=np.uint8) if isinstance(encoded, bytes) else encoded
    p = where
    if data.size == 0:
        raise ImageError(f"{p}: empty file")
    if data[:2].tobytes() == b"\xff\xd8":
        # JPEG: 8-bit colour or grey, no alpha; IMREAD_COLOR applies the EXIF orientation as a
        # photo viewer does (phones store portrait photos rotated)
        arr = cv2.imdecode(data, cv2.IMREAD_COLOR)
    else:
        # PNG/TIFF/...: keep 16-bit depth and alpha so to_bgr8 can convert them properly
        arr = cv2.imdecode(data, cv2.IMREAD_UNCHANGED)
    if arr is None:
        raise ImageError(f"{p}: not a readable image (corrupt, truncated or unsupported format)")
    return to_bgr8(arr, str(p))


def as_image(image: Image | Path | str, where: str = "image") -> Image:
    """Accept a path or an array and return the canonical HxWx3 uint8 BGR array."""
    if isinstance(image, (str, Path)):
        return read_image(image)
    return to_bgr8(image, where)
