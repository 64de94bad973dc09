"""Word spaces for a reading from a recogniser without a space class (SVTRv2's charset is
``string.printable[:94]``: no space), taken from another reading of the same crop.

The cascade re-reads a line with SVTRv2 after PP-OCRv6 read it with spaces: ``"TENIS EN LA ESCUELA"``
becomes ``"TENISENLAESCUELA"``, and the book matcher and catalogue-word counts, which work on
words, lose it. :func:`respace` aligns the two readings (``difflib``, characters compared
case-insensitively, spaces left out) and puts a space into the new reading wherever the old one had
a space between the aligned characters. Characters are compared as their lower-case base letters
(PP-OCRv6 reads ``FÍSICA``, SVTRv2 ``FISICA``).
"""

from __future__ import annotations

import difflib
import unicodedata


def _fold(c: str) -> str:
    """One character compared as its lower-case base letter (``Í`` → ``i``), length kept."""
    base = "".join(x for x in unicodedata.normalize("NFKD", c) if not unicodedata.combining(x))
    return (base[:1] or c).lower()


def respace(text: str, spaced: str) -> str:
    """``text`` with the spaces of ``spaced`` inserted at the aligned places.

    ``text`` keeps its characters (only spaces are added, never two in a row, none at either end);
    a ``text`` that already holds a space, or a ``spaced`` without one, is returned as is.
    """
    if " " in text or " " not in spaced.strip() or not text:
        return text
    ref = spaced.strip()
    chars = [c for c in ref if c != " "]
    # gap[k]: a space stood before the k-th non-space character of ref
    gap = []
    prev_space = False
    for c in ref:
        if c == " ":
            prev_space = True
            continue
        gap.append(prev_space)
        prev_space = False
    a = "".join(_fold(c) for c in chars)
    b = "".join(_fold(c) for c in text)
    cuts: set[int] = set()
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(None, a, b, autojunk=False).get_opcodes():
        for k in range(i1, i2):
            if not gap[k]:
                continue
            if tag == "equal":
                pos = j1 + (k - i1)
            elif tag == "replace":
                pos = j1 + round((k - i1) * (j2 - j1) / max(1, i2 - i1))
            else:  # delete: the characters around the space are missing from text
                pos = j1
            if 0 < pos < len(text):
                cuts.add(pos)
    if not cuts:
        return text
    out = []
    for j, c in enumerate(text):
        if j in cuts:
            out.append(" ")
        out.append(c)
    return "".join(out)
