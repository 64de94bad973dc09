"""The Ray runner: one actor per ``num_cpus`` (and ``num_gpus``) of the cluster, each holding the OCR
bundles and a zero-copy view of the catalogue index, which is put in Ray's shared-memory object store
once (one copy per node, mapped read-only by every actor on it).

Starting Ray safely (:func:`start_ray`): ``ray.init`` runs from an empty temporary folder (Ray puts
the driver's working folder first on every worker's ``sys.path``, so a folder named ``edgevl`` there
would shadow the installed package); a ``host:port`` or ``ray://`` address is probed with a bounded
TCP connect first (Ray itself retries for minutes); Ray's notice that a new local Ray uses token
authentication (its default, announced as a warning on every run) is filtered out of its log, and
a local Ray started by edgevl gets a guardian process (:mod:`edgevl.library.reaper`) that ends
all of that Ray's processes if the driver is killed.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from edgevl.books.index import CatalogueIndex, index_arrays, index_from_arrays, index_meta
from edgevl.errors import BackendError, InputError
from edgevl.library.lifecycle import reclaim_signals
from edgevl.library.records import error_record
from edgevl.library.worker import ShelfWorker, WorkerOptions
from edgevl.vision.io import MAX_FILE_BYTES

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


#: how long a Ray address may take to accept a TCP connection (seconds)
CONNECT_TIMEOUT_S = 5.0


def read_photo_bytes(photo: str) -> bytes | str:
    """The photo's bytes for an actor that may not see the driver's files, or why they cannot be
    read (a FIFO, a device, a directory, a missing or oversized file: never read, never blocking)."""
    from edgevl.safeio import read_bytes_file

    try:
        return read_bytes_file(photo, "photo", max_bytes=MAX_FILE_BYTES)
    except InputError as e:
        return f"ImageError: {e}"


def _host_port(address: str) -> tuple[str, int] | None:
    rest = address.split("://", 1)[1] if "://" in address else address
    rest = rest.split("/", 1)[0]
    host, sep, port = rest.rpartition(":")
    if not sep or not port.isdigit():
        return None
    return host.strip("[]") or "127.0.0.1", int(port)


#: an HTTP/2 client preface and an empty SETTINGS frame: a gRPC server (Ray's GCS, the Ray Client
#: server) answers with a SETTINGS frame of its own
_H2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + b"\x00\x00\x00\x04\x00\x00\x00\x00\x00"


def _speaks_grpc(sock: socket.socket) -> bool:
    sock.sendall(_H2_PREFACE)
    head = b""
    while len(head) < 9:
        chunk = sock.recv(9 - len(head))
        if not chunk:
            return False
        head += chunk
    return head[3] == 0x04  # frame type SETTINGS


def check_reachable(address: str, timeout: float = CONNECT_TIMEOUT_S) -> None:
    """A :class:`BackendError` within about ``timeout`` seconds when nothing at a ``host:port`` /
    ``ray://host:port`` address accepts a connection and answers as a gRPC server does (Ray's GCS
    and its client server are gRPC; another service there would make ``ray.init`` retry for
    minutes). ``auto`` is resolved by Ray itself."""
    hp = _host_port(address)
    if hp is None:
        return
    try:
        with socket.create_connection(hp, timeout=timeout) as sock:
            sock.settimeout(timeout)
            grpc = _speaks_grpc(sock)
    except OSError as e:
        why = (f"no answer within {timeout:g} s" if isinstance(e, TimeoutError)
               else (e.strerror or type(e).__name__))
        raise BackendError(f"cannot reach the Ray cluster at {address} ({why}); start it (ray start --head) "
                           "or check the address") from None
    if not grpc:
        raise BackendError(f"{address} does not answer as a Ray cluster (not a gRPC server): check the "
                           "address and port (ray start prints them)")


@contextlib.contextmanager
def _neutral_cwd() -> Iterator[None]:
    """Run the block from an empty temporary folder (see the module doc), then come back."""
    here = os.getcwd()
    with tempfile.TemporaryDirectory(prefix="edgevl-ray-") as tmp:
        os.chdir(tmp)
        try:
            yield
        finally:
            os.chdir(here)


class _TokenNotice(logging.Filter):
    """Drops Ray's notice that a new local Ray uses token authentication (its secure default,
    printed on every run); its warning that authentication is *disabled* still shows."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith("Token authentication is enabled")


@contextlib.contextmanager
def _quiet_token_notice() -> Iterator[None]:
    log = logging.getLogger("ray._private.authentication.authentication_token_setup")
    notice = _TokenNotice()
    log.addFilter(notice)
    try:
        yield
    finally:
        log.removeFilter(notice)


