"""Text and image encoders (CLIP, sentence encoders): the encoder task family.

Its parts: ``sections`` (``ClipPreprocess``, ``TokenizerSpec``, ``EncoderConfig`` and their
defaults), ``spec`` (the ``clip`` and ``text-embedding`` registrations: input-range rules,
benchmark inputs, int8 calibration kind) and ``encode`` (:class:`TextEncoder`,
:class:`ImageEncoder`). The zero-shot classifier built on them is :mod:`edgevl.tasks.zeroshot`.

The encoders are imported on first use (``from edgevl.tasks.encoders import TextEncoder`` works as
always), so the manifest loader can read this family's sections without loading a backend.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from edgevl.tasks.encoders.encode import IMAGE_TASKS as IMAGE_TASKS
    from edgevl.tasks.encoders.encode import TEXT_INPUTS as TEXT_INPUTS
    from edgevl.tasks.encoders.encode import TEXT_TASKS as TEXT_TASKS
    from edgevl.tasks.encoders.encode import ImageEncoder as ImageEncoder
    from edgevl.tasks.encoders.encode import TextEncoder as TextEncoder
    from edgevl.tasks.encoders.encode import as_bundle as as_bundle
    from edgevl.tasks.encoders.encode import l2_normalize as l2_normalize
    from edgevl.tasks.encoders.encode import require_task as require_task

__all__ = ["IMAGE_TASKS", "TEXT_INPUTS", "TEXT_TASKS", "ImageEncoder", "TextEncoder", "as_bundle",
           "l2_normalize", "require_task"]


def __getattr__(name: str) -> Any:
    if name not in __all__:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(f"{__name__}.encode"), name)
    globals()[name] = value
    return value
