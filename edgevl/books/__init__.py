"""Book-spine matching: catalogue, n-gram index, retrieval, per-shelf assignment, evaluation."""

from edgevl.books.catalogue import Book, Catalogue, Columns, load_catalogue, normalize
from edgevl.books.index import CatalogueIndex, build_index, load_or_build
from edgevl.books.matcher import BookMatch, BookMatcher

__all__ = ["Book", "BookMatch", "BookMatcher", "Catalogue", "CatalogueIndex", "Columns", "build_index",
           "load_catalogue", "load_or_build", "normalize"]
