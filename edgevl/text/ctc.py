"""Greedy CTC decoding with per-character confidences (batched, vectorised)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from edgevl.errors import InputError


@dataclass(frozen=True)
class Decoded:
    """One decoded sequence: text, mean character confidence, and each character's confidence."""

    text: str
    score: float
    char_scores: tuple[float, ...]


def ctc_greedy(
    probs: npt.ArrayLike,
    charset: Sequence[str],
    *,
    blank: int = 0,
    lengths: Sequence[int] | None = None,
) -> list[Decoded]:
    """Decode (B, T, C) class probabilities by best path: argmax per step, merge repeats, drop blanks.

    A character's confidence is the probability of its first frame in the run; the sequence score
    is the mean of the character confidences (0 for an empty reading). ``lengths`` truncates each
    item's time axis (frames beyond it came from batch padding).
    """
    p = np.asarray(probs)
    if p.dtype.kind not in "fiu":
        raise InputError(f"CTC expects numeric probabilities, got dtype {p.dtype}")
    if p.ndim != 3:
        raise InputError(f"CTC expects (batch, time, classes) probabilities, got shape {p.shape}")
    b, t, c = p.shape
    if c != len(charset):
        raise InputError(f"model has {c} classes but the charset has {len(charset)}")
    if not 0 <= blank < c:
        raise InputError(f"blank index {blank} outside 0..{c - 1}")
    idx = p.argmax(axis=2)
    conf = np.take_along_axis(p, idx[:, :, None], axis=2)[:, :, 0].astype(np.float64)
    if not np.isfinite(conf).all():  # argmax picks a NaN when a frame has one, +inf when it is the max
        raise InputError("CTC probabilities hold NaN or infinity (the model's output is broken)")
    prev = np.concatenate([np.full((b, 1), -1, dtype=idx.dtype), idx[:, :-1]], axis=1)
    keep = (idx != blank) & (idx != prev)
    if lengths is not None:
        if len(lengths) != b:
            raise InputError(f"{len(lengths)} lengths for a batch of {b}")
        keep &= np.arange(t)[None, :] < np.asarray(lengths)[:, None]
    out: list[Decoded] = []
    for i in range(b):
        sel = np.flatnonzero(keep[i])
        chars = [charset[k] for k in idx[i, sel]]
        cs = tuple(float(x) for x in conf[i, sel])
        out.append(Decoded("".join(chars), float(np.mean(cs)) if cs else 0.0, cs))
    return out
