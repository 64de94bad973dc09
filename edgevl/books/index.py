"""The catalogue index: unique works, their TF-IDF char n-gram vectors and the matcher calibration.

Built once and saved as ``<cache>/<sha256>/index.npz`` + ``meta.json`` (cache folder keyed by the
catalogue's digest), so a later run with the same catalogue loads in a fraction of a second.
Copies and volumes sharing a normalised (title, author) are one *work* with a multiplicity, so the
per-image assignment can still place several copies on one shelf.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

from edgevl.books import ngrams
from edgevl.books.calibration import Calibration
from edgevl.books.catalogue import Catalogue, normalize, work_key
from edgevl.errors import CalibrationError, CatalogueError
from edgevl.paths import edgevl_home

IntArray = npt.NDArray[np.int64]
INDEX_VERSION = 2  # 2: series column, calibration as {feature: weight}
DEFAULT_N = 4


def default_cache_dir() -> Path:
    """``$EDGEVL_HOME/books`` (:func:`edgevl.paths.edgevl_home`); the deprecated ``EDGEVL_CACHE``
    still names the folder above ``books/`` when ``EDGEVL_HOME`` is unset."""
    legacy = os.environ.get("EDGEVL_CACHE")
    if legacy and not os.environ.get("EDGEVL_HOME"):
        return Path(legacy).expanduser() / "books"
    return edgevl_home() / "books"


def main_title(title: str) -> str:
    """The title before its subtitle (``Title : subtitle`` in library catalogues)."""
    return title.split(" : ")[0].split(" / ")[0]


def surname(author: str) -> str:
    """Surname part of ``Surname, Given, dates``."""
    return author.split(",")[0]


class LazyNorm:
    """``normalize(extract(source[i]))`` computed on first use and cached: a 2M-entry catalogue only
    ever normalises the few works that become candidates."""

    def __init__(self, source: list[str], extract: Callable[[str], str] | None = None) -> None:
        self._source = source
        self._extract = extract
        self._cache: dict[int, str] = {}

    def __len__(self) -> int:
        return len(self._source)

    def __getitem__(self, i: int) -> str:
        got = self._cache.get(i)
        if got is None:
            raw = self._source[i]
            got = normalize(self._extract(raw) if self._extract else raw)
            self._cache[i] = got
        return got


@dataclass
class CatalogueIndex:
    """Works (unique normalised title+author) of a catalogue with their n-gram vectors."""

    n: int
    idf: npt.NDArray[np.float32]
    vectors: sp.csr_matrix  # works x 37**n, L2-normalised TF-IDF
    row_offsets: IntArray  # work w's copies are rows[row_offsets[w]:row_offsets[w + 1]]
    rows: IntArray  # catalogue positions, grouped by work
    titles: list[str]  # display (first copy)
    authors: list[str]
    tags: list[str]
    series: list[str]  # the catalogue's series field ("Andanzas   167"), "" where absent
    norm_main_title: LazyNorm
    norm_title: LazyNorm
    norm_surname: LazyNorm
    norm_author: LazyNorm
    norm_tag: LazyNorm
    norm_series: LazyNorm
    catalogue_sha256: str
    calibration: Calibration | None = None
    build_seconds: float = 0.0
    _multiplicity: npt.NDArray[np.int64] | None = field(default=None, repr=False)
    _words: dict[int, tuple[list[str], list[str], list[str]]] = field(default_factory=dict, repr=False)
    _tag_set: frozenset[str] | None = field(default=None, repr=False)
    _postings: sp.csr_matrix | None = field(default=None, repr=False)
    _df: npt.NDArray[np.int64] | None = field(default=None, repr=False)
    _vocab: dict[str, int] = field(default_factory=dict, repr=False)
    _vocab_list: list[str] = field(default_factory=list, repr=False)
    _word_ids: dict[int, tuple[IntArray, IntArray, IntArray]] = field(default_factory=dict, repr=False)

    def __len__(self) -> int:
        return len(self.titles)

    @property
    def multiplicity(self) -> npt.NDArray[np.int64]:
        if self._multiplicity is None:
            self._multiplicity = np.diff(self.row_offsets).astype(np.int64)
        return self._multiplicity

    def rows_of(self, work: int) -> tuple[int, ...]:
        """Catalogue positions of a work's copies."""
        return tuple(self.rows[self.row_offsets[work]: self.row_offsets[work + 1]].tolist())

    @property
    def work_rows(self) -> list[list[int]]:
        return [list(self.rows_of(w)) for w in range(len(self))]

    def words(self, work: int) -> tuple[list[str], list[str], list[str]]:
        """(main-title words, surname words, all title/author/tag words) of a work, cached."""
        got = self._words.get(work)
        if got is None:
            rest = (self.norm_title[work] + " " + self.norm_author[work] + " " + self.norm_tag[work]).split()
            got = (self.norm_main_title[work].split(), self.norm_surname[work].split(), rest)
            self._words[work] = got
        return got

    def word_ids(self, work: int) -> tuple[IntArray, IntArray, IntArray]:
        """Global word ids of :meth:`words` (main title, surname, all), cached per work."""
        got = self._word_ids.get(work)
        if got is None:
            vocab = self._vocab
            t, a, rest = self.words(work)
            ids = [np.array([vocab.setdefault(x, len(vocab)) for x in part], dtype=np.int64)
                   for part in (t, a, rest)]
            got = (ids[0], ids[1], np.unique(np.concatenate(ids)))
            self._word_ids[work] = got
        return got

    def vocab_words(self) -> list[str]:
        """Words by global id (grows as :meth:`word_ids` meets new works)."""
        if len(self._vocab_list) != len(self._vocab):
            self._vocab_list = list(self._vocab)
        return self._vocab_list

    @property
    def tag_set(self) -> frozenset[str]:
        """Normalised call numbers of two or more words (used to count labels in an OCR string)."""
        if self._tag_set is None:
            distinct = {normalize(t) for t in set(self.tags)}
            self._tag_set = frozenset(t for t in distinct if len(t.split()) >= 2)
        return self._tag_set

    @property
    def postings(self) -> sp.csr_matrix:
        """The transposed vectors (n-gram x works, CSR): each row an n-gram's posting list."""
        if self._postings is None:
            self._postings = sp.csr_matrix(self.vectors.T)
        return self._postings

    @property
    def doc_freq(self) -> npt.NDArray[np.int64]:
        """Number of works containing each n-gram."""
        if self._df is None:
            self._df = np.diff(self.postings.indptr).astype(np.int64)
        return self._df

    def query_vectors(self, texts: list[str]) -> sp.csr_matrix:
        """TF-IDF vectors of already normalised query strings."""
        return ngrams.tfidf(ngrams.count_matrix(texts, self.n), self.idf)

    # -- persistence -----------------------------------------------------------------------------
    def save(self, folder: Path | str) -> Path:
        d = Path(folder)
        d.mkdir(parents=True, exist_ok=True)
        v = self.vectors
        offsets, flat = self.row_offsets, self.rows
        tmp = d / "index.tmp.npz"
        np.savez(tmp, idf=self.idf, data=v.data, indices=v.indices, indptr=v.indptr,
                 shape=np.array(v.shape, dtype=np.int64), row_offsets=offsets, rows=flat)
        tmp.replace(d / "index.npz")
        meta = {
            "version": INDEX_VERSION, "n": self.n, "catalogue_sha256": self.catalogue_sha256,
            "calibration": self.calibration.to_dict() if self.calibration else None,
            "build_seconds": self.build_seconds,
            "titles": self.titles, "authors": self.authors, "tags": self.tags, "series": self.series,
        }
        (d / "meta.json").write_text(json.dumps(meta, ensure_ascii=False), encoding="utf-8")
        return d

    @classmethod
    def load(cls, folder: Path | str) -> CatalogueIndex:
        d = Path(folder)
        try:
            meta = json.loads((d / "meta.json").read_text(encoding="utf-8"))
            z = np.load(d / "index.npz")
        except (OSError, ValueError) as e:
            raise CatalogueError(f"{d}: not a readable books index ({e}); rebuild: edgevl books index") from e
        if meta.get("version") != INDEX_VERSION:
            raise CatalogueError(f"{d}: index version {meta.get('version')} != {INDEX_VERSION}; rebuild it")
        shape = tuple(int(x) for x in z["shape"])
        vectors = sp.csr_matrix((z["data"], z["indices"], z["indptr"]), shape=shape)
        offsets, flat = z["row_offsets"], z["rows"]
        idx = _with_norms(int(meta["n"]), z["idf"], vectors, (offsets, flat), meta["titles"], meta["authors"],
                          meta["tags"], meta["series"], meta["catalogue_sha256"])
        try:
            idx.calibration = Calibration.from_dict(meta["calibration"]) if meta.get("calibration") else None
        except CalibrationError as e:
            raise CatalogueError(f"{d}: {e}; rebuild: edgevl books index --rebuild") from e
        idx.build_seconds = float(meta.get("build_seconds", 0.0))
        return idx


