"""What each worker (a pool process or a Ray actor) holds: the OCR pipeline and the matcher, loaded
once, over a catalogue index it does not copy (memory-mapped files or Ray's shared object store)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from edgevl.books.index import CatalogueIndex
from edgevl.library.records import error_record, photo_record


@dataclass(frozen=True)
class WorkerOptions:
    """OCR settings of every worker: ONNX Runtime intra-op threads (0 = runtime default) and backend."""

    threads: int = 1
    backend: str = "ort-cpu"
    model: str | None = None  # OCR model family (None: edgevl's default)
    calibration: dict[str, Any] = field(default_factory=dict)  # Calibration.to_dict(); {} = shipped


class ShelfWorker:
    """``ShelfWorker(index, options).process(photo[, data]) -> record``; never raises for a bad photo."""

    def __init__(self, index: CatalogueIndex, options: WorkerOptions) -> None:
        from edgevl.backends import EngineOptions
        from edgevl.books.calibration import Calibration
        from edgevl.books.matcher import BookMatcher
        from edgevl.books.shelf import ShelfMatcher, shelf_ocr

        ocr = shelf_ocr(EngineOptions(backend=options.backend, threads=options.threads), options.model)
        cal = Calibration.from_dict(options.calibration) if options.calibration else None
        self.shelf = ShelfMatcher(BookMatcher(index, cal), ocr)

    def process(self, photo: str, data: bytes | None = None) -> dict[str, Any]:
        """Read (or decode ``data``), OCR and match one photo; any failure becomes an error record."""
        from edgevl.vision.io import decode_image, read_image

        t0, c0 = time.perf_counter(), time.process_time()
        try:
            image = decode_image(data, photo) if data is not None else read_image(photo)
            result = self.shelf(image)
        except Exception as e:  # one bad photo is recorded with its error and never stops the run
            return error_record(photo, e, time.perf_counter() - t0)
        rec = photo_record(photo, result, time.perf_counter() - t0)
        rec["seconds"]["cpu"] = round(time.process_time() - c0, 3)  # all threads of this worker
        return rec


# -- process-pool entry points (module level so that spawned processes can import them) ----------------
_WORKER: ShelfWorker | None = None


def init_pool_worker(index_folder: str, options: WorkerOptions, parent_pid: int) -> None:
    """Pool initializer: end with the driver (``parent_pid``), map the shared index read-only and
    load the OCR bundles, once per process."""
    global _WORKER
    from edgevl.books.index import load_shared
    from edgevl.library.lifecycle import die_with_parent

    die_with_parent(parent_pid)

    _WORKER = ShelfWorker(load_shared(index_folder), options)


def pool_process(photo: str) -> dict[str, Any]:
    if _WORKER is None:
        raise RuntimeError("pool worker not initialised")
    return _WORKER.process(photo)
