"""Guardian of a local Ray that edgevl started: ends every process of it once the driver is gone.

Ray ties its GCS server and raylet to the driver that started them (they die with it), but their
agents (``ray::DashboardAgent``, ``ray::RuntimeEnvAgent``) are re-parented and keep running after a
SIGKILL of the driver. This guardian is started by the driver right after ``ray.init`` as
``python -I reaper.py DRIVER_PID`` in its own session, with its stdin a pipe whose only writer is the
driver. While the pipe is open it records, twice a second, the driver's descendants (pid and start
time, so a re-used pid is never hit); when the pipe closes (the driver ended, however) it sends
SIGTERM to those still alive, SIGKILL to what is left after a grace period, and exits.

Standard library only, and run isolated (``-I``): it must not import edgevl or anything from the
working folder.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import sys
import time

POLL_S = 0.5
GRACE_S = 3.0


def _stat(pid: int) -> tuple[int, int] | None:
    """(parent pid, start time) of a live, non-zombie process; None otherwise."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
    except OSError:
        return None
    rest = data[data.rfind(b")") + 2:].split()  # after "pid (comm) "
    if not rest or rest[0] in (b"Z", b"X"):
        return None
    return int(rest[1]), int(rest[19])


def process_table() -> dict[int, tuple[int, int]]:
    out: dict[int, tuple[int, int]] = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            st = _stat(int(name))
            if st is not None:
                out[int(name)] = st
    return out


def descendants(roots: set[int], table: dict[int, tuple[int, int]]) -> dict[int, int]:
    """pid -> start time of every live process below ``roots`` in ``table``."""
    children: dict[int, list[int]] = {}
    for pid, (ppid, _) in table.items():
        children.setdefault(ppid, []).append(pid)
    out: dict[int, int] = {}
    stack = list(roots)
    while stack:
        for c in children.get(stack.pop(), []):
            if c not in out:
                out[c] = table[c][1]
                stack.append(c)
    return out


def _alive(known: dict[int, int]) -> dict[int, int]:
    out = {}
    for pid, start in known.items():
        st = _stat(pid)
        if st is not None and st[1] == start:
            out[pid] = start
    return out


def _signal_all(known: dict[int, int], sig: int) -> None:
    for pid in _alive(known):
        with contextlib.suppress(OSError):
            os.kill(pid, sig)


def main(argv: list[str]) -> int:
    driver = int(argv[1])
    me = os.getpid()
    known: dict[int, int] = {}
    fd = sys.stdin.fileno()
    while True:
        found = descendants({driver}, process_table())
        found.pop(me, None)
        known.update(found)
        ready, _, _ = select.select([fd], [], [], POLL_S)
        if ready:
            try:
                chunk = os.read(fd, 4096)
            except OSError:
                chunk = b""
            if not chunk:
                break  # the driver closed the pipe or died
    # the re-parented children of what we knew (spawned between two polls) go too
    known.update(descendants(set(_alive(known)), process_table()))
    known.pop(me, None)
    _signal_all(known, signal.SIGTERM)
    deadline = time.monotonic() + GRACE_S
    while _alive(known) and time.monotonic() < deadline:
        time.sleep(0.1)
    _signal_all(known, signal.SIGKILL)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
