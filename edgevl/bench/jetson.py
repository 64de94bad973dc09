"""NVIDIA Jetson in the benchmark record: L4T/JetPack version, power mode, clock locking, tegrastats.

A latency figure from a Jetson means little without its power mode (``nvpmodel``), whether the clocks
were locked (``jetson_clocks``) and what the GPU, memory controller and power rails did during the run.
This module detects a Jetson (``/etc/nv_tegra_release`` or the device tree), reads those settings, and
samples ``tegrastats`` while a benchmark runs. Every path and command is a parameter so tests can point
them at fixtures; off a Jetson every field is present and null.
"""

from __future__ import annotations

import contextlib
import re
import shutil
import subprocess
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# --------------------------------------------------------------------------------------------------- versions

# Jetson Linux (L4T) release -> JetPack, from NVIDIA's JetPack release notes (first L4T of each JetPack).
_JETPACK: tuple[tuple[tuple[int, ...], str], ...] = (
    ((36, 4, 4), "6.2.1"),
    ((36, 4, 3), "6.2"),
    ((36, 4, 0), "6.1"),
    ((36, 3, 0), "6.0"),
    ((36, 2, 0), "6.0 DP"),
    ((35, 6, 0), "5.1.4"),
    ((35, 5, 0), "5.1.3"),
    ((35, 4, 1), "5.1.2"),
    ((35, 3, 1), "5.1.1"),
    ((35, 2, 1), "5.1"),
    ((35, 1, 0), "5.0.2"),
    ((32, 7, 1), "4.6.1"),
    ((32, 6, 1), "4.6"),
)
_RELEASE = re.compile(r"#\s*R(\d+)\s*\(release\),\s*REVISION:\s*([\d.]+)")


def parse_nv_tegra_release(text: str) -> str | None:
    """``# R36 (release), REVISION: 3.0, GCID: …`` -> ``"36.3.0"``; None when the line is not there."""
    m = _RELEASE.search(text)
    if m is None:
        return None
    parts = [m.group(1), *m.group(2).split(".")]
    while len(parts) < 3:
        parts.append("0")
    return ".".join(parts[:3])


def jetpack_for_l4t(l4t: str | None) -> str | None:
    """The JetPack release that ships this L4T (the newest JetPack whose first L4T is not newer)."""
    if not l4t:
        return None
    try:
        v = tuple(int(x) for x in l4t.split("."))
    except ValueError:
        return None
    for first, jp in _JETPACK:
        if v[0] == first[0] and v >= first:
            return jp
    return None


# ------------------------------------------------------------------------------------------------ tegrastats


@dataclass(frozen=True)
class TegrastatsSample:
    """One tegrastats line. Loads in percent, frequencies in MHz, memory in MB, power in mW."""

    ram_used_mb: int
    ram_total_mb: int
    swap_used_mb: int | None = None
    swap_total_mb: int | None = None
    cpu_load_pct: tuple[int | None, ...] = ()  # None: core off
    cpu_freq_mhz: tuple[int | None, ...] = ()
    emc_load_pct: int | None = None
    emc_freq_mhz: int | None = None
    gpu_load_pct: int | None = None
    gpu_freq_mhz: tuple[int, ...] = ()  # one per GPC on Orin (GR3D_FREQ X%@[Y,Y])
    temps_c: dict[str, float] = field(default_factory=dict)
    rails_mw: dict[str, tuple[int, int | None]] = field(default_factory=dict)  # name -> (now, average)
    timestamp: str | None = None


class TegrastatsParseError(ValueError):
    """The line is not tegrastats output (it has no ``RAM used/totalMB``)."""


_TS = re.compile(r"^(\d\d-\d\d-\d{4} \d\d:\d\d:\d\d)\s+")
_RAM = re.compile(r"\bRAM (\d+)/(\d+)MB")
_SWAP = re.compile(r"\bSWAP (\d+)/(\d+)MB")
_CPU = re.compile(r"\bCPU \[([^\]]*)\]")
_CPU_ONE = re.compile(r"^(\d+)%(?:@(\d+))?$")
_EMC = re.compile(r"\bEMC_FREQ (\d+)%(?:@(\d+))?")
_GR3D = re.compile(r"\bGR3D_FREQ (\d+)%(?:@\[?([\d,]+)\]?)?")
_TEMP = re.compile(r"\b([A-Za-z][\w-]*)@(-?\d+(?:\.\d+)?)C\b")
_RAIL = re.compile(r"\b([A-Z][A-Z0-9_]*) (\d+)(mW)?/(\d+)(?:mW)?(?:/\d+(?:mW)?)?(?=\s|$)")
_RAIL_NOW = re.compile(r"\b([A-Z][A-Z0-9_]*) (\d+)mW(?=\s|$)")
_NOT_RAILS = {"RAM", "SWAP", "IRAM"}


