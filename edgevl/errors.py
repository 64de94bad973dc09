"""Typed exceptions. Every user mistake raises one of these with the path and the expected form.

The CLI turns any :class:`EdgevlError` into one line on stderr and exit code 2.
"""

from __future__ import annotations


class EdgevlError(Exception):
    """Base class of every error edgevl raises on purpose."""


class BundleError(EdgevlError):
    """A model bundle is missing, malformed, corrupt or from another schema version."""


class InputError(EdgevlError):
    """Input data has the wrong shape, dtype, name or content."""


class ImageError(InputError):
    """An image cannot be read, is empty, or has a form edgevl cannot use."""


class CatalogueError(InputError):
    """A catalogue or segments file is missing columns, empty, or in an unreadable encoding."""


class BackendError(EdgevlError):
    """A backend (ONNX Runtime provider, TensorRT) is not installed or failed to run."""


class CheckpointError(EdgevlError):
    """A checkpoint cannot be read or does not match the architecture (lists the keys)."""


class CalibrationError(InputError):
    """Calibration data for quantisation is empty or does not fit the model."""


class QuantizationError(EdgevlError):
    """Quantisation could not produce a bundle that passes the accuracy guard."""
