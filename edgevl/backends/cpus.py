"""How many CPU cores this process may actually use, for the backends' default thread counts.

``os.cpu_count()`` counts the machine's cores; a process pinned to fewer (``taskset``, a container's
cpuset) or limited by a cgroup CPU quota (``docker --cpus 2``: ``cpu.max`` of cgroup v2,
``cpu.cfs_quota_us`` of v1) that starts one thread per machine core oversubscribes its share, and
its threads wait on each other at every barrier of every layer. Pure functions over the text of
those files, so they are tested without a container.
"""

from __future__ import annotations

import math
import os
from pathlib import Path


def quota_cpus(cpu_max: str | None = None, cfs_quota: str | None = None,
               cfs_period: str | None = None) -> float | None:
    """CPUs granted by a cgroup quota: ``cpu.max`` (v2, ``"QUOTA PERIOD"`` or ``"max PERIOD"``) or
    ``cpu.cfs_quota_us``/``cpu.cfs_period_us`` (v1, quota -1 = none); None when there is no quota
    or the text is not understood."""
    if cpu_max is not None:
        parts = cpu_max.split()
        if len(parts) == 2 and parts[0] != "max":
            try:
                q, p = int(parts[0]), int(parts[1])
            except ValueError:
                return None
            return q / p if q > 0 and p > 0 else None
        return None
    if cfs_quota is not None and cfs_period is not None:
        try:
            q, p = int(cfs_quota.strip()), int(cfs_period.strip())
        except ValueError:
            return None
        return q / p if q > 0 and p > 0 else None
    return None


def _read(path: Path) -> str | None:
    try:
        return path.read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError):
        return None


def cgroup_quota(root: Path = Path("/sys/fs/cgroup")) -> float | None:
    """This process's cgroup CPU quota in CPUs (v2 then v1), None when unlimited or unknown."""
    v2 = _read(root / "cpu.max")
    if v2 is not None:
        return quota_cpus(cpu_max=v2)
    return quota_cpus(cfs_quota=_read(root / "cpu" / "cpu.cfs_quota_us"),
                      cfs_period=_read(root / "cpu" / "cpu.cfs_period_us"))


def usable_cpus(affinity: int | None = None, quota: float | None = None) -> int:
    """Cores this process may use: its affinity mask, capped by the cgroup quota (rounded up: a
    quota of 1.5 CPUs still runs 2 threads usefully); at least 1. Arguments replace what is read
    from the system (for tests)."""
    if affinity is None:
        try:
            affinity = len(os.sched_getaffinity(0))
        except (AttributeError, OSError):  # not Linux
            affinity = os.cpu_count() or 1
    if quota is None:
        quota = cgroup_quota()
    n = affinity
    if quota is not None:
        n = min(n, max(1, math.ceil(quota - 1e-9)))
    return max(1, n)