def parse_tegrastats(line: str) -> TegrastatsSample:
    """Parse one line of ``tegrastats`` output (Xavier, Orin; JetPack 4.6 to 6.x formats)."""
    line = line.strip()
    ram = _RAM.search(line)
    if ram is None:
        raise TegrastatsParseError(f"not a tegrastats line (no 'RAM used/totalMB'): {line[:80]!r}")
    ts = _TS.match(line)
    swap = _SWAP.search(line)
    loads: list[int | None] = []
    freqs: list[int | None] = []
    cpu = _CPU.search(line)
    if cpu is not None:
        for core in cpu.group(1).split(","):
            m = _CPU_ONE.match(core.strip())
            loads.append(int(m.group(1)) if m else None)
            freqs.append(int(m.group(2)) if m and m.group(2) else None)
    emc = _EMC.search(line)
    gr3d = _GR3D.search(line)
    rails: dict[str, tuple[int, int | None]] = {}
    for m in _RAIL.finditer(line):
        if m.group(1) not in _NOT_RAILS:
            rails[m.group(1)] = (int(m.group(2)), int(m.group(4)))
    for m in _RAIL_NOW.finditer(line):
        rails.setdefault(m.group(1), (int(m.group(2)), None))
    return TegrastatsSample(
        ram_used_mb=int(ram.group(1)),
        ram_total_mb=int(ram.group(2)),
        swap_used_mb=int(swap.group(1)) if swap else None,
        swap_total_mb=int(swap.group(2)) if swap else None,
        cpu_load_pct=tuple(loads),
        cpu_freq_mhz=tuple(freqs),
        emc_load_pct=int(emc.group(1)) if emc else None,
        emc_freq_mhz=int(emc.group(2)) if emc and emc.group(2) else None,
        gpu_load_pct=int(gr3d.group(1)) if gr3d else None,
        gpu_freq_mhz=tuple(int(x) for x in gr3d.group(2).split(",") if x) if gr3d and gr3d.group(2) else (),
        temps_c={k: float(v) for k, v in _TEMP.findall(line)},
        rails_mw=rails,
        timestamp=ts.group(1) if ts else None,
    )


def _stat(values: Sequence[float]) -> dict[str, float] | None:
    if not values:
        return None
    return {"mean": round(sum(values) / len(values), 1), "max": round(max(values), 1)}


def summarize_tegrastats(samples: Sequence[TegrastatsSample]) -> dict[str, Any]:
    """Mean and max of the GPU and EMC load, RAM, temperatures and each power rail over the samples."""
    rails: dict[str, list[float]] = {}
    temps: dict[str, list[float]] = {}
    for s in samples:
        for name, (now, _avg) in s.rails_mw.items():
            rails.setdefault(name, []).append(now)
        for name, t in s.temps_c.items():
            temps.setdefault(name, []).append(t)
    gpu = [float(s.gpu_load_pct) for s in samples if s.gpu_load_pct is not None]
    emc = [float(s.emc_load_pct) for s in samples if s.emc_load_pct is not None]
    gpu_f = [float(f) for s in samples for f in s.gpu_freq_mhz]
    emc_f = [float(s.emc_freq_mhz) for s in samples if s.emc_freq_mhz is not None]
    return {
        "samples": len(samples),
        "gpu_load_pct": _stat(gpu),
        "gpu_freq_mhz": _stat(gpu_f),
        "emc_load_pct": _stat(emc),
        "emc_freq_mhz": _stat(emc_f),
        "ram_used_mb": _stat([float(s.ram_used_mb) for s in samples]),
        "ram_total_mb": samples[-1].ram_total_mb if samples else None,
        "power_mw": {k: _stat(v) for k, v in rails.items()},
        "temp_c": {k: _stat(v) for k, v in temps.items()},
    }


