"""Pictures a person can read: OCR lines and book spines drawn on a photo.

One module for ``edgevl ocr --draw`` and ``edgevl match-books --draw``:

* **bounded size**: the photo is downscaled to :data:`DEFAULT_MAX_SIDE` pixels on its longer side
  before anything is drawn (so lines and letters are drawn at the output's resolution, crisp), and
  :func:`encode_picture` writes JPEG at quality :data:`JPEG_QUALITY` or PNG as the file name says:
  a 4624x3468 phone photo becomes a picture of a few hundred KB (JPEG) to a few MB (PNG);
* **Unicode labels**: text is set with Pillow in Noto Sans (the ``fontpkg-noto-sans`` wheel, a
  runtime dependency: Latin, Greek, Cyrillic, Vietnamese), so "À la recherche" keeps its accent;
  never a font fetched at run time. Without the wheel, Pillow's own font is used (no accents);
* **no overlaps**: each label is placed where it overlaps no label placed before it (above the
  box, below, inside...). A line whose text finds no such place gets a number tag and is listed,
  with its number, in a legend panel beside the photo (:func:`layout_labels` is the pure part).

Images are numpy HxWx3 uint8 BGR (OpenCV's order) in and out.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np
import numpy.typing as npt

from edgevl.errors import ImageError

if TYPE_CHECKING:
    from PIL import ImageDraw, ImageFont

Image = npt.NDArray[np.uint8]
#: longer side of a drawing by default (match-books used it first)
DEFAULT_MAX_SIDE = 1600
#: JPEG quality of a drawing
JPEG_QUALITY = 88
#: legend rows listed at most (then "… and N more")
MAX_LEGEND_ROWS = 120
GREEN = (40, 170, 40)
RED = (210, 40, 40)
BLUE = (30, 90, 200)
INK = (20, 20, 20)
PAPER = (255, 255, 255)


@dataclass(frozen=True)
class Rect:
    """An axis-aligned box in pixels, ``x0 <= x1``, ``y0 <= y1`` (x1/y1 exclusive)."""

    x0: int
    y0: int
    x1: int
    y1: int

    def overlaps(self, o: Rect) -> bool:
        return self.x0 < o.x1 and o.x0 < self.x1 and self.y0 < o.y1 and o.y0 < self.y1

    def inside(self, width: int, height: int) -> bool:
        return self.x0 >= 0 and self.y0 >= 0 and self.x1 <= width and self.y1 <= height


@dataclass(frozen=True)
class Placement:
    """Where one label went: ``rect`` (None when it found no free place) and its legend number (0 = none)."""

    rect: Rect | None
    number: int = 0


# ---------------------------------------------------------------- fonts


@functools.lru_cache(maxsize=16)
def label_font(px: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    """Noto Sans at ``px`` pixels from the ``fontpkg-noto-sans`` wheel; Pillow's default font (no
    accents) when that wheel is missing."""
    from PIL import ImageFont

    path = noto_sans_path()
    if path is not None:
        try:
            return ImageFont.truetype(path, px)
        except OSError:
            pass
    return ImageFont.load_default(size=px)


def noto_sans_path() -> str | None:
    """The Noto Sans font file inside the installed ``fontpkg_noto_sans`` package, or None."""
    import importlib.util
    from pathlib import Path

    spec = importlib.util.find_spec("fontpkg_noto_sans")
    if spec is None or not spec.submodule_search_locations:
        return None
    for folder in spec.submodule_search_locations:
        p = Path(folder) / "files" / "NotoSans[wdth,wght].ttf"
        if p.is_file():
            return str(p)
    return None


def text_size(font: Any, text: str) -> tuple[int, int]:
    """(width, height) of ``text`` set in ``font`` (its full line height, so labels line up)."""
    x0, _, x1, _ = font.getbbox(text)
    ascent, descent = font.getmetrics() if hasattr(font, "getmetrics") else (font.size, 0)
    return max(1, math.ceil(x1 - min(x0, 0))), max(1, int(ascent + descent))


# ---------------------------------------------------------------- layout (pure)


def _candidates(box: Rect, w: int, h: int, gap: int) -> list[Rect]:
    """Label positions around ``box``, best first: above it, below it, inside its top, to its right,
    to its left; each left-aligned and right-aligned."""
    out = []
    for y in (box.y0 - h - gap, box.y1 + gap, box.y0 + gap):
        for x in (box.x0, box.x1 - w):
            out.append(Rect(x, y, x + w, y + h))
    mid = (box.y0 + box.y1) // 2 - h // 2
    out.append(Rect(box.x1 + gap, mid, box.x1 + gap + w, mid + h))
    out.append(Rect(box.x0 - gap - w, mid, box.x0 - gap, mid + h))
    return out


def layout_labels(boxes: Sequence[Rect], sizes: Sequence[tuple[int, int]], canvas: tuple[int, int],
                  *, gap: int = 2, reserved: Iterable[Rect] = ()) -> list[Placement]:
    """Place one label of ``sizes[i]`` (w, h) next to each of ``boxes`` inside ``canvas`` (w, h)
    so that no two placed labels overlap (nor any of ``reserved``). Greedy, in the given order
    (reading order: the first lines get the best places). A label with no free place gets
    ``rect`` None and a legend number (1, 2, … in order)."""
    W, H = canvas
    placed: list[Rect] = list(reserved)
    out: list[Placement] = []
    number = 0
    for box, (w, h) in zip(boxes, sizes, strict=True):
        spot = None
        if w <= W and h <= H:
            for r in _candidates(box, w, h, gap):
                if r.inside(W, H) and not any(r.overlaps(p) for p in placed):
                    spot = r
                    break
        if spot is None:
            number += 1
            out.append(Placement(None, number))
        else:
            placed.append(spot)
            out.append(Placement(spot))
    return out


def place_tags(boxes: Sequence[Rect], sizes: Sequence[tuple[int, int]], canvas: tuple[int, int],
               taken: Sequence[Rect]) -> list[Rect]:
    """Small number tags for ``boxes``: each at a free spot near its box (as :func:`layout_labels`,
    then anywhere on a spiral around the box's corner); a tag that finds none sits on the box's
    top-left corner."""
    W, H = canvas
    placed = list(taken)
    out = []
    for box, (w, h) in zip(boxes, sizes, strict=True):
        spots = [*_candidates(box, w, h, 1), Rect(box.x0, box.y0, box.x0 + w, box.y0 + h)]
        for k in range(1, 25):
            for dx, dy in ((0, -1), (1, 0), (0, 1), (-1, 0), (1, -1), (1, 1), (-1, 1), (-1, -1)):
                x, y = box.x0 + dx * k * w // 2, box.y0 + dy * k * h // 2
                spots.append(Rect(x, y, x + w, y + h))
        spot = next((r for r in spots if r.inside(W, H) and not any(r.overlaps(p) for p in placed)), None)
        if spot is None:
            x, y = min(max(box.x0, 0), max(W - w, 0)), min(max(box.y0, 0), max(H - h, 0))
            spot = Rect(x, y, x + w, y + h)
        placed.append(spot)
        out.append(spot)
    return out


# ---------------------------------------------------------------- rendering


def fit(image: Image, max_side: int) -> tuple[Image, float]:
    """``image`` downscaled (area interpolation) so its longer side is at most ``max_side``
    (0 = as it is), and the scale applied."""
    h, w = image.shape[:2]
    if max_side <= 0 or max(h, w) <= max_side:
        return np.ascontiguousarray(image), 1.0
    f = max_side / max(h, w)
    out = cv2.resize(image, (max(1, round(w * f)), max(1, round(h * f))), interpolation=cv2.INTER_AREA)
    return np.asarray(out, dtype=np.uint8), f


def _font_px(width: int, height: int) -> int:
    return int(min(28, max(13, round(max(width, height) / 75))))


def _to_pil(image: Image) -> Any:
    from PIL import Image as PILImage

    return PILImage.fromarray(np.ascontiguousarray(image[..., ::-1]))


def _to_bgr(pil: Any) -> Image:
    return np.ascontiguousarray(np.asarray(pil.convert("RGB"))[..., ::-1], dtype=np.uint8)


def _canvas(image: Image, max_side: int) -> tuple[Any, Any, float, tuple[int, int], int, Any]:
    """The photo bounded to ``max_side`` as a Pillow picture to draw on: (picture, its ImageDraw,
    the scale from photo to picture pixels, (width, height), the label font's pixel size, the font)."""
    from PIL import ImageDraw

    small, f = fit(np.asarray(image, dtype=np.uint8), max_side)
    H, W = small.shape[:2]
    pil = _to_pil(small)
    px = _font_px(W, H)
    return pil, ImageDraw.Draw(pil), f, (W, H), px, label_font(px)


def _bbox(pts: npt.NDArray[np.float64]) -> Rect:
    return Rect(math.floor(pts[:, 0].min()), math.floor(pts[:, 1].min()),
                math.ceil(pts[:, 0].max()), math.ceil(pts[:, 1].max()))


def _label(draw: ImageDraw.ImageDraw, r: Rect, text: str, font: Any, ink: tuple[int, int, int],
           paper: tuple[int, int, int] = PAPER, pad: int = 0) -> None:
    draw.rectangle((r.x0, r.y0, r.x1 - 1, r.y1 - 1), fill=paper)
    draw.text((r.x0 + pad, r.y0), text, font=font, fill=ink)


@dataclass(frozen=True)
class LegendRow:
    """One legend line: the number shown on the photo, its colour and its text."""

    number: int
    colour: tuple[int, int, int]
    text: str


def _legend_panel(rows: Sequence[LegendRow], width: int, font: Any, title: str) -> Any:
    """A white panel ``width`` wide listing ``rows`` (one per line, cut with '…' to fit)."""
    from PIL import Image as PILImage
    from PIL import ImageDraw

    shown = list(rows[:MAX_LEGEND_ROWS])
    more = len(rows) - len(shown)
    _, line_h = text_size(font, "Ag")
    step = line_h + 4
    n_lines = 1 + len(shown) + (1 if more else 0)
    panel = PILImage.new("RGB", (max(width, 1), 8 + step * n_lines), PAPER)
    d = ImageDraw.Draw(panel)
    d.text((8, 4), title, font=font, fill=INK)
    y = 4 + step
    for row in shown:
        tag = f"{row.number}"
        tw, _ = text_size(font, tag)
        d.rectangle((8, y, 8 + tw + 8, y + line_h), fill=row.colour)
        d.text((12, y), tag, font=font, fill=PAPER)
        d.text((8 + tw + 16, y), _cut(row.text, font, width - tw - 32), font=font, fill=INK)
        y += step
    if more:
        d.text((8, y), f"… and {more} more", font=font, fill=INK)
    return panel


def _cut(text: str, font: Any, room: int) -> str:
    if text_size(font, text)[0] <= room:
        return text
    lo, hi = 0, len(text)
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if text_size(font, text[:mid] + "…")[0] <= room:
            lo = mid
        else:
            hi = mid - 1
    return text[:lo] + "…"


def _with_legend(pil: Any, panel: Any | None, max_side: int) -> Image:
    """The photo with the legend panel below it, scaled down (as a whole) to ``max_side``."""
    from PIL import Image as PILImage

    if panel is None:
        out = _to_bgr(pil)
    else:
        both = PILImage.new("RGB", (pil.width, pil.height + panel.height), PAPER)
        both.paste(pil, (0, 0))
        both.paste(panel, (0, pil.height))
        out = _to_bgr(both)
    return fit(out, max_side)[0]


def draw_lines(image: Image, lines: Sequence[Any], max_side: int = DEFAULT_MAX_SIDE) -> Image:
    """The photo (longer side at most ``max_side``; 0 = full size) with each OCR line's quad
    outlined and its text written next to it without overlapping another label; lines whose text
    finds no free place are numbered and listed in a legend below the photo.

    ``lines``: objects with ``quad`` (4 x 2 points in the photo's pixels) and ``text``."""
    pil, draw, f, (W, H), px, font = _canvas(image, max_side)
    thick = max(1, round(px / 9))
    quads = [np.asarray(ln.quad, dtype=np.float64).reshape(-1, 2) * f for ln in lines]
    texts = [str(ln.text) for ln in lines]
    for q in quads:
        draw.polygon([(float(x), float(y)) for x, y in q], outline=GREEN, width=thick)
    boxes = [_bbox(q) for q in quads]
    sizes = [(text_size(font, t)[0] + 4, text_size(font, t)[1]) for t in texts]
    placements = layout_labels(boxes, sizes, (W, H))
    taken = [p.rect for p in placements if p.rect is not None]
    for p, t in zip(placements, texts, strict=True):
        if p.rect is not None:
            _label(draw, p.rect, t, font, BLUE, pad=2)
    missing = [(i, p.number) for i, p in enumerate(placements) if p.rect is None]
    panel = None
    if missing:
        tag_font = label_font(max(11, px * 3 // 4))
        tag_sizes = [(text_size(tag_font, str(n))[0] + 6, text_size(tag_font, str(n))[1]) for _, n in missing]
        tags = place_tags([boxes[i] for i, _ in missing], tag_sizes, (W, H), taken)
        for r, (_, n) in zip(tags, missing, strict=True):
            _label(draw, r, str(n), tag_font, PAPER, BLUE, pad=3)
        rows = [LegendRow(n, BLUE, texts[i]) for i, n in missing]
        panel = _legend_panel(rows, W, font, "Lines whose text did not fit on the photo:")
    return _with_legend(pil, panel, max_side)


def draw_spines(image: Image, spines: Sequence[Any], max_side: int = DEFAULT_MAX_SIDE, *,
                rows: Sequence[Any] = (), signs: Sequence[Any] = ()) -> Image:
    """The shelf photo with each spine outlined (green: matched, red: rejected), numbered, its
    matched title written along it, and a legend below: per spine, the matched title and author
    with the probability that the match is right, or for a rejected spine what OCR read and how
    close its best candidate came. Shelf rows are shown as blue lines at their top and bottom, and
    shelf signs (never matched) outlined in blue, numbered after the spines, with their text in the
    legend.

    ``spines``: objects with ``polygon`` (points), ``index``, ``text`` (OCR) and ``match`` (with
    ``matched``, ``title``, ``author``, ``score``); ``rows``: objects with ``y0``/``y1`` (photo
    pixels); ``signs``: objects with ``polygon`` and ``text``."""
    pil, draw, f, (W, H), px, font = _canvas(image, max_side)
    thick = max(2, round(px / 8))
    for row in rows:  # the band between two boards: a thin line at each edge
        for y in (row.y0 * f, row.y1 * f):
            draw.line([(0.0, float(y)), (float(W - 1), float(y))], fill=BLUE, width=max(1, thick // 2))
    sign_polys = [np.asarray(g.polygon, dtype=np.float64).reshape(-1, 2) * f for g in signs]
    for poly in sign_polys:
        draw.polygon([(float(x), float(y)) for x, y in poly], outline=BLUE, width=thick)
    polys = [np.asarray(s.polygon, dtype=np.float64).reshape(-1, 2) * f for s in spines]
    for s, poly in zip(spines, polys, strict=True):
        colour = GREEN if s.match.matched else RED
        draw.polygon([(float(x), float(y)) for x, y in poly], outline=colour, width=thick)
    tag_font = label_font(max(11, px * 3 // 4))
    numbers = [int(getattr(s, "index", i)) + 1 for i, s in enumerate(spines)]
    first_sign = max(numbers, default=0) + 1
    sign_numbers = list(range(first_sign, first_sign + len(signs)))
    tag_sizes = [(text_size(tag_font, str(n))[0] + 6, text_size(tag_font, str(n))[1])
                 for n in numbers + sign_numbers]
    all_tags = place_tags([_bbox(p) for p in polys + sign_polys], tag_sizes, (W, H), [])
    tags, sign_tags = all_tags[:len(polys)], all_tags[len(polys):]
    for r, n in zip(sign_tags, sign_numbers, strict=True):
        _label(draw, r, str(n), tag_font, PAPER, BLUE, pad=3)
    for s, poly in zip(spines, polys, strict=True):
        if s.match.matched:
            _write_along(pil, poly, s.match.title.split(" : ")[0][:60], font)
    for s, r, n in zip(spines, tags, numbers, strict=True):
        _label(draw, r, str(n), tag_font, PAPER, GREEN if s.match.matched else RED, pad=3)
    legend = [LegendRow(n, GREEN if s.match.matched else RED, spine_legend(s.match, getattr(s, "text", "")))
              for s, n in zip(spines, numbers, strict=True)]
    legend += [LegendRow(n, BLUE, f"shelf sign (never matched): “{g.text[:80]}”")
               for g, n in zip(signs, sign_numbers, strict=True)]
    panel = _legend_panel(legend, W, font, "Spines (green: matched, red: rejected; p = chance the match is "
                          "right; blue: shelf rows and signs):") if legend else None
    return _with_legend(pil, panel, max_side)


def spine_legend(match: Any, ocr: str) -> str:
    """One legend line of a spine's match."""
    if match.matched:
        author = f" — {match.author}" if match.author else ""
        return f"{match.title}{author}  (p {match.score:.2f})"
    read = f"“{ocr[:60]}”" if ocr else "no text read"
    return f"rejected: {read}; best candidate p {match.score:.2f}"


def _write_along(pil: Any, poly: npt.NDArray[np.float64], text: str, font: Any) -> None:
    """Write ``text`` on a white label along the polygon's long side, centred on it (upright spines:
    bottom to top, as most spines are printed)."""
    from PIL import Image as PILImage
    from PIL import ImageDraw

    if not text:
        return
    (cx, cy), (rw, rh), _ = cv2.minAreaRect(poly.astype(np.float32))
    length = max(rw, rh)
    tw, th = text_size(font, text)
    label = PILImage.new("RGBA", (tw + 6, th + 2), (255, 255, 255, 200))
    ImageDraw.Draw(label).text((3, 1), _cut(text, font, max(int(length), 8)), font=font, fill=(0, 0, 0, 255))
    if np.ptp(poly[:, 1]) > np.ptp(poly[:, 0]):
        label = label.transpose(PILImage.Transpose.ROTATE_90)
    x0, y0 = round(cx - label.width / 2), round(cy - label.height / 2)
    pil.paste(label, (x0, y0), label)


def encode_picture(image: Image, suffix: str) -> bytes:
    """The bytes of a drawing in the format the file name's ``suffix`` says: ``.jpg``/``.jpeg``
    (quality :data:`JPEG_QUALITY`), ``.png``, ``.webp`` (quality :data:`JPEG_QUALITY`) or ``.bmp``."""
    ext = suffix.lower()
    params: list[int]
    if ext in (".jpg", ".jpeg"):
        params = [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY]
    elif ext == ".webp":
        params = [cv2.IMWRITE_WEBP_QUALITY, JPEG_QUALITY]
    elif ext == ".png":
        params = [cv2.IMWRITE_PNG_COMPRESSION, 6]
    elif ext == ".bmp":
        params = []
    else:
        raise ImageError(f"a drawing is written as .png, .jpg, .webp or .bmp, "
                         f"not {suffix or 'no extension'!r}")
    ok, buf = cv2.imencode(ext, image, params)
    if not ok:
        raise ImageError(f"cannot encode the drawing as {ext}")
    return bytes(buf.tobytes())


def write_picture(image: Image, path: Any, inputs: Iterable[Any] = (), what: str = "drawing") -> None:
    """Encode ``image`` as its file name says and write it atomically (never over an input)."""
    from pathlib import Path

    from edgevl.safeio import write_bytes_atomic

    p = Path(path)
    write_bytes_atomic(p, encode_picture(image, p.suffix), what, inputs=inputs)


__all__ = ["DEFAULT_MAX_SIDE", "JPEG_QUALITY", "LegendRow", "Placement", "Rect", "draw_lines", "draw_spines",
           "encode_picture", "fit", "label_font", "layout_labels", "noto_sans_path", "place_tags",
           "spine_legend", "text_size", "write_picture"]