# -- shared read-only copy for worker processes -------------------------------------------------
SHARED_DIR = "shared"
_SHARED_DONE = "complete.json"


def index_arrays(index: CatalogueIndex) -> dict[str, npt.NDArray[Any]]:
    """The index's numeric arrays, the posting lists (the transposed vectors) included: everything
    that is large and read-only while matching. :func:`index_from_arrays` turns them back into an index."""
    v, p = index.vectors, index.postings
    return {"idf": index.idf, "data": v.data, "indices": v.indices, "indptr": v.indptr,
            "shape": np.array(v.shape, dtype=np.int64), "row_offsets": index.row_offsets, "rows": index.rows,
            "post_data": p.data, "post_indices": p.indices, "post_indptr": p.indptr}


def index_meta(index: CatalogueIndex) -> dict[str, Any]:
    """The small part of the index (display strings, calibration) that goes with :func:`index_arrays`."""
    return {"n": index.n, "catalogue_sha256": index.catalogue_sha256,
            "calibration": index.calibration.to_dict() if index.calibration else None,
            "titles": index.titles, "authors": index.authors, "tags": index.tags, "series": index.series}


def index_from_arrays(arrays: dict[str, npt.NDArray[Any]], meta: dict[str, Any]) -> CatalogueIndex:
    """An index over the given arrays without copying them (memory-mapped files or a shared-memory
    object store): scipy keeps the arrays as they are, and matching only reads them."""
    shape = tuple(int(x) for x in arrays["shape"])
    vectors = sp.csr_matrix((arrays["data"], arrays["indices"], arrays["indptr"]), shape=shape, copy=False)
    idx = _with_norms(int(meta["n"]), arrays["idf"], vectors, (arrays["row_offsets"], arrays["rows"]),
                      list(meta["titles"]), list(meta["authors"]), list(meta["tags"]),
                      list(meta.get("series") or [""] * len(meta["titles"])), str(meta["catalogue_sha256"]))
    idx._postings = sp.csr_matrix((arrays["post_data"], arrays["post_indices"], arrays["post_indptr"]),
                                  shape=(shape[1], shape[0]), copy=False)
    idx.calibration = Calibration.from_dict(meta["calibration"]) if meta.get("calibration") else None
    return idx


