"""Image sizes from file headers, read before decoding (PNG, JPEG, BMP, WebP), and a PNG chunk check.

Pure functions over bytes: they never decode pixels, so a 100k x 100k image or a truncated PNG is
refused before OpenCV (and libpng, which prints its own stderr line) sees it.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_PNG_CHANNELS = {0: 1, 2: 3, 3: 3, 4: 2, 6: 4}  # colour type → decoded channels (palette → BGR)
# JPEG start-of-frame markers (baseline, progressive, lossless...; not DHT C4, JPG C8, DAC CC)
_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}


@dataclass(frozen=True)
class HeaderSize:
    """What the header says the decoded image will be."""

    width: int
    height: int
    channels: int = 3
    bytes_per_sample: int = 1

    def decode_bytes(self) -> int:
        """Memory estimate of reading it: the decoded array, the 8-bit BGR result and, with an
        alpha channel, the float32 composite (4 planes of 4 bytes)."""
        px = self.width * self.height
        alpha = 16 if self.channels in (2, 4) else 0
        return px * (self.channels * self.bytes_per_sample + 3 + alpha)


def header_size(data: bytes) -> HeaderSize | None:
    """The size the header declares, or None for a format not parsed here (or a header cut short)."""
    try:
        if data.startswith(PNG_SIGNATURE):
            return _png(data)
        if data[:2] == b"\xff\xd8":
            return _jpeg(data)
        if data[:2] == b"BM" and len(data) >= 30:
            w, h = struct.unpack_from("<ii", data, 18)
            bits = struct.unpack_from("<H", data, 28)[0]
            return HeaderSize(abs(w), abs(h), 4 if bits == 32 else 3)
        if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
            return _webp(data)
    except struct.error:
        return None
    return None


def _png(data: bytes) -> HeaderSize | None:
    if data[12:16] != b"IHDR":
        return None
    w, h, depth, colour = struct.unpack_from(">IIBB", data, 16)
    return HeaderSize(w, h, _PNG_CHANNELS.get(colour, 4), 2 if depth == 16 else 1)


def _jpeg(data: bytes) -> HeaderSize | None:
    i = 2
    n = len(data)
    while i + 4 <= n:
        if data[i] != 0xFF:
            return None
        marker = data[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:  # markers without a length
            i += 2
            continue
        (length,) = struct.unpack_from(">H", data, i + 2)
        if marker in _SOF:
            h, w, comps = struct.unpack_from(">HHB", data, i + 5)
            return HeaderSize(w, h, 3 if comps >= 3 else 1)
        if marker == 0xDA or length < 2:  # start of scan before any frame header: malformed
            return None
        i += 2 + length
    return None


def _webp(data: bytes) -> HeaderSize | None:
    kind = data[12:16]
    if kind == b"VP8X":
        w = 1 + int.from_bytes(data[24:27], "little")
        h = 1 + int.from_bytes(data[27:30], "little")
        return HeaderSize(w, h, 4)
    if kind == b"VP8L":
        (bits,) = struct.unpack_from("<I", data, 21)
        return HeaderSize(1 + (bits & 0x3FFF), 1 + ((bits >> 14) & 0x3FFF), 4)
    if kind == b"VP8 ":
        w, h = struct.unpack_from("<HH", data, 26)
        return HeaderSize(w & 0x3FFF, h & 0x3FFF, 3)
    return None


def png_problem(data: bytes) -> str | None:
    """Why a PNG's chunk structure is broken (cut short, a bad CRC, no IHDR or IEND), or None."""
    i = len(PNG_SIGNATURE)
    n = len(data)
    first = True
    while True:
        if i + 12 > n:
            return "truncated: the file ends inside a chunk header, before IEND"
        length, kind = struct.unpack_from(">I4s", data, i)
        if first and kind != b"IHDR":
            return "first chunk is not IHDR"
        first = False
        end = i + 8 + length
        if end + 4 > n:
            return f"truncated: chunk {kind.decode('latin-1')!r} runs past the end of the file"
        (crc,) = struct.unpack_from(">I", data, end)
        if zlib.crc32(data[i + 4 : end]) != crc:
            return f"chunk {kind.decode('latin-1')!r} fails its CRC check (corrupt file)"
        if kind == b"IEND":
            return None
        i = end + 4


def _tiff_orientation(tiff: bytes) -> int | None:
    """The Orientation tag (0x0112) of IFD0 of an EXIF (TIFF-structured) block, or None."""
    if len(tiff) < 8:
        return None
    order = tiff[:2]
    if order == b"II":
        e = "<"
    elif order == b"MM":
        e = ">"
    else:
        return None
    magic, ifd = struct.unpack_from(e + "HI", tiff, 2)
    if magic != 42 or ifd + 2 > len(tiff):
        return None
    (count,) = struct.unpack_from(e + "H", tiff, ifd)
    for k in range(min(count, 512)):
        at = ifd + 2 + 12 * k
        if at + 12 > len(tiff):
            return None
        tag, typ, n = struct.unpack_from(e + "HHI", tiff, at)
        if tag == 0x0112 and typ == 3 and n >= 1:  # SHORT
            (value,) = struct.unpack_from(e + "H", tiff, at + 8)
            return value if 1 <= value <= 8 else None
    return None


def png_orientation(data: bytes) -> int | None:
    """The EXIF orientation (1..8) of a PNG's ``eXIf`` chunk, or None when it has none.

    Only chunks before the image data count (the PNG extension requires eXIf before IDAT);
    the chunk structure is assumed checked by :func:`png_problem`."""
    if not data.startswith(PNG_SIGNATURE):
        return None
    i = len(PNG_SIGNATURE)
    n = len(data)
    while i + 8 <= n:
        length, kind = struct.unpack_from(">I4s", data, i)
        start = i + 8
        if kind in (b"IDAT", b"IEND") or start + length > n:
            return None
        if kind == b"eXIf":
            return _tiff_orientation(data[start : start + length])
        i = start + length + 4
    return None
