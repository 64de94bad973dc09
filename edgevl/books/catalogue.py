"""Catalogue loading and the text normalisation every comparison uses.

A catalogue is a CSV with (configurable) columns ``title`` and ``author`` and optional ``tag``
(the call number printed on the spine), ``isbn`` and ``series``. Encodings: UTF-8 with or
without BOM; Latin-1 only when the bytes are not valid UTF-8 (recorded in
:attr:`Catalogue.encoding`, never guessed silently).
"""

from __future__ import annotations

import csv
import functools
import hashlib
import io
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgevl.errors import CatalogueError, InputError
from edgevl.memlimit import memory_budget
from edgevl.safeio import read_bytes_file

_WORD = re.compile(r"[0-9a-z]+")


def normalize_words(text: str) -> list[str]:
    """NFKD, accents stripped, lower-case, ``[0-9a-z]`` words (the dataset README's comparison)."""
    decomposed = unicodedata.normalize("NFKD", text)
    stripped = "".join(c for c in decomposed if not unicodedata.combining(c)).lower()
    return _WORD.findall(stripped)


def normalize(text: str) -> str:
    """:func:`normalize_words` joined by single spaces."""
    return " ".join(normalize_words(text))


@functools.lru_cache(maxsize=1 << 16)
def work_key(title: str, author: str) -> tuple[str, str]:
    """Identity of a work for scoring: normalised title and author (copies share one key); cached,
    since scoring asks for the same works again and again."""
    return normalize(title), normalize(author)


@dataclass(frozen=True)
class Book:
    """One catalogue row."""

    row: int
    title: str
    author: str
    tag: str = ""
    isbn: str = ""
    series: str = ""

    @property
    def key(self) -> tuple[str, str]:
        return work_key(self.title, self.author)

    def to_dict(self) -> dict[str, Any]:
        return {"row": self.row, "title": self.title, "author": self.author, "tag": self.tag,
                "isbn": self.isbn, "series": self.series}


@dataclass(frozen=True)
class Columns:
    """Column names of a catalogue CSV (``tag``, ``isbn``, ``series`` are optional)."""

    title: str = "title"
    author: str = "author"
    tag: str = "tag"
    isbn: str = "isbn"
    series: str = "series"


@dataclass(frozen=True)
class Catalogue:
    """A loaded catalogue: books in file order, the file's sha256 and the encoding it was read in."""

    books: tuple[Book, ...]
    path: Path | None = None
    sha256: str = ""
    encoding: str = "utf-8"
    columns: Columns = field(default_factory=Columns)

    def __len__(self) -> int:
        return len(self.books)

    @classmethod
    def from_records(cls, records: Sequence[dict[str, str]] | Sequence[tuple[str, str, str]]) -> Catalogue:
        """Build an in-memory catalogue from dicts (title/author/tag/...) or (title, author, tag) tuples."""
        books: list[Book] = []
        digest = hashlib.sha256()
        for i, rec in enumerate(records):
            if isinstance(rec, dict):
                b = Book(i, rec.get("title", ""), rec.get("author", ""), rec.get("tag", ""),
                         rec.get("isbn", ""), rec.get("series", ""))
            else:
                fields = tuple(rec)
                b = Book(i, fields[0], fields[1], fields[2] if len(fields) > 2 else "")
            books.append(b)
            digest.update(f"{b.title}\x1f{b.author}\x1f{b.tag}\x1e".encode())
        return cls(tuple(books), None, digest.hexdigest(), "memory")


def decode_bytes(data: bytes, path: Path | str) -> tuple[str, str]:
    """Decode as UTF-8 (BOM optional), else Latin-1 (only when UTF-8 fails); returns (text, encoding)."""
    try:
        return data.decode("utf-8-sig"), ("utf-8-sig" if data.startswith(b"\xef\xbb\xbf") else "utf-8")
    except UnicodeDecodeError as e:
        utf8_error = e
    if b"\x00" in data:
        raise CatalogueError(
            f"{path}: cannot decode ({utf8_error}); expected a UTF-8 or Latin-1 CSV text (found NUL bytes)"
        )
    text = data.decode("latin-1")
    # Latin-1 decodes any byte; C1 control characters mean it is not Latin-1 text either
    if any("\x80" <= c <= "\x9f" for c in text):
        raise CatalogueError(
            f"{path}: not valid UTF-8 ({utf8_error}) and not Latin-1 text (C1 control bytes); "
            "expected a UTF-8 or Latin-1 CSV")
    return text, "latin-1"


