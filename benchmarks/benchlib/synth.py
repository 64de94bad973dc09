"""Render images whose text is known: horizontal lines, vertical words, a small shelf of spines.

Repository tooling, not runtime: used by tests, ``examples/make_examples.py`` and the int8 benchmarks
(calibration pages); it was ``edgevl.synth`` until issue 20 moved it out of the runtime package.
Pillow is imported lazily. Fonts: DejaVu from Debian's ``fonts-dejavu-core`` when installed,
otherwise Pillow's built-in scalable font.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edgevl.errors import InputError
from edgevl.vision.io import Image

FONT_DIRS = (Path("/usr/share/fonts/truetype/dejavu"), Path("/usr/share/fonts/dejavu"))
DEFAULT_FONT = "DejaVuSans-Bold.ttf"


@dataclass(frozen=True)
class Rendered:
    """A rendered image (HxWx3 uint8 BGR) and, per text item, its text and (x0, y0, x1, y1) box."""

    image: Image
    texts: tuple[str, ...]
    boxes: tuple[tuple[int, int, int, int], ...]


def _pil() -> Any:
    try:
        from PIL import Image as PILImage
        from PIL import ImageDraw, ImageFont
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise InputError("benchlib.synth needs Pillow: pip install pillow (or 'edgevl[dev]')") from e
    return PILImage, ImageDraw, ImageFont


def font_path(name: str = DEFAULT_FONT) -> Path | None:
    """Path of a DejaVu font file, or None when DejaVu is not installed."""
    for d in FONT_DIRS:
        if (d / name).is_file():
            return d / name
    return None


def load_font(size: int, name: str = DEFAULT_FONT) -> Any:
    _, _, image_font = _pil()
    p = font_path(name)
    if p is not None:
        return image_font.truetype(str(p), size)
    return image_font.load_default(size)


def _to_bgr(pil_img: Any) -> Image:
    rgb = np.asarray(pil_img.convert("RGB"), dtype=np.uint8)
    return np.ascontiguousarray(rgb[:, :, ::-1])


def render_word(text: str, *, size: int = 40, fg: tuple[int, int, int] = (20, 20, 20),
                bg: tuple[int, int, int] = (245, 245, 240), pad: int = 12,
                font: str = DEFAULT_FONT) -> Image:
    """One line of text, tightly framed with ``pad`` pixels of background (a word crop)."""
    if not text:
        raise InputError("render_word needs a non-empty text")
    pil_image, image_draw, _ = _pil()
    f = load_font(size, font)
    x0, y0, x1, y1 = image_draw.Draw(pil_image.new("RGB", (1, 1))).textbbox((0, 0), text, font=f)
    img = pil_image.new("RGB", (x1 - x0 + 2 * pad, y1 - y0 + 2 * pad), bg)
    image_draw.Draw(img).text((pad - x0, pad - y0), text, font=f, fill=fg)
    return _to_bgr(img)


def render_vertical(text: str, direction: str = "down", **kw: Any) -> Image:
    """A word written along a vertical line, as on a book spine.

    ``down``: read top to bottom (the letters' tops face right: the line rotated 90° clockwise);
    ``up``: read bottom to top (rotated 90° counter-clockwise).
    """
    if direction not in ("down", "up"):
        raise InputError(f"direction must be 'down' or 'up', got {direction!r}")
    word = render_word(text, **kw)
    return np.ascontiguousarray(np.rot90(word, k=-1 if direction == "down" else 1))


def render_lines(lines: Sequence[str], *, size: int = 36, width: int | None = None,
                 margin: int = 30, spacing: int = 28) -> Rendered:
    """A page of horizontal lines of dark text on a light background, one line per item."""
    if not lines:
        raise InputError("render_lines needs at least one line")
    crops = [render_word(t, size=size, pad=0) for t in lines]
    w = width or max(c.shape[1] for c in crops) + 2 * margin
    h = sum(c.shape[0] for c in crops) + spacing * (len(crops) - 1) + 2 * margin
    page = np.full((h, w, 3), (240, 245, 245), np.uint8)
    boxes = []
    y = margin
    for c in crops:
        ch, cw = c.shape[:2]
        page[y : y + ch, margin : margin + cw] = c
        boxes.append((margin, y, margin + cw, y + ch))
        y += ch + spacing
    return Rendered(page, tuple(lines), tuple(boxes))


_SPINE_COLOURS = ((40, 60, 140), (235, 225, 200), (30, 100, 60), (200, 200, 210), (20, 20, 20),
                  (150, 40, 40), (230, 190, 60))


def render_shelf(titles: Sequence[str], *, size: int = 34, height: int = 520,
                 directions: Sequence[str] | None = None, gap: int = 6) -> Rendered:
    """A row of book spines, each with its title written vertically (alternating up/down by
    default), on a wooden-brown background. Returns the image and each title's spine box."""
    if not titles:
        raise InputError("render_shelf needs at least one title")
    dirs = list(directions) if directions is not None else [
        "down" if i % 2 == 0 else "up" for i in range(len(titles))]
    if len(dirs) != len(titles):
        raise InputError(f"{len(dirs)} directions for {len(titles)} titles")
    spines = []
    for i, (t, d) in enumerate(zip(titles, dirs, strict=True)):
        colour = _SPINE_COLOURS[i % len(_SPINE_COLOURS)]
        fg = (245, 245, 240) if sum(colour) < 400 else (20, 20, 20)
        v = render_vertical(t, d, size=size, fg=fg, bg=colour, pad=14)
        if v.shape[0] > height - 40:
            raise InputError(f"title {t!r} is too long for a {height}px spine")
        spine = np.empty((height, v.shape[1] + 16, 3), np.uint8)
        spine[:] = colour[::-1]  # BGR
        top = (height - v.shape[0]) // 2
        spine[top : top + v.shape[0], 8 : 8 + v.shape[1]] = v
        spines.append(spine)
    wood = (40, 70, 110)  # BGR brown
    w = sum(s.shape[1] for s in spines) + gap * (len(spines) + 1)
    img = np.empty((height + 40, w, 3), np.uint8)
    img[:] = wood
    boxes = []
    x = gap
    for s in spines:
        img[20 : 20 + height, x : x + s.shape[1]] = s
        boxes.append((x, 20, x + s.shape[1], 20 + height))
        x += s.shape[1] + gap
    return Rendered(img, tuple(titles), tuple(boxes))