class TegrastatsSampler:
    """Runs ``tegrastats --interval MS`` in the background and keeps every parsed line until :meth:`stop`."""

    def __init__(self, command: Sequence[str]) -> None:
        self.samples: list[TegrastatsSample] = []
        self.unparsed = 0
        self._proc = subprocess.Popen(list(command), stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                      text=True, bufsize=1)
        self._thread = threading.Thread(target=self._read, name="tegrastats", daemon=True)
        self._thread.start()

    def _read(self) -> None:
        assert self._proc.stdout is not None
        for line in self._proc.stdout:
            if not line.strip():
                continue
            try:
                self.samples.append(parse_tegrastats(line))
            except TegrastatsParseError:
                self.unparsed += 1

    def stop(self) -> dict[str, Any]:
        """End tegrastats and summarise what it printed."""
        if self._proc.poll() is None:
            self._proc.terminate()
        try:
            self._proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
        self._thread.join(timeout=5)
        out = summarize_tegrastats(self.samples)
        out["unparsed_lines"] = self.unparsed
        return out


# ----------------------------------------------------------------------------------------- the device itself


@dataclass(frozen=True)
class JetsonPaths:
    """Where the Jetson facts live; tests point these at a fixture tree."""

    nv_tegra_release: Path = Path("/etc/nv_tegra_release")
    dt_model: Path = Path("/proc/device-tree/model")
    dt_compatible: Path = Path("/proc/device-tree/compatible")
    nvpmodel_status: Path = Path("/var/lib/nvpmodel/status")
    nvpmodel_conf: Path = Path("/etc/nvpmodel.conf")
    sys: Path = Path("/sys")
    nvpmodel_command: tuple[str, ...] = ("nvpmodel", "-q")
    tegrastats_command: tuple[str, ...] = ("tegrastats", "--interval", "500")


def _read(p: Path) -> str | None:
    try:
        return p.read_text(errors="replace")
    except OSError:
        return None


def _dt_strings(p: Path) -> list[str]:
    text = _read(p)
    return [s for s in text.split("\x00") if s.strip()] if text else []


_NVP_QUERY = re.compile(r"NV Power Mode:\s*(\S+)\s*\n\s*(\d+)")
_NVP_STATUS = re.compile(r"pmode:(\d+)")
_NVP_CONF = re.compile(r"<\s*POWER_MODEL\s+ID=(\d+)\s+NAME=(\S+?)\s*>")


def parse_nvpmodel_query(text: str) -> dict[str, Any] | None:
    """``nvpmodel -q`` output (``NV Power Mode: MAXN`` then the id) -> ``{"name", "id"}``."""
    m = _NVP_QUERY.search(text)
    return {"name": m.group(1), "id": int(m.group(2))} if m else None


def nvpmodel_mode(paths: JetsonPaths) -> dict[str, Any] | None:
    """The power mode: ``nvpmodel -q``, else the status file mapped through /etc/nvpmodel.conf."""
    exe = shutil.which(paths.nvpmodel_command[0]) if paths.nvpmodel_command else None
    if exe is not None:
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            r = subprocess.run([exe, *paths.nvpmodel_command[1:]], capture_output=True, text=True, timeout=10,
                               check=False)
            mode = parse_nvpmodel_query(r.stdout)
            if mode is not None:
                return mode
    status = _read(paths.nvpmodel_status)
    m = _NVP_STATUS.search(status or "")
    if m is None:
        return None
    mode_id = int(m.group(1))
    names = {int(i): n for i, n in _NVP_CONF.findall(_read(paths.nvpmodel_conf) or "")}
    return {"name": names.get(mode_id), "id": mode_id}


def _int_file(p: Path) -> int | None:
    text = _read(p)
    try:
        return int(text.strip()) if text is not None else None
    except ValueError:
        return None


def clock_state(sys_root: Path) -> dict[str, Any]:
    """Whether CPU and GPU clocks are pinned at their maximum (what ``jetson_clocks`` does).

    ``jetson_clocks`` raises every minimum to the maximum the power mode allows, so: CPU, every cpufreq
    policy's ``scaling_min_freq`` equals its ``scaling_max_freq``; GPU, the devfreq device of the integrated
    GPU (``*gv11b``, ``*ga10b``, ``*gp10b``, ``*gpu*``) has ``min_freq == max_freq``. ``locked`` is None when
    neither can be read.
    """
    cpus: list[bool] = []
    for pol in sorted((sys_root / "devices/system/cpu/cpufreq").glob("policy*")):
        lo, top = _int_file(pol / "scaling_min_freq"), _int_file(pol / "scaling_max_freq")
        if lo is not None and top is not None:
            cpus.append(lo >= top)
    gpus: list[bool] = []
    gpu_freq: int | None = None
    for dev in sorted((sys_root / "class/devfreq").glob("*")):
        if not re.search(r"gv11b|ga10b|gp10b|gpu", dev.name):
            continue
        lo, hi = _int_file(dev / "min_freq"), _int_file(dev / "max_freq")
        if lo is not None and hi is not None:
            gpus.append(lo >= hi)
            gpu_freq = _int_file(dev / "cur_freq")
    checked = cpus + gpus
    return {
        "locked": all(checked) if checked else None,
        "cpu_policies_locked": f"{sum(cpus)}/{len(cpus)}" if cpus else None,
        "gpu_locked": all(gpus) if gpus else None,
        "gpu_cur_freq_mhz": round(gpu_freq / 1e6) if gpu_freq else None,
    }