def save_shared(index: CatalogueIndex, folder: Path | str) -> Path:
    """Write :func:`index_arrays` as plain ``.npy`` files under ``folder/shared`` (once per index:
    skipped when already complete for this catalogue), so that worker processes can memory-map them
    with :func:`load_shared` instead of each building or copying the index."""
    d = Path(folder) / SHARED_DIR
    done = d / _SHARED_DONE
    stamp = {"version": INDEX_VERSION, "catalogue_sha256": index.catalogue_sha256, "n": index.n}
    try:
        if json.loads(done.read_text(encoding="utf-8")) == stamp:
            return d
    except (OSError, ValueError):
        pass
    d.mkdir(parents=True, exist_ok=True)
    done.unlink(missing_ok=True)
    for name, arr in index_arrays(index).items():
        tmp = d / f".{name}.{os.getpid()}.npy"
        np.save(tmp, np.ascontiguousarray(arr))
        tmp.replace(d / f"{name}.npy")
    (d / "meta.json").write_text(json.dumps(index_meta(index), ensure_ascii=False), encoding="utf-8")
    done.write_text(json.dumps(stamp), encoding="utf-8")  # written last: the folder is complete
    return d


def load_shared(folder: Path | str) -> CatalogueIndex:
    """Load an index written by :func:`save_shared` with every array memory-mapped read-only: N
    processes on one machine share one copy of the matrices in the page cache."""
    d = Path(folder) / SHARED_DIR
    if not (d / _SHARED_DONE).is_file():
        raise CatalogueError(f"{d}: no shared index here (written by save_shared); rebuild it")
    try:
        meta = json.loads((d / "meta.json").read_text(encoding="utf-8"))
        names = ("idf", "data", "indices", "indptr", "shape", "row_offsets", "rows",
                 "post_data", "post_indices", "post_indptr")
        arrays = {k: np.load(d / f"{k}.npy", mmap_mode="r") for k in names}
    except (OSError, ValueError) as e:
        raise CatalogueError(f"{d}: not a readable shared index ({e}); rebuild: edgevl books index") from e
    return index_from_arrays(arrays, meta)


