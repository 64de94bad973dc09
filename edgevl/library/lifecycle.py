"""Process lifetimes of a library run: the driver turns SIGTERM / SIGINT / SIGHUP into an exception
(so its ``finally`` blocks end the workers and close the log, never in the middle of a commit), and
each worker ends itself when the driver is gone, even after a SIGKILL that runs no clean-up.

Worker side (:func:`die_with_parent`): on Linux ``prctl(PR_SET_PDEATHSIG, SIGKILL)`` (the kernel
kills the worker when the driver dies), and on every system a daemon thread that polls the parent pid
twice a second and exits when the worker has been re-parented. SIGINT is ignored in workers: a
Ctrl-C reaches the whole foreground process group, and the driver decides what happens to them.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import os
import signal
import sys
import threading
import time
from collections.abc import Iterator
from types import FrameType

PR_SET_PDEATHSIG = 1
#: how often a worker checks that its driver is still there (seconds)
POLL_S = 0.5
SIGNALS = tuple(s for s in (getattr(signal, "SIGTERM", None), getattr(signal, "SIGINT", None),
                            getattr(signal, "SIGHUP", None)) if s is not None)


class RunInterrupted(KeyboardInterrupt):
    """The driver got a terminating signal; ``signum`` says which (exit status 128 + signum)."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


class SignalGuard:
    """While active, a terminating signal raises :class:`RunInterrupted` in the main thread, except
    inside :meth:`critical` (a commit), where it is held until the block ends."""

    def __init__(self) -> None:
        self._depth = 0
        self._pending: int | None = None

    def _handler(self, signum: int, frame: FrameType | None) -> None:
        if self._depth:
            self._pending = signum
            return
        raise RunInterrupted(signum)

    @contextlib.contextmanager
    def critical(self) -> Iterator[None]:
        self._depth += 1
        try:
            yield
        finally:
            self._depth -= 1
        if not self._depth and self._pending is not None:
            signum, self._pending = self._pending, None
            raise RunInterrupted(signum)


_ACTIVE: list[tuple[SignalGuard, tuple[int, ...]]] = []  # the guard in force and the signals it took


@contextlib.contextmanager
def interrupts() -> Iterator[SignalGuard]:
    """Install :class:`SignalGuard`'s handler for SIGTERM, SIGINT and SIGHUP (main thread only;
    elsewhere the guard is inert) and restore the previous handlers afterwards."""
    guard = SignalGuard()
    if threading.current_thread() is not threading.main_thread():
        yield guard
        return
    old = {s: signal.getsignal(s) for s in SIGNALS}
    taken = tuple(s for s in SIGNALS if old[s] is not signal.SIG_IGN)  # nohup's ignored SIGHUP stays so
    for s in taken:
        signal.signal(s, guard._handler)
    _ACTIVE.append((guard, taken))
    try:
        yield guard
    finally:
        _ACTIVE.pop()
        for s, h in old.items():
            signal.signal(s, h if h is not None else signal.SIG_DFL)


def reclaim_signals() -> None:
    """Put the active guard's handlers back after a library replaced them (``ray.init`` installs
    its own SIGTERM handler, which dumps a stack and exits without any clean-up)."""
    if _ACTIVE and threading.current_thread() is threading.main_thread():
        guard, taken = _ACTIVE[-1]
        for s in taken:
            signal.signal(s, guard._handler)


def _set_pdeathsig(signum: int) -> bool:
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
        return int(libc.prctl(PR_SET_PDEATHSIG, signum, 0, 0, 0)) == 0
    except (OSError, AttributeError):
        return False


def die_with_parent(parent_pid: int) -> None:
    """Make this process end when ``parent_pid`` (its driver) is gone (see the module doc)."""
    with contextlib.suppress(ValueError):  # not the main thread: nothing to ignore
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    _set_pdeathsig(signal.SIGKILL)
    if os.getppid() != parent_pid:  # the driver died before the prctl took effect
        os._exit(1)

    def watch() -> None:
        while True:
            time.sleep(POLL_S)
            if os.getppid() != parent_pid:
                os._exit(1)

    threading.Thread(target=watch, name="edgevl-parent-watch", daemon=True).start()