@dataclass(frozen=True)
class JetsonInfo:
    detected: bool
    model: str | None = None
    soc: str | None = None
    l4t: str | None = None
    jetpack: str | None = None
    nvpmodel: dict[str, Any] | None = None
    clocks: dict[str, Any] | None = None
    warnings: tuple[str, ...] = ()

    @property
    def clocks_locked(self) -> bool | None:
        return None if self.clocks is None else self.clocks.get("locked")

    def to_dict(self, tegrastats: dict[str, Any] | None = None) -> dict[str, Any]:
        """The ``machine.jetson`` record; the same keys on and off a Jetson."""
        return {
            "detected": self.detected,
            "model": self.model,
            "soc": self.soc,
            "l4t": self.l4t,
            "jetpack": self.jetpack,
            "nvpmodel": self.nvpmodel,
            "clocks_locked": self.clocks_locked,
            "clocks": self.clocks,
            "tegrastats": tegrastats,
            "warnings": list(self.warnings),
        }


UNLOCKED_WARNING = ("Jetson clocks are not locked: latencies depend on DVFS. Run `sudo nvpmodel -m <mode>` "
                    "and `sudo jetson_clocks` before benchmarking (docs/jetson.md).")


def detect_jetson(paths: JetsonPaths | None = None) -> JetsonInfo:
    """Read the Jetson facts; ``JetsonInfo(detected=False)`` anywhere else."""
    p = paths or JetsonPaths()
    release = _read(p.nv_tegra_release)
    compatible = _dt_strings(p.dt_compatible)
    tegra = [c for c in compatible if c.startswith("nvidia,tegra")]
    model_strings = _dt_strings(p.dt_model)
    model = model_strings[0].strip() if model_strings else None
    if release is None and not tegra:
        return JetsonInfo(detected=False)
    l4t = parse_nv_tegra_release(release) if release else None
    clocks = clock_state(p.sys)
    warnings = (UNLOCKED_WARNING,) if clocks["locked"] is False else ()
    return JetsonInfo(
        detected=True,
        model=model,
        soc=tegra[0].split(",", 1)[1] if tegra else None,
        l4t=l4t,
        jetpack=jetpack_for_l4t(l4t),
        nvpmodel=nvpmodel_mode(p),
        clocks=clocks,
        warnings=warnings,
    )


class JetsonRun:
    """What a benchmark run records about the Jetson it runs on: the facts read once at the start, and
    tegrastats sampled from :meth:`start` until :meth:`stop` (nothing is started off a Jetson)."""

    def __init__(self, info: JetsonInfo, sampler: TegrastatsSampler | None) -> None:
        self.info = info
        self._sampler = sampler
        self._summary: dict[str, Any] | None = None

    @classmethod
    def start(cls, paths: JetsonPaths | None = None) -> JetsonRun:
        p = paths or JetsonPaths()
        info = detect_jetson(p)
        sampler = None
        cmd = p.tegrastats_command
        if info.detected and cmd and shutil.which(cmd[0]) is not None:
            with contextlib.suppress(OSError):
                sampler = TegrastatsSampler(cmd)
        return cls(info, sampler)

    def stop(self) -> dict[str, Any] | None:
        """The tegrastats summary (None when nothing was sampled); later calls return the same."""
        if self._sampler is not None:
            self._summary = self._sampler.stop()
            self._sampler = None
        return self._summary


def lines_summary(lines: Iterable[str]) -> dict[str, Any]:
    """Summarise saved tegrastats output (``tegrastats --logfile``); unparsable lines are counted."""
    samples: list[TegrastatsSample] = []
    bad = 0
    for ln in lines:
        if not ln.strip():
            continue
        try:
            samples.append(parse_tegrastats(ln))
        except TegrastatsParseError:
            bad += 1
    out = summarize_tegrastats(samples)
    out["unparsed_lines"] = bad
    return out
