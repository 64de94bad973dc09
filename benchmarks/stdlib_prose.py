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


def shuffled(seed: int = 0) -> list[str]:
    """:func:`sentences` in a fixed random order."""
    s = sentences()
    return [s[i] for i in np.random.default_rng(seed).permutation(len(s))]