def _with_norms(n: int, idf: npt.NDArray[np.float32], vectors: sp.csr_matrix, rows: tuple[IntArray, IntArray],
                titles: list[str], authors: list[str], tags: list[str], series: list[str], sha: str
                ) -> CatalogueIndex:
    return CatalogueIndex(
        n=n, idf=idf, vectors=vectors, row_offsets=rows[0], rows=rows[1], titles=titles, authors=authors,
        tags=tags, series=series,
        norm_main_title=LazyNorm(titles, main_title),
        norm_title=LazyNorm(titles),
        norm_surname=LazyNorm(authors, surname),
        norm_author=LazyNorm(authors),
        norm_tag=LazyNorm(tags),
        norm_series=LazyNorm(series),
        catalogue_sha256=sha,
    )


def document_text(title: str, author: str, tag: str) -> str:
    """What a work's n-gram vector is built from: title, author and the spine tag."""
    return normalize(f"{title} {author} {tag}")


def build_index(catalogue: Catalogue, n: int = DEFAULT_N, calibration: Calibration | None = None
                ) -> CatalogueIndex:
    """Group copies into works and vectorise them (TF-IDF over char n-grams, IDF from the works)."""
    b = catalogue.books
    return build_index_columns([x.title for x in b], [x.author for x in b], [x.tag for x in b],
                               catalogue.sha256, n, calibration, [x.series for x in b])


def build_index_columns(titles_in: Sequence[str], authors_in: Sequence[str], tags_in: Sequence[str],
                        sha256: str = "", n: int = DEFAULT_N, calibration: Calibration | None = None,
                        series_in: Sequence[str] | None = None) -> CatalogueIndex:
    """:func:`build_index` from the catalogue's columns (row order = catalogue order); used for
    million-entry catalogues where one Python object per book would cost too much memory."""
    t0 = time.perf_counter()
    if len(titles_in) == 0:
        raise CatalogueError("empty catalogue: nothing to index")
    first: dict[tuple[str, str], int] = {}
    work_of_row = np.empty(len(titles_in), dtype=np.int64)
    titles: list[str] = []
    authors: list[str] = []
    tags: list[str] = []
    series: list[str] = []
    for pos, (t, a, g) in enumerate(zip(titles_in, authors_in, tags_in, strict=True)):
        k = work_key(t, a)
        w = first.get(k)
        if w is None:
            w = first[k] = len(titles)
            titles.append(t)
            authors.append(a)
            tags.append(g)
            series.append(series_in[pos] if series_in is not None else "")
        work_of_row[pos] = w
    del first
    rows = np.argsort(work_of_row, kind="stable").astype(np.int64)
    offsets = np.zeros(len(titles) + 1, dtype=np.int64)
    np.cumsum(np.bincount(work_of_row, minlength=len(titles)), out=offsets[1:])
    del work_of_row
    docs = [document_text(t, a, g) for t, a, g in zip(titles, authors, tags, strict=True)]
    counts = ngrams.count_matrix(docs, n)
    del docs
    idf = ngrams.idf_weights(counts)
    vectors = ngrams.tfidf(counts, idf, copy=False)
    del counts
    idx = _with_norms(n, idf, vectors, (offsets, rows), titles, authors, tags, series, sha256)
    idx.calibration = calibration
    idx.build_seconds = time.perf_counter() - t0
    return idx


def cache_key(catalogue: Catalogue) -> str:
    """The index cache key: the file's sha256 and the columns the index is built from. The same file
    read with other ``--title-col/--author-col`` (or tag/series) columns is another index."""
    c = catalogue.columns
    # always hashed, defaults too: a cache an older edgevl built with other columns sits in the
    # folder named by the bare file digest and must not be found again
    blob = "\x1f".join((catalogue.sha256, c.title, c.author, c.tag, c.series))
    return hashlib.sha256(blob.encode("utf-8", "surrogatepass")).hexdigest()


def load_or_build(catalogue: Catalogue, cache_dir: Path | str | None = None, n: int = DEFAULT_N,
                  rebuild: bool = False) -> tuple[CatalogueIndex, Path, bool]:
    """Load the cached index of this catalogue (keyed by its sha256 and the columns read, see
    :func:`cache_key`) or build and save it.

    Returns (index, folder, built_now).
    """
    folder = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    folder = folder / f"{cache_key(catalogue)[:32]}-n{n}"
    if not rebuild and (folder / "meta.json").is_file():
        try:
            idx = CatalogueIndex.load(folder)
            if idx.catalogue_sha256 == catalogue.sha256 and len(idx) > 0:
                return idx, folder, False
        except CatalogueError:
            pass  # stale or partial cache: rebuild below
    idx = build_index(catalogue, n)
    idx.save(folder)
    return idx, folder, True
