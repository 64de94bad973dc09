"""The Ray runner: one actor per ``num_cpus`` (and ``num_gpus``) of the cluster, each holding the OCR
bundles and a zero-copy view of the catalogue index, which is put in Ray's shared-memory object store
once (one copy per node, mapped read-only by every actor on it)."""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from edgevl.books.index import CatalogueIndex, index_arrays, index_from_arrays, index_meta
from edgevl.errors import BackendError
from edgevl.library.records import error_record
from edgevl.library.worker import ShelfWorker, WorkerOptions

INSTALL_HINT = "--ray needs Ray: pip install 'edgevl[scale]'"


def import_ray() -> Any:
    try:
        import ray
    except ImportError as e:
        raise BackendError(INSTALL_HINT) from e
    return ray


class ShelfActor:
    """A Ray actor around :class:`ShelfWorker` (made remote at run time, so Ray stays optional)."""

    def __init__(self, arrays: dict[str, Any], meta: dict[str, Any], options: WorkerOptions) -> None:
        self.worker = ShelfWorker(index_from_arrays(arrays, meta), options)

    def process(self, photo: str, data: bytes | None) -> dict[str, Any]:
        return self.worker.process(photo, data)


def _read_bytes(photo: str) -> bytes | None:
    """The photo's bytes for an actor that may not see the driver's files; None when unreadable
    (the actor then reads the path itself and records the error)."""
    try:
        return Path(photo).read_bytes()
    except OSError:
        return None


def run_ray(photos: Sequence[str], index: CatalogueIndex, options: WorkerOptions, *, address: str | None,
            actors: int = 0, num_cpus: float = 1.0, num_gpus: float = 0.0, send_bytes: bool = True,
            window: int = 2) -> Iterator[dict[str, Any]]:
    """Yield one record per photo, in completion order. ``address``: an existing cluster ("auto" or
    ``ray://host:10001``), None for a local Ray (or the one this process already started).
    ``actors``: 0 = as many as the cluster's CPUs (GPUs) allow. ``send_bytes``: the driver reads each
    photo and ships its bytes (no shared file system needed); False: actors read the paths."""
    ray = import_ray()
    started = False
    if not ray.is_initialized():
        ray.init(address=address, logging_level=logging.WARNING, include_dashboard=False,
                 log_to_driver=False)
        started = True
    try:
        if actors <= 0:
            res = ray.cluster_resources()
            fits = [res.get("CPU", 1.0) / num_cpus if num_cpus > 0 else float("inf")]
            if num_gpus > 0:
                fits.append(res.get("GPU", 0.0) / num_gpus)
            actors = max(1, int(min(fits)))
        arrays_ref = ray.put(index_arrays(index))
        meta_ref = ray.put(index_meta(index))
        cls = ray.remote(ShelfActor).options(num_cpus=num_cpus, num_gpus=num_gpus)
        pool = [cls.remote(arrays_ref, meta_ref, options) for _ in range(actors)]
        todo = list(reversed(photos))
        inflight: dict[Any, tuple[str, int, int]] = {}  # ref -> (photo, actor slot, actor generation)
        load = [0] * actors
        gen = [0] * actors
        finished = 0

        def submit(slot: int) -> None:
            p = todo.pop()
            ref = pool[slot].process.remote(p, _read_bytes(p) if send_bytes else None)
            inflight[ref] = (p, slot, gen[slot])
            load[slot] += 1

        for _ in range(window):
            for slot in range(actors):
                if todo:
                    submit(slot)
        while inflight:
            ready, _ = ray.wait(list(inflight), num_returns=1)
            ref = ready[0]
            photo, slot, g = inflight.pop(ref)
            load[slot] -= 1
            try:
                rec = ray.get(ref)
            except ray.exceptions.RayActorError as e:  # the actor died: replace it, record the photo
                if finished == 0:
                    raise BackendError(f"the Ray actors died before finishing any photo: {e}") from e
                if g == gen[slot]:  # once per death, not once per photo it held
                    pool[slot] = cls.remote(arrays_ref, meta_ref, options)
                    gen[slot] += 1
                rec = error_record(photo, f"Ray actor died: {e}")
            except ray.exceptions.RayError as e:
                rec = error_record(photo, f"Ray task failed: {e}")
            finished += 1
            yield rec
            while todo and load[slot] < window:
                submit(slot)
    finally:
        if started:
            ray.shutdown()
