"""English prose that every Python install carries: sentences from the standard library's docstrings.

Calibration and guard text for int8 text encoders that is available offline, needs no download and
is drawn from a different distribution than the texts a bundle is evaluated on (catalogue titles,
OCR segments). Reproducible for one Python version (the docstrings change between releases): the
modules are a fixed list (pure-Python modules that import everywhere: no tkinter, no platform-only
modules), walked in a fixed order, and sentences are deduplicated by their text.

:func:`mixture` cuts part of the sentences to 1-3 and 4-10 word spans: whole docstring sentences are
10-40 words, while a sentence encoder also meets single words and short phrases (a book title, an
OCR fragment), and int8 errors are largest there (a 3-token input's mean-pooled embedding is one
third [SEP] token, whose activations are BERT's most extreme).

:func:`noisy` turns a share of the lines into noisy variants of themselves (words upper-cased, cut,
joined without a space; characters dropped, doubled or swapped for look-alikes; short random
letter/digit tokens and punctuation runs inserted). This is the usual robustness practice for
calibration data: cover the input space a deployed encoder meets (typed, scanned and OCR'd text), not
only clean prose. Honestly said: the motivation was the OCR evaluation's worst case (OCR debris pushes
layer 3-4 activations beyond the ranges clean prose calibrates), but the noise is generic and made
from the same stdlib sentences; no catalogue or OCR text is used or imitated token by token.
"""

from __future__ import annotations

import importlib
import inspect
import re
from collections.abc import Iterator, Sequence

import numpy as np

MODULES = ("abc", "argparse", "ast", "base64", "bisect", "calendar", "codecs", "collections",
    "configparser", "contextlib", "copy", "csv", "dataclasses", "datetime", "decimal", "difflib",
    "email.message", "email.utils", "enum", "fnmatch", "fractions", "ftplib", "functools", "getopt",
    "gettext", "glob", "gzip", "hashlib", "heapq", "hmac", "html", "html.parser", "http.client",
    "imaplib", "inspect", "io", "ipaddress", "itertools", "json", "locale", "logging", "mailbox",
    "math", "mimetypes", "netrc", "numbers", "operator", "optparse", "os", "pathlib", "pickle",
    "pkgutil", "plistlib", "poplib", "pprint", "queue", "random", "re", "sched", "secrets",
    "selectors", "shelve", "shlex", "shutil", "smtplib", "socketserver", "statistics", "string",
    "struct", "subprocess", "tarfile", "tempfile", "textwrap", "threading", "timeit", "tokenize",
    "traceback", "types", "typing", "unittest", "urllib.parse", "urllib.request", "uuid", "warnings",
    "wave", "weakref", "xml.dom.minidom", "xml.etree.ElementTree", "zipfile")


def docstrings(modules: Sequence[str] = MODULES) -> Iterator[str]:
    """The docstrings of each module, its public classes and functions and their methods, in order."""
    seen: set[str] = set()
    for name in modules:
        try:
            mod = importlib.import_module(name)
        except ImportError:  # a Python built without it: fewer sentences, said by the count
            continue
        objs: list[object] = [mod]
        for k, v in sorted(vars(mod).items()):
            if not k.startswith("_") and (inspect.isclass(v) or inspect.isfunction(v)):
                objs.append(v)
                if inspect.isclass(v):
                    objs += [f for m, f in sorted(vars(v).items())
                             if not m.startswith("_") and inspect.isfunction(f)]
        for o in objs:
            d = inspect.getdoc(o)
            if d and d not in seen:
                seen.add(d)
                yield d


def sentences(modules: Sequence[str] = MODULES, min_words: int = 3, max_words: int = 40) -> list[str]:
    """Docstring paragraphs split into sentences (doctest lines and bullet lists left out), each once."""
    out: list[str] = []
    seen: set[str] = set()
    for d in docstrings(modules):
        for para in re.split(r"\n\s*\n", d):
            if ">>>" in para or para.lstrip().startswith(("-", "*", ":")):
                continue
            for s in re.split(r"(?<=[.!?])\s+(?=[A-Z])", " ".join(para.split())):
                s = s.strip()
                if min_words <= len(s.split()) <= max_words and s not in seen:
                    seen.add(s)
                    out.append(s)
    return out


