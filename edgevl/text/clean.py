"""Text cleaning that a tokenizer's original implementation runs before splitting.

OpenAI's CLIP tokenizer (and open_clip's) starts with ``basic_clean``: ``ftfy.fix_text`` (mojibake,
bad escapes, odd quotes), HTML entities unescaped twice, surrounding whitespace stripped; the
whitespace collapsing and lower-casing that follow live in the bundle's ``tokenizer.json``. A
bundle asks for this with ``config["text_clean"] = "ftfy_html"``.
"""

from __future__ import annotations

import html
from collections.abc import Callable

import ftfy


def ftfy_html(text: str) -> str:
    """OpenAI CLIP's ``basic_clean``: ``ftfy.fix_text``, ``html.unescape`` twice, ``strip``."""
    return html.unescape(html.unescape(ftfy.fix_text(text))).strip()


CLEANERS: dict[str, Callable[[str], str]] = {"ftfy_html": ftfy_html}
