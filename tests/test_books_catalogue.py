"""Catalogue loading: columns, encodings, duplicates and every error; text normalisation; index cache."""

from __future__ import annotations

from pathlib import Path

import pytest

from edgevl.books.catalogue import Columns, load_catalogue, normalize, normalize_words
from edgevl.books.index import CatalogueIndex, build_index, load_or_build
from edgevl.errors import CatalogueError

CSV = ("title,author,tag,isbn\n"
       "El Señor de los anillos : la comunidad,\"Tolkien, J. R. R.\",N Tol,1\n"
       "Ça ira,\"Müller, Jörg\",843 Mül,2\n"
       "El Señor de los anillos : la comunidad,\"Tolkien, J. R. R.\",N Tol,3\n")


def write(tmp_path: Path, data: bytes, name: str = "cat.csv") -> Path:
    p = tmp_path / name
    p.write_bytes(data)
    return p


def test_normalize_follows_the_dataset_readme() -> None:
    assert normalize("  Ça ira, MÜLLER! — 796.4 Sal ") == "ca ira muller 796 4 sal"
    assert normalize_words("L'Enunciat (2ª ed.)") == ["l", "enunciat", "2a", "ed"]
    assert normalize("日本語") == ""


@pytest.mark.parametrize(("encoding", "bom", "expected"), [
    ("utf-8", b"", "utf-8"), ("utf-8", b"\xef\xbb\xbf", "utf-8-sig"), ("latin-1", b"", "latin-1")])
def test_encodings_are_detected_and_recorded(tmp_path: Path, encoding: str, bom: bytes,
                                             expected: str) -> None:
    cat = load_catalogue(write(tmp_path, bom + CSV.encode(encoding)))
    assert cat.encoding == expected
    assert [b.title for b in cat.books][1] == "Ça ira"
    assert cat.books[1].author == "Müller, Jörg"
    assert cat.books[0].tag == "N Tol" and cat.books[0].isbn == "1"


def test_duplicate_titles_are_kept_and_grouped_into_one_work(tmp_path: Path) -> None:
    cat = load_catalogue(write(tmp_path, CSV.encode()))
    assert len(cat) == 3
    idx = build_index(cat)
    assert len(idx) == 2
    assert sorted(idx.multiplicity.tolist()) == [1, 2]
    assert idx.work_rows[0] == [0, 2]


def test_configurable_columns(tmp_path: Path) -> None:
    p = write(tmp_path, "Titel;Autor\n".replace(";", ",").encode() + b"Faust,Goethe\n")
    cat = load_catalogue(p, Columns(title="Titel", author="Autor"))
    assert cat.books[0].title == "Faust" and cat.books[0].tag == ""
    with pytest.raises(CatalogueError, match="missing column"):
        load_catalogue(p)


@pytest.mark.parametrize(("data", "message"), [
    (b"", "empty file"),
    (b"   \n\n", "empty file"),
    (b"name,writer\nx,y\n", "missing column.*title, author"),
    (b"title,tag\nx,y\n", "missing column.*author"),
    (b"title,author\n", "no books"),
    (b"title,author\n,\n,\n", "no books"),
    (b"title,author\n\x00\x01\xff\xfe,x\n", "cannot decode"),
    (b"title,author\n\x81\x82\x83\x9d,x\n", "not Latin-1"),
])
def test_catalogue_errors(tmp_path: Path, data: bytes, message: str) -> None:
    with pytest.raises(CatalogueError, match=message):
        load_catalogue(write(tmp_path, data))


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(CatalogueError, match="no such file"):
        load_catalogue(tmp_path / "nope.csv")


def test_index_is_cached_by_digest_and_rebuilt_when_the_catalogue_changes(tmp_path: Path) -> None:
    p = write(tmp_path, CSV.encode())
    idx, folder, built = load_or_build(load_catalogue(p), tmp_path / "cache")
    assert built and (folder / "index.npz").is_file()
    again, folder2, built2 = load_or_build(load_catalogue(p), tmp_path / "cache")
    assert not built2 and folder2 == folder
    assert again.titles == idx.titles and again.work_rows == idx.work_rows
    assert (again.vectors != idx.vectors).nnz == 0
    p.write_bytes(CSV.encode() + b"Nuevo libro,\"Autor, Otro\",N Aut,4\n")
    changed, folder3, built3 = load_or_build(load_catalogue(p), tmp_path / "cache")
    assert built3 and folder3 != folder and len(changed) == 3


def test_corrupt_index_is_a_typed_error(tmp_path: Path) -> None:
    (tmp_path / "meta.json").write_text("{not json")
    with pytest.raises(CatalogueError, match="not a readable books index"):
        CatalogueIndex.load(tmp_path)
