"""How much memory this process may still use: the smallest of the host's available memory, the
address-space limit (``RLIMIT_AS``, ``ulimit -v``) less what the process already maps, and the cgroup
v2 limit (``memory.max`` less ``memory.current``: a container or a systemd slice).

Decisions "will this fit?" (decoding a photo, reading a catalogue) use :func:`available_bytes`, not
the host's free memory alone: a process under a 1.5 GiB cap on a 64 GiB machine would otherwise
start a 2 GiB allocation and die with a ``MemoryError`` (or be killed) instead of a clear error.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

_CGROUP_ROOT = Path("/sys/fs/cgroup")


@dataclass(frozen=True)
class MemoryBudget:
    """The memory left under each limit (bytes; None = no such limit) and the smallest of them."""

    host: int
    address_space: int | None
    cgroup: int | None

    @property
    def available(self) -> int:
        return min(v for v in (self.host, self.address_space, self.cgroup) if v is not None)

    @property
    def limited_by(self) -> str:
        """Which limit is the smallest, for error messages."""
        a = self.available
        if self.address_space is not None and self.address_space == a:
            return "the address-space limit (ulimit -v)"
        if self.cgroup is not None and self.cgroup == a:
            return "the cgroup memory limit (memory.max)"
        return "available memory"


def _host_available() -> int:
    """``MemAvailable`` of ``/proc/meminfo`` (Linux), else free physical pages."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return int(os.sysconf("SC_AVPHYS_PAGES")) * int(os.sysconf("SC_PAGE_SIZE"))
    except (OSError, ValueError, AttributeError):  # pragma: no cover - not POSIX
        import psutil

        return int(psutil.virtual_memory().available)


def _mapped_bytes() -> int:
    """This process's virtual size (what ``RLIMIT_AS`` counts)."""
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[0])
        return pages * int(os.sysconf("SC_PAGE_SIZE"))
    except (OSError, ValueError, IndexError):  # pragma: no cover - not Linux
        import psutil

        return int(psutil.Process().memory_info().vms)


def _address_space_left() -> int | None:
    try:
        import resource
    except ImportError:  # pragma: no cover - not POSIX
        return None
    soft, _ = resource.getrlimit(resource.RLIMIT_AS)
    if soft == resource.RLIM_INFINITY or soft <= 0:
        return None
    return max(0, int(soft) - _mapped_bytes())


def _read_int(path: Path) -> int | None:
    try:
        text = path.read_text().strip()
    except (OSError, UnicodeDecodeError):
        return None
    if text == "max":
        return None
    try:
        return int(text)
    except ValueError:
        return None


def _own_cgroup() -> Path | None:
    """The cgroup v2 folder of this process (``/proc/self/cgroup``'s ``0::/path`` line)."""
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        if line.startswith("0::"):
            rel = line[3:].strip().lstrip("/")
            return _CGROUP_ROOT / rel if rel else _CGROUP_ROOT
    return None


def cgroup_left(group: Path | None, root: Path = _CGROUP_ROOT) -> int | None:
    """The tightest ``memory.max - memory.current`` from the cgroup folder ``group`` up to ``root``
    (None when no level has a limit)."""
    if group is None:
        return None
    best: int | None = None
    g = group
    while True:
        limit = _read_int(g / "memory.max")
        if limit is not None:
            current = _read_int(g / "memory.current") or 0
            left = max(0, limit - current)
            best = left if best is None else min(best, left)
        if g == root or g.parent == g or not g.is_relative_to(root):
            break
        g = g.parent
    return best


def memory_budget() -> MemoryBudget:
    """The memory this process may still allocate, under each limit that applies."""
    return MemoryBudget(_host_available(), _address_space_left(),
                        cgroup_left(_own_cgroup()) if os.name == "posix" else None)


def available_bytes() -> int:
    """The smallest of the host's available memory, the address-space room and the cgroup room."""
    return memory_budget().available


#: the share of :func:`available_bytes` a benchmark may load (``edgevl bench``'s inputs and models)
BENCH_FRACTION = 0.75


def bench_limit() -> int:
    """What ``edgevl bench`` may load by default: :data:`BENCH_FRACTION` of the memory available now."""
    return int(available_bytes() * BENCH_FRACTION)


__all__ = ["BENCH_FRACTION", "MemoryBudget", "available_bytes", "bench_limit", "cgroup_left", "memory_budget"]