class RaySession:
    """A connection to Ray for one run: ``start()`` connects or starts a local Ray, ``stop()`` ends
    what this run started (the local Ray and its guardian) and, on an existing cluster, its actors."""

    def __init__(self, ray: Any, address: str | None) -> None:
        self.ray = ray
        self.address = address
        self.started = False
        self.guardian: subprocess.Popen[bytes] | None = None
        self.actors: list[Any] = []

    def start(self) -> None:
        ray = self.ray
        if ray.is_initialized():
            return
        local = self.address is None
        if not local:
            check_reachable(self.address or "")
        try:
            with _neutral_cwd(), _quiet_token_notice():
                ray.init(address=self.address, logging_level=logging.WARNING, include_dashboard=False,
                         log_to_driver=False)
        except (ConnectionError, RuntimeError, ValueError, TimeoutError, OSError) as e:
            with contextlib.suppress(Exception):
                ray.shutdown()  # whatever part of a local Ray did start
            first = str(e).strip().splitlines()[0][:300] if str(e).strip() else ""
            why = f"{type(e).__name__}: {first}" if first else type(e).__name__
            raise BackendError(f"cannot start or reach Ray ({why})") from None
        self.started = True
        reclaim_signals()  # Ray's own SIGTERM handler would exit without ending anything
        if local and os.path.isdir("/proc"):  # the guardian reads /proc (Linux)
            self.guardian = subprocess.Popen(
                [sys.executable, "-I", str(Path(__file__).with_name("reaper.py")), str(os.getpid())],
                stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                start_new_session=True, close_fds=True)

    def stop(self) -> None:
        ray = self.ray
        if not self.started:
            return
        if self.guardian is None:  # an existing cluster: end this run's actors, leave the cluster
            for a in self.actors:
                with contextlib.suppress(Exception):
                    ray.kill(a)
        with contextlib.suppress(Exception):
            ray.shutdown()
        if self.guardian is not None:
            with contextlib.suppress(OSError):
                if self.guardian.stdin is not None:
                    self.guardian.stdin.close()  # the guardian ends what ray.shutdown left
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.guardian.wait(timeout=15)
            self.guardian = None
        self.started = False


def run_ray(photos: Sequence[str], index: CatalogueIndex, options: WorkerOptions, *, address: str | None,
            actors: int = 0, num_cpus: float = 1.0, num_gpus: float = 0.0, send_bytes: bool = True,
            window: int = 2) -> Iterator[dict[str, Any]]:
    """Yield one record per photo, in completion order. ``address``: an existing cluster ("auto",
    ``host:port`` or ``ray://host:10001``), None for a local Ray (or the one this process already
    started). ``actors``: 0 = as many as the cluster's CPUs (GPUs) allow. ``send_bytes``: the driver
    reads each photo and ships its bytes (no shared file system needed); False: actors read the
    paths. A photo the driver cannot read (a FIFO, a device, a missing file) is recorded as an error
    without being sent. Closing the generator early ends what this run started."""
    ray = import_ray()
    session = RaySession(ray, address)
    session.start()
    try:
        if actors <= 0:
            res = ray.cluster_resources()
            fits = [res.get("CPU", 1.0) / num_cpus]
            if num_gpus > 0:
                fits.append(res.get("GPU", 0.0) / num_gpus)
            actors = max(1, int(min(fits)))
        arrays_ref = ray.put(index_arrays(index))
        meta_ref = ray.put(index_meta(index))
        cls = ray.remote(ShelfActor).options(num_cpus=num_cpus, num_gpus=num_gpus)
        pool = [cls.remote(arrays_ref, meta_ref, options) for _ in range(actors)]
        session.actors = pool
        todo = list(reversed(photos))
        inflight: dict[Any, tuple[str, int, int]] = {}  # ref -> (photo, actor slot, actor generation)
        load = [0] * actors
        gen = [0] * actors
        finished = 0
        unreadable: list[dict[str, Any]] = []  # error records made by the driver, yielded in turn

        def submit(slot: int) -> None:
            while todo:
                p = todo.pop()
                data: bytes | str | None = read_photo_bytes(p) if send_bytes else None
                if isinstance(data, str):
                    unreadable.append(error_record(p, data, worker={}))
                    continue
                ref = pool[slot].process.remote(p, data)
                inflight[ref] = (p, slot, gen[slot])
                load[slot] += 1
                return

        for _ in range(window):
            for slot in range(actors):
                submit(slot)
        while inflight or unreadable:
            while unreadable:
                yield unreadable.pop()
            if not inflight:
                break
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
                rec = error_record(photo, f"Ray actor died: {e}", worker={})
            except ray.exceptions.RayError as e:
                rec = error_record(photo, f"Ray task failed: {e}", worker={})
            finished += 1
            yield rec
            while todo and load[slot] < window:
                submit(slot)
    finally:
        session.stop()
