"""Reading images into one canonical form: HxWx3 uint8, BGR (OpenCV's order).

Every way an image can be unusable raises :class:`ImageError` with the path; 16-bit, greyscale,
RGBA and palette images are converted, not rejected.
"""

from __future__ import annotations

import stat
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt

from edgevl.errors import ImageError
from edgevl.memlimit import memory_budget
from edgevl.vision.imageheader import PNG_SIGNATURE, HeaderSize, header_size, png_orientation, png_problem

Image = npt.NDArray[np.uint8]
MAX_PIXELS = 200_000_000  # 200 MP: far above any phone photo, below what exhausts a Jetson
MAX_FILE_BYTES = 1 << 30  # 1 GiB: no photo file is this big


def _file_kind(mode: int) -> str:
    for test, name in ((stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a character device"),
                       (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket")):
        if test(mode):
            return name
    return "not a plain file"


def check_decode_size(size: HeaderSize | None, where: str) -> None:
    """ImageError before decoding when the header's pixel count is over :data:`MAX_PIXELS`, or the
    decode's memory estimate (decoded pixels, the BGR copy and the float alpha composite) is over
    the memory this process may still use (the smallest of the host's available memory, the
    address-space limit and the cgroup limit, :mod:`edgevl.memlimit`). ``size``
    None (a format whose header is not parsed) passes: OpenCV's
    own pixel limit and :func:`to_bgr8`'s check still apply after decoding."""
    if size is None:
        return
    pixels = size.width * size.height
    if pixels > MAX_PIXELS:
        raise ImageError(f"{where}: {size.width}x{size.height} is over {MAX_PIXELS / 1e6:g} megapixels "
                         "(edgevl --max-image-mp raises the limit); downscale it first")
    need = size.decode_bytes()
    budget = memory_budget()
    avail = budget.available
    if need > avail:
        raise ImageError(f"{where}: decoding {size.width}x{size.height} needs about {need / 2**30:.1f} GiB, "
                         f"{avail / 2**30:.1f} GiB is left under {budget.limited_by}; downscale it first")


@contextmanager
def _quiet_opencv() -> Iterator[None]:
    """OpenCV's own warning lines (\"PNG input buffer is incomplete\") off while decoding: the
    ImageError that follows is the one line the user sees."""
    log = getattr(getattr(cv2, "utils", None), "logging", None)
    if log is None:  # pragma: no cover - OpenCV builds without the logging module
        yield
        return
    old = log.getLogLevel()
    log.setLogLevel(log.LOG_LEVEL_ERROR)
    try:
        yield
    finally:
        log.setLogLevel(old)


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
            f"{where}: {arr.shape[1]}x{arr.shape[0]} is over {MAX_PIXELS / 1e6:g} megapixels; "
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
    """Read an image file as HxWx3 uint8 BGR; ImageError if missing, empty or not an image.

    Checked before anything is decoded: the path is a regular file (a FIFO would block forever,
    /dev/zero never ends), at most :data:`MAX_FILE_BYTES`; then :func:`decode_image`'s checks.
    """
    p = Path(path)
    try:
        st = p.stat()
    except FileNotFoundError:
        raise ImageError(f"{p}: no such file") from None
    except OSError as e:
        raise ImageError(f"{p}: cannot read ({e.strerror or e})") from None
    if stat.S_ISDIR(st.st_mode):
        raise ImageError(f"{p}: is a directory, expected an image file")
    if not stat.S_ISREG(st.st_mode):
        raise ImageError(f"{p}: not a regular file ({_file_kind(st.st_mode)}), expected an image file")
    if st.st_size > MAX_FILE_BYTES:
        raise ImageError(f"{p}: {st.st_size / 2**20:.0f} MiB is over the {MAX_FILE_BYTES / 2**20:.0f} MiB "
                         "limit for an image file")
    try:
        data = np.fromfile(str(p), dtype=np.uint8)
    except OSError as e:
        raise ImageError(f"{p}: cannot read ({e.strerror or e})") from None
    return decode_image(data, str(p))


def decode_image(encoded: bytes | npt.NDArray[np.uint8], where: str = "image") -> Image:
    """Decode the bytes of an image file (as :func:`read_image` does) to HxWx3 uint8 BGR.

    Before decoding: a PNG's chunks are complete with valid CRCs (so libpng never prints its own
    error line); the pixel count from the header is at most :data:`MAX_PIXELS` and the decode's
    memory estimate fits in the available memory.
    """
    data = np.frombuffer(encoded, dtype=np.uint8) if isinstance(encoded, bytes) else encoded
    p = where
    if data.size == 0:
        raise ImageError(f"{p}: empty file")
    head = data.tobytes()
    if head.startswith(PNG_SIGNATURE):
        problem = png_problem(head)
        if problem:
            raise ImageError(f"{p}: not a readable PNG ({problem})")
    check_decode_size(header_size(head), str(p))
    is_jpeg = head[:2] == b"\xff\xd8"
    orientation = png_orientation(head)
    del head
    with _quiet_opencv():
        # JPEG: 8-bit colour or grey, no alpha; IMREAD_COLOR applies the EXIF orientation as a
        # photo viewer does (phones store portrait photos rotated). PNG/TIFF/...: keep 16-bit
        # depth and alpha so to_bgr8 can convert them properly
        arr = cv2.imdecode(data, cv2.IMREAD_COLOR if is_jpeg else cv2.IMREAD_UNCHANGED)
    if arr is None:
        raise ImageError(f"{p}: not a readable image (corrupt, truncated or unsupported format)")
    try:
        return apply_orientation(to_bgr8(arr, str(p)), orientation)
    except MemoryError:
        raise ImageError(f"{p}: not enough memory to convert the decoded image") from None


def apply_orientation(img: Image, orientation: int | None) -> Image:
    """The image as a viewer shows it, given its EXIF orientation (1..8; None or 1 = as stored).

    OpenCV applies it to JPEGs (``IMREAD_COLOR``) but not with ``IMREAD_UNCHANGED``, which PNGs are
    read with (to keep 16-bit depth and alpha), so a PNG's ``eXIf`` orientation is applied here."""
    if orientation is None or orientation == 1:
        return img
    op = _ORIENT.get(orientation)
    return img if op is None else np.ascontiguousarray(op(img), dtype=np.uint8)


_ORIENT: dict[int, Callable[[Image], npt.NDArray[np.generic]]] = {
    2: lambda a: cv2.flip(a, 1),
    3: lambda a: cv2.rotate(a, cv2.ROTATE_180),
    4: lambda a: cv2.flip(a, 0),
    5: lambda a: cv2.transpose(a),
    6: lambda a: cv2.rotate(a, cv2.ROTATE_90_CLOCKWISE),
    7: lambda a: cv2.rotate(cv2.transpose(a), cv2.ROTATE_180),
    8: lambda a: cv2.rotate(a, cv2.ROTATE_90_COUNTERCLOCKWISE),
}


def as_image(image: Image | Path | str, where: str = "image") -> Image:
    """Accept a path or an array and return the canonical HxWx3 uint8 BGR array."""
    if isinstance(image, (str, Path)):
        return read_image(image)
    return to_bgr8(image, where)
