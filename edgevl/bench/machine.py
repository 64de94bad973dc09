"""What machine a benchmark ran on: CPU, cores, OS, Python, runtimes, GPU and driver."""

from __future__ import annotations

import contextlib
import importlib.metadata
import os
import platform
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgevl.bench.jetson import JetsonInfo, detect_jetson


def cpu_model() -> str:
    """The CPU's marketing name (``/proc/cpuinfo`` on Linux, sysctl on macOS), else platform's guess."""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        try:
            for line in cpuinfo.read_text(errors="replace").splitlines():
                key, _, value = line.partition(":")
                if key.strip() in ("model name", "Hardware", "Model") and value.strip():
                    return value.strip()
        except OSError:
            pass
    if sys.platform == "darwin" and shutil.which("sysctl"):
        try:
            return subprocess.run(["sysctl", "-n", "machdep.cpu.brand_string"], capture_output=True,
                                  text=True, timeout=5, check=False).stdout.strip() or platform.processor()
        except (OSError, subprocess.SubprocessError):
            pass
    return platform.processor() or platform.machine() or "unknown"


def _version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def tensorrt_version() -> str | None:
    """TensorRT's version when its Python package is installed (without importing it)."""
    for dist in ("tensorrt", "tensorrt-cu12", "tensorrt-cu11", "tensorrt_libs"):
        v = _version(dist)
        if v:
            return v
    return None


def nvidia_smi(query: str, extra: tuple[str, ...] = ()) -> list[list[str]]:
    """Rows of ``nvidia-smi --query-X=... --format=csv,noheader,nounits``; [] when there is none."""
    exe = shutil.which("nvidia-smi")
    if exe is None:
        return []
    try:
        r = subprocess.run([exe, query, "--format=csv,noheader,nounits", *extra], capture_output=True,
                           text=True, timeout=10, check=False)
    except (OSError, subprocess.SubprocessError):
        return []
    if r.returncode != 0:
        return []
    return [[c.strip() for c in line.split(",")] for line in r.stdout.splitlines() if line.strip()]


def gpus() -> list[dict[str, Any]]:
    """GPUs and driver as nvidia-smi reports them; on a Jetson (no nvidia-smi query) the L4T release."""
    rows = nvidia_smi("--query-gpu=name,driver_version,memory.total,compute_cap")
    out: list[dict[str, Any]] = []
    for r in rows:
        if len(r) >= 3:
            mem = int(r[2]) if r[2].isdigit() else None
            out.append({"name": r[0], "driver": r[1], "memory_mb": mem,
                        "compute_capability": r[3] if len(r) > 3 else None})
    tegra = Path("/etc/nv_tegra_release")
    if not out and tegra.is_file():
        with contextlib.suppress(OSError, IndexError):
            out.append({"name": "NVIDIA Jetson", "driver": tegra.read_text().splitlines()[0].strip(),
                        "memory_mb": None, "compute_capability": None})
    return out


def process_gpu_memory_mb(pid: int | None = None) -> float | None:
    """Device memory this process holds, per nvidia-smi; None without a GPU or a row for us."""
    me = os.getpid() if pid is None else pid
    total = 0.0
    found = False
    for r in nvidia_smi("--query-compute-apps=pid,used_memory"):
        if len(r) >= 2 and r[0].isdigit() and int(r[0]) == me:
            try:
                total += float(r[1])
                found = True
            except ValueError:
                continue
    return total if found else None


@dataclass(frozen=True)
class MachineInfo:
    """The machine a result came from; stored with every result file."""

    cpu: str
    cores_logical: int
    cores_physical: int | None
    memory_gb: float | None
    os: str
    python: str
    numpy: str | None
    onnxruntime: str | None
    ort_providers: tuple[str, ...]
    tensorrt: str | None
    gpus: tuple[dict[str, Any], ...] = field(default_factory=tuple)
    edgevl: str | None = None
    hostname: str | None = None
    # Jetson facts (edgevl.bench.jetson.JetsonInfo.to_dict: same keys, null off a Jetson)
    jetson: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "cpu": self.cpu,
            "cores_logical": self.cores_logical,
            "cores_physical": self.cores_physical,
            "memory_gb": self.memory_gb,
            "os": self.os,
            "python": self.python,
            "numpy": self.numpy,
            "onnxruntime": self.onnxruntime,
            "ort_providers": list(self.ort_providers),
            "tensorrt": self.tensorrt,
            "gpus": [dict(g) for g in self.gpus],
            "edgevl": self.edgevl,
            "hostname": self.hostname,
            "jetson": dict(self.jetson),
        }


def machine_info(jetson: JetsonInfo | None = None) -> MachineInfo:
    """Describe this machine (cheap: no model is loaded, TensorRT is not imported)."""
    import psutil

    try:
        import onnxruntime as ort

        providers: tuple[str, ...] = tuple(ort.get_available_providers())
        ort_version: str | None = str(ort.__version__)
    except ImportError:  # pragma: no cover - onnxruntime is a dependency
        providers, ort_version = (), None
    mem = psutil.virtual_memory().total / 2**30
    return MachineInfo(
        cpu=cpu_model(),
        cores_logical=os.cpu_count() or 1,
        cores_physical=psutil.cpu_count(logical=False),
        memory_gb=round(mem, 1),
        os=f"{platform.system()} {platform.release()} ({platform.machine()})",
        python=platform.python_version(),
        numpy=_version("numpy"),
        onnxruntime=ort_version,
        ort_providers=providers,
        tensorrt=tensorrt_version(),
        gpus=tuple(gpus()),
        edgevl=_version("edgevl"),
        hostname=platform.node() or None,
        jetson=(jetson or detect_jetson()).to_dict(),
    )


def peak_rss_mb() -> float:
    """The process's peak resident set size so far, in MiB (a high-water mark: it never goes down)."""
    try:
        import resource

        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        # Linux reports KiB, macOS bytes
        return peak / 2**20 if sys.platform == "darwin" else peak / 1024.0
    except ImportError:  # Windows
        import psutil

        info = psutil.Process().memory_info()
        return float(getattr(info, "peak_wset", info.rss)) / 2**20


def rss_mb() -> float:
    """The process's current resident set size, in MiB."""
    import psutil

    return float(psutil.Process().memory_info().rss) / 2**20


def load_average() -> list[float] | None:
    """1/5/15-minute load averages (None where the OS has none): how busy the machine was."""
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except (AttributeError, OSError):
        return None


def package_versions(dists: tuple[str, ...] | list[str]) -> dict[str, str | None]:
    """Installed versions of the named distributions (None for one that is not installed)."""
    return {d: _version(d) for d in dists}


def machine_record(load_before: list[float] | None = None, packages: tuple[str, ...] | list[str] = (),
                   *, jetson: JetsonInfo | None = None, **extra: Any) -> dict[str, Any]:
    """The one machine record every result file carries (``edgevl bench`` files and the scripts in
    ``benchmarks/``): :class:`MachineInfo`, the load average before (given) and after (now) the run,
    the versions of ``packages`` a script depends on (torch, opencv-python, …) and script-specific
    ``extra`` settings (threads). ``jetson``: facts already detected (else detected here)."""
    machine = machine_info(jetson).to_dict()
    if packages:
        machine["packages"] = package_versions(packages)
    machine.update(extra)
    machine["load_average_before"] = load_before
    machine["load_average_after"] = load_average()
    return machine
