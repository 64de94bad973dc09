"""edgevl: lightweight edge inference for vision-language models (no torch at run time)."""

from edgevl.errors import (
    BackendError,
    BundleError,
    CatalogueError,
    EdgevlError,
    ImageError,
    InputError,
)

__version__ = "0.1.0"

__all__ = [
    "BackendError",
    "BundleError",
    "CatalogueError",
    "EdgevlError",
    "ImageError",
    "InputError",
    "__version__",
]
