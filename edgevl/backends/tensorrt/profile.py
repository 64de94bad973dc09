"""The optimisation profile: one (min, opt, max) shape per input, from the manifest's input ranges."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from edgevl.backends.base import TensorRTOptions
from edgevl.bundle import TensorSpec
from edgevl.errors import BackendError, InputError

Shape = tuple[int, ...]
#: input name → (min, opt, max) shapes
Profile = Mapping[str, tuple[Sequence[int], Sequence[int], Sequence[int]]]


def default_profile(specs: Sequence[TensorSpec],
                    options: TensorRTOptions | None = None) -> dict[str, tuple[Shape, Shape, Shape]]:
    """One optimisation profile (min, opt, max) per input, from the manifest's input ranges.

    Every axis takes the exporter's ``min/opt/max``; the batch's max is capped at
    ``options.max_batch`` (its opt is ``opt_batch``, default that cap); ``options.dims`` moves an
    axis' opt (by symbolic name or role) within its range. Nothing is guessed: an input without
    ranges (never in a schema-2 bundle) is a BackendError.
    """
    o = options or TensorRTOptions()
    out: dict[str, tuple[Shape, Shape, Shape]] = {}
    for s in specs:
        if len(s.dims) != len(s.shape):
            raise BackendError(f"input {s.name!r} has no ranges in the manifest; rebuild the bundle")
        lo, opt, hi = [], [], []
        for d, r in zip(s.shape, s.dims, strict=True):
            a, b, c = r.min, r.opt, r.max
            if r.role == "batch" and a != c:
                c = max(a, min(c, o.max_batch))
                b = max(a, min(c, o.opt_batch or c))
            want = o.dims.get(str(d), o.dims.get(r.role))
            if want is not None and a != c:
                if not a <= want <= c:
                    raise InputError(f"dims {r.role}={want}: outside the bundle's range {a}..{c} "
                                     f"for input {s.name!r}")
                b = want
            lo.append(a)
            opt.append(b)
            hi.append(c)
        out[s.name] = (tuple(lo), tuple(opt), tuple(hi))
    return out


def outside_profile(profile: Profile, name: str, shape: Sequence[int]) -> str | None:
    """Why ``shape`` of input ``name`` is outside the profile (the first axis that is), or None."""
    lo, _, hi = profile[name]
    if len(shape) != len(lo):
        return f"rank {len(shape)}, the profile's is {len(lo)}"
    for i, (a, n, c) in enumerate(zip(lo, shape, hi, strict=True)):
        if not a <= n <= c:
            return f"dim {i} is {n}, the profile allows {a}..{c}"
    return None
