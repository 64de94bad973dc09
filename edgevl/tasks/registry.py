"""The task registry: every task name edgevl knows, and the three questions the manifest loader asks
of a task (its sections, the files its config names, the ranges of its model inputs), answered by
the task's :class:`~edgevl.tasks.spec.TaskSpec`.

A family registers once (:func:`register`); the built-in ones are the encoders
(:mod:`edgevl.tasks.encoders.spec`) and OCR (:mod:`edgevl.tasks.ocr.spec`). The manifest loader
(:mod:`edgevl.schema`, :mod:`edgevl.bundle`), ``edgevl bench`` (:mod:`edgevl.bench.inputs`) and
``edgevl quantize`` (``export/quantize/kinds.py``) dispatch through :func:`task_spec`; nothing else
switches on a task name. Tasks the registry does not know are accepted with free-form (still
JSON-checked) ``preprocess``/``config`` and generic ranges, which is what tests and ``edgevl bench``
on a bare ONNX use.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import Any

from edgevl.errors import BundleError
from edgevl.manifest import BATCH_RANGE, GENERIC_RANGES, BackendConfig, DimRange, Range, dim_role, no_unknown
from edgevl.tasks.encoders.spec import FAMILY as ENCODERS
from edgevl.tasks.ocr.spec import FAMILY as OCR
from edgevl.tasks.spec import TaskFamily, TaskSpec

_SPECS: dict[str, TaskSpec] = {}
_FAMILIES: dict[str, TaskFamily] = {}


def register(family: TaskFamily) -> TaskFamily:
    """Add a family's tasks; BundleError when one of its task names is already registered."""
    taken = [t.name for t in family.tasks if t.name in _SPECS]
    if family.name in _FAMILIES or taken:
        raise BundleError(f"task family {family.name!r}: already registered ({taken or family.name})")
    _FAMILIES[family.name] = family
    _SPECS.update({t.name: t for t in family.tasks})
    return family


def unregister(name: str) -> None:
    """Remove the family ``name`` and its tasks (tests register and remove fake families)."""
    family = _FAMILIES.pop(name)
    for t in family.tasks:
        del _SPECS[t.name]


def task_spec(task: str) -> TaskSpec | None:
    """The spec of ``task`` (None: a task edgevl has no runtime for)."""
    return _SPECS.get(task)


def task_names() -> tuple[str, ...]:
    """Every registered task name, in registration order."""
    return tuple(_SPECS)


def validate_sections(task: str, roles: Collection[str], preprocess: Mapping[str, Any],
                      config: Mapping[str, Any]) -> dict[type[Any], Any]:
    """Parse every section the task has (BundleError naming the first bad field); returns the
    parsed sections by class."""
    backend = BackendConfig.from_manifest(config)
    spec = _SPECS.get(task)
    if spec is None:
        return {BackendConfig: backend}  # a task edgevl has no runtime for: free-form (still JSON-checked)
    no_unknown(preprocess, spec.preprocess_keys, "preprocess")
    no_unknown(config, spec.config_keys, "config")
    return {BackendConfig: backend, **{type(s): s for s in spec.parse(set(roles), preprocess, config)}}


def referenced_files(task: str, config: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(field, file name) of every file the config names explicitly, for the bundle's confinement
    check (a default name that is absent is the task's error when it needs the file)."""
    backend = BackendConfig.from_manifest(config)
    out = [(f"config.trt_plugins[{i}]", p) for i, p in enumerate(backend.trt_plugins)]
    out += [(f"config.tensorrt.graphs.{role}", g) for role, g in backend.trt_graphs.items()]
    spec = _SPECS.get(task)
    return out + (spec.files(config) if spec is not None else [])


def input_dims(task: str, role: str, shape: Sequence[int | str], dtype: str,
               preprocess: Mapping[str, Any], config: Mapping[str, Any],
               overrides: Mapping[str, Range] | None = None) -> tuple[DimRange, ...]:
    """The range of every axis of one model input, from the task's policy (the exporter's side).

    Fixed axes keep their size. Symbolic ones: ``overrides`` by symbolic name or role first; then
    batch :data:`BATCH_RANGE`; then the task spec's ``ranges`` (image sides from its resize policy,
    sequence length 1 up to the tokenizer's limit); anything else :data:`GENERIC_RANGES`.
    """
    ov = dict(overrides or {})
    spec = _SPECS.get(task)
    policy: dict[str, Range] = {"batch": BATCH_RANGE, **(spec.ranges(preprocess, config) if spec else {})}
    out: list[DimRange] = []
    for axis, d in enumerate(shape):
        r = dim_role(shape, dtype, axis)
        if isinstance(d, int) and d > 0:
            out.append(DimRange(r, d, d, d))
            continue
        lo, opt, hi = ov.get(str(d)) or ov.get(r) or policy.get(r) or GENERIC_RANGES[r]
        out.append(DimRange(r, lo, opt, hi))
    return tuple(out)


# the built-in families; a new one adds its line here (or calls register() from its own package)
register(ENCODERS)
register(OCR)