def unbalanced_quote(text: str, path: Path | str) -> None:
    """CatalogueError when a quoted field is never closed: a lenient CSV reader would swallow the
    rest of the file into one field (one "book" whose title is every following row)."""
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    start = 1
    try:
        for _ in reader:
            start = reader.line_num + 1
    except csv.Error as e:
        if "unexpected end of data" in str(e):
            raise CatalogueError(f"{path}: unbalanced quote: the quoted field on line {start} is never "
                                 "closed (a '\"' inside a field must be doubled, '\"\"')") from None
        # other strict-mode complaints (a stray quote inside an unquoted field) stay tolerated


#: the least memory reading a catalogue takes, as a multiple of its file size (bytes + text + rows)
MEMORY_FACTOR = 3


def read_csv_rows(path: Path | str, required: Sequence[str]) -> tuple[list[dict[str, str]], str, str]:
    """Read a CSV into dict rows; check the file exists, is non-empty and has the required columns.

    Returns (rows, encoding, sha256 of the bytes).
    """
    p = Path(path)
    if not p.exists():
        raise CatalogueError(f"{p}: no such file; expected a CSV with columns {', '.join(required)}")
    try:
        return _parse_csv(_read_catalogue_bytes(p), p, required)
    except MemoryError:  # what the size check below could not foresee (many tiny rows, say)
        raise CatalogueError(f"{p}: not enough memory to read this catalogue "
                             f"({memory_budget().available / 2**30:.1f} GiB left)") from None


def _read_catalogue_bytes(p: Path) -> bytes:
    """The bytes of a regular file whose size leaves room to parse it: the bytes, the decoded text and
    the rows take at least :data:`MEMORY_FACTOR` times the file size, so a file over a third of the
    memory this process may still use (host, ``ulimit -v``, cgroup) is refused before it is read."""
    try:
        size = p.stat().st_size
    except OSError as e:
        raise CatalogueError(f"{p}: cannot read it ({e.strerror})") from None
    budget = memory_budget()
    if size * MEMORY_FACTOR > budget.available:
        raise CatalogueError(
            f"{p}: a {size / 2**30:.2f} GiB catalogue needs at least {size * MEMORY_FACTOR / 2**30:.1f} GiB "
            f"to read, {budget.available / 2**30:.1f} GiB is left under {budget.limited_by}; split it or "
            "give the process more memory")
    try:
        return read_bytes_file(p, "catalogue", max_bytes=max(size, 1) * 2)
    except InputError as e:
        raise CatalogueError(str(e)) from None


def _parse_csv(data: bytes, p: Path, required: Sequence[str]) -> tuple[list[dict[str, str]], str, str]:
    if not data.strip():
        raise CatalogueError(f"{p}: empty file; expected a CSV with a header row ({', '.join(required)})")
    text, encoding = decode_bytes(data, p)
    unbalanced_quote(text, p)
    try:
        reader = csv.DictReader(io.StringIO(text, newline=""))
        header = [h.strip() for h in (reader.fieldnames or [])]
        dup = sorted({h for h in header if header.count(h) > 1 and h})
        if dup:
            raise CatalogueError(f"{p}: column name(s) {', '.join(dup)} appear more than once in the header; "
                                 "expected each column once")
        missing = [c for c in required if c not in header]
        if missing:
            raise CatalogueError(
                f"{p}: missing column(s) {', '.join(missing)}; found {', '.join(header) or 'no header'} "
                f"(expected {', '.join(required)}; column names are configurable)")
        reader.fieldnames = header
        rows = [{k: (v or "") for k, v in r.items() if isinstance(k, str)} for r in reader]
    except csv.Error as e:
        raise CatalogueError(f"{p}: malformed CSV ({e})") from e
    return rows, encoding, hashlib.sha256(data).hexdigest()


def load_catalogue(path: Path | str, columns: Columns | None = None) -> Catalogue:
    """Load a catalogue CSV. Raises :class:`CatalogueError` for a missing file, an empty file,
    missing title/author columns, an unreadable encoding or a file with no book rows."""
    cols = columns or Columns()
    rows, encoding, digest = read_csv_rows(path, [cols.title, cols.author])
    books: list[Book] = []
    for i, r in enumerate(rows):
        title = r.get(cols.title, "").strip()
        author = r.get(cols.author, "").strip()
        if not title and not author:
            continue  # blank line (keeps row numbering of the file)
        books.append(Book(i, title, author, r.get(cols.tag, "").strip(), r.get(cols.isbn, "").strip(),
                          r.get(cols.series, "").strip()))
    if not books:
        raise CatalogueError(f"{path}: no books (every row has an empty {cols.title} and {cols.author})")
    return Catalogue(tuple(books), Path(path), digest, encoding, cols)
