"""The local runner: N worker processes (spawned: ONNX Runtime's threads and fork do not mix), each
loading the OCR bundles once and memory-mapping the shared catalogue index. Workers end themselves
when the driver dies (:func:`edgevl.library.lifecycle.die_with_parent`); when the driver stops
early (a signal, a full disk), this runner terminates them before it returns."""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import os
from collections.abc import Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from edgevl.errors import BackendError
from edgevl.library.records import error_record
from edgevl.library.worker import WorkerOptions, init_pool_worker, pool_process

#: a photo in flight when a worker process died this many times is recorded as an error
MAX_CRASHES = 2
#: how long an ended worker gets to exit after SIGTERM before it is killed (seconds)
END_GRACE_S = 3.0


def end_pool(pool: ProcessPoolExecutor) -> None:
    """Stop a pool now: no new work, its processes terminated (SIGTERM, then SIGKILL after
    :data:`END_GRACE_S`) and reaped. ``shutdown`` alone would let each worker finish its photo."""
    procs = list((getattr(pool, "_processes", None) or {}).values())  # CPython's pool keeps them here
    for p in procs:
        with contextlib.suppress(OSError, ValueError, AttributeError):
            p.terminate()
    pool.shutdown(wait=False, cancel_futures=True)
    for p in procs:
        with contextlib.suppress(OSError, ValueError, AttributeError):
            p.join(END_GRACE_S)
            if p.is_alive():
                p.kill()
                p.join(END_GRACE_S)
    # CPython's pool thread closes its wake-up pipe as it ends; if the interpreter exits meanwhile,
    # concurrent.futures' atexit hook can write to that pipe as it closes (a "Bad file descriptor"
    # traceback after "edgevl: interrupted"): let the thread end first
    manager = getattr(pool, "_executor_manager_thread", None)
    if manager is not None:
        with contextlib.suppress(RuntimeError):
            manager.join(END_GRACE_S)


def run_local(photos: Sequence[str], index_folder: str, workers: int, options: WorkerOptions,
              window: int = 2) -> Iterator[dict[str, Any]]:
    """Yield one record per photo, in completion order. At most ``window`` photos per worker are in
    flight, so a list of a million photos is never queued at once. A worker that dies (a crash in
    native code) is replaced; the photos it may have been holding are tried again, and one that was
    in flight at ``MAX_CRASHES`` deaths is recorded as an error. Closing the generator early (or an
    exception in the consumer) terminates the workers."""
    todo = list(reversed(photos))  # pop() from the end keeps the list order
    crashes: dict[str, int] = {}
    ctx = mp.get_context("spawn")
    while todo:
        pool = ProcessPoolExecutor(max_workers=workers, mp_context=ctx, initializer=init_pool_worker,
                                   initargs=(index_folder, options, os.getpid()))
        inflight: dict[Future[dict[str, Any]], str] = {}
        broken = False
        finished = 0
        clean = False
        try:
            while todo or inflight:
                while todo and len(inflight) < workers * window:
                    p = todo.pop()
                    inflight[pool.submit(pool_process, p)] = p
                done, _ = wait(inflight, return_when=FIRST_COMPLETED)
                for fut in done:
                    photo = inflight.pop(fut)
                    try:
                        rec = fut.result()
                    except BrokenProcessPool:
                        broken = True
                        inflight[fut] = photo  # handled below with the rest
                        continue
                    finished += 1
                    yield rec
                if broken:
                    break
            clean = not broken
        finally:
            if clean:
                pool.shutdown(wait=True)
            else:  # broken, or stopped from outside (signal, full disk, generator closed)
                end_pool(pool)
        if broken and finished == 0:
            raise BackendError("the worker processes died before finishing any photo (they could not load "
                               "the OCR bundles or the index, or crashed on the first photos); "
                               "try --workers 1 to see the error")
        if broken:
            for photo in inflight.values():
                crashes[photo] = crashes.get(photo, 0) + 1
                if crashes[photo] >= MAX_CRASHES:
                    yield error_record(photo, f"worker process died {crashes[photo]} times while this photo "
                                              "was being processed", worker={})
                else:
                    todo.append(photo)
