"""What a task family registers (:mod:`edgevl.tasks.registry`): one :class:`TaskFamily` holding a
:class:`TaskSpec` per task name it owns.

A task spec is the whole contract of one task in one place: the model roles its bundles hold, the
typed sections its ``preprocess`` and ``config`` may hold and how they are parsed, the files its
config names, the input-range policy writers derive ``min/opt/max`` from, how ``edgevl bench
--inputs`` turns images into model inputs, and which int8 calibration kind ``edgevl quantize``
drives. The manifest loader, the benchmark and ``make_kind`` all dispatch through it: adding a task
or a model family edits its own folder and one registration.

This module imports nothing of edgevl but :mod:`edgevl.manifest` (specs are built below the bundle
layer); what it calls back is typed against :class:`BundleLike`, which :class:`edgevl.bundle.Bundle`
satisfies.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, TypeVar

import numpy.typing as npt

from edgevl.manifest import BackendConfig, Range

T = TypeVar("T")
Array = npt.NDArray[Any]
JSON = Mapping[str, Any]


class ManifestLike(Protocol):
    @property
    def task(self) -> str: ...

    @property
    def config(self) -> Mapping[str, Any]: ...


class BundleLike(Protocol):
    """What a spec's callbacks use of a loaded bundle."""

    @property
    def path(self) -> Path: ...

    @property
    def manifest(self) -> ManifestLike: ...

    def file(self, rel: str) -> Path: ...

    def section(self, cls: type[T]) -> T: ...


#: the sections a task has, parsed: ``(roles, preprocess, config) -> (section, ...)``
SectionParser = Callable[[Collection[str], JSON, JSON], tuple[Any, ...]]
#: the range policy of the symbolic axes, by dimension role: ``(preprocess, config) -> {role: range}``
RangePolicy = Callable[[JSON, JSON], dict[str, Range]]
#: (field, file name) of every file the config names explicitly
FileLister = Callable[[JSON], list[tuple[str, str]]]
#: real benchmark inputs: ``(bundle, model role, image paths) -> one array per image``
BenchInputs = Callable[[BundleLike, str, Sequence[Path]], list[Array]]


def no_files(config: JSON) -> list[tuple[str, str]]:
    return []


@dataclass(frozen=True)
class QuantDefaults:
    """What ``edgevl quantize``'s ``--samples``, ``--holdout`` and ``--outlier-ratio`` default to."""

    samples: int = 128
    holdout: int = 64
    outlier_ratio: float = 0.0


@dataclass(frozen=True)
class TaskSpec:
    """One task's contract (see the module docstring)."""

    name: str
    #: model roles its bundles hold (``model``; ``image``/``text``)
    roles: tuple[str, ...]
    #: section classes of its ``preprocess`` and ``config`` (:class:`BackendConfig` is added to every
    #: config); their ``KEYS`` are what the two objects may hold
    preprocess: tuple[type[Any], ...]
    config: tuple[type[Any], ...]
    parse: SectionParser
    ranges: RangePolicy
    files: FileLister = no_files
    #: ``edgevl bench --inputs IMAGES`` by model role (a role not here takes only ``.npz`` inputs)
    bench_inputs: Mapping[str, BenchInputs] = field(default_factory=dict)
    #: benchmark images of different widths are batched by right-padding (text crops)
    bench_pads_width: bool = False
    #: token-id bound of synthetic benchmark inputs (None: the benchmark's default)
    vocab_size: Callable[[BundleLike], int | None] | None = None
    #: ``"module:Class"`` of the int8 calibration kind (``edgevl_export.quantize.kinds``); None: none
    quantize_kind: str | None = None
    #: what a calibration set is, in words (error messages)
    calibration_data: str = ""
    #: calibrated on a text file (not a folder)
    calibration_texts: bool = False
    #: the quantiser's defaults for this task (the measurement behind them where it is registered)
    quantize_defaults: QuantDefaults = field(default_factory=QuantDefaults)

    @property
    def preprocess_keys(self) -> tuple[str, ...]:
        return tuple(k for c in self.preprocess for k in c.KEYS)

    @property
    def config_keys(self) -> tuple[str, ...]:
        classes: tuple[type[Any], ...] = (*self.config, BackendConfig)
        return tuple(k for c in classes for k in c.KEYS)


@dataclass(frozen=True)
class TaskFamily:
    """What one family registers: its name and the tasks it owns."""

    name: str
    tasks: tuple[TaskSpec, ...]