def mixture(texts: Sequence[str], seed: int, short: float = 0.3, mid: float = 0.2) -> list[str]:
    """Each text kept whole, or (with probability ``short``) cut to a random 1-3 word span, or (``mid``)
    to a 4-10 word span."""
    rng = np.random.default_rng(seed)
    out = []
    for s in texts:
        words = s.split()
        u = rng.random()
        if u >= short + mid:
            out.append(s)
            continue
        k = min(len(words), int(rng.integers(1, 4) if u < short else rng.integers(4, 11)))
        i = int(rng.integers(0, len(words) - k + 1))
        out.append(" ".join(words[i:i + k]))
    return out


#: character look-alikes (print, OCR and typing confusions) used by :func:`noisy`
LOOKALIKES = {"o": "0", "O": "0", "0": "O", "l": "1", "1": "l", "I": "l", "i": "l", "e": "c", "c": "e",
              "S": "5", "s": "5", "5": "S", "B": "8", "8": "B", "a": "o", "n": "h", "h": "n", "u": "v",
              "m": "rn", "g": "q", "Z": "2", "t": "f"}
_ALNUM = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
_PUNCT = ".,:;-_/|()[]'\"*~=+#"


def _token(rng: np.random.Generator) -> str:
    """A short random token: 1-4 letters/digits, sometimes with a dot or parentheses (code-like)."""
    t = "".join(_ALNUM[int(i)] for i in rng.integers(0, len(_ALNUM), int(rng.integers(1, 5))))
    u = rng.random()
    return f"{t}.{int(rng.integers(0, 100))}" if u < 0.15 else f"({t})" if u < 0.25 else t


def _noisy_word(w: str, rng: np.random.Generator) -> str:
    u = rng.random()
    if u < 0.25:
        w = w.upper()
    if rng.random() < 0.15 and len(w) > 3:  # cut at a random place (head or tail kept)
        k = int(rng.integers(1, len(w)))
        w = w[:k] if rng.random() < 0.5 else w[k:]
    out = []
    for ch in w:
        v = rng.random()
        if v < 0.04:
            continue  # dropped
        if v < 0.07:
            out.append(ch + ch)  # doubled
        elif v < 0.13 and ch in LOOKALIKES:
            out.append(LOOKALIKES[ch])
        else:
            out.append(ch)
    return "".join(out) or w[:1]


def noisy(texts: Sequence[str], seed: int, share: float = 0.3) -> list[str]:
    """Each text kept as is, or (with probability ``share``) replaced by a noisy variant of itself.

    A variant: the whole text upper-cased (1 in 4), else words upper-cased one by one; each word
    possibly cut, its characters dropped, doubled or swapped for :data:`LOOKALIKES`; short random
    letter/digit tokens and punctuation runs (1-6 characters) inserted between words; neighbouring
    words joined without a space. Seeded: the same texts and seed give the same lines."""
    rng = np.random.default_rng(seed)
    out = []
    for s in texts:
        if rng.random() >= share:
            out.append(s)
            continue
        caps = rng.random() < 0.25
        words: list[str] = []
        for w in s.split():
            if rng.random() < 0.12:
                words.append(_token(rng))
            if rng.random() < 0.06:
                n = int(rng.integers(1, 7))
                words.append("".join(_PUNCT[int(i)] for i in rng.integers(0, len(_PUNCT), n)))
            w = _noisy_word(w, rng)
            if words and rng.random() < 0.08:
                words[-1] += w  # joined without a space
            else:
                words.append(w)
        t = " ".join(words)
        out.append(t.upper() if caps else t)
    return out


def shuffled(seed: int = 0) -> list[str]:
    """:func:`sentences` in a fixed random order."""
    s = sentences()
    return [s[i] for i in np.random.default_rng(seed).permutation(len(s))]
