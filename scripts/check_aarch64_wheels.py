#!/usr/bin/env python3
"""Check that edgevl installs on a Jetson (aarch64, glibc 2.35) from wheels alone, never from a source build.

Reads pyproject.toml at run time: the runtime dependencies plus every optional extra not listed in
``[tool.edgevl.aarch64-wheels] skip-extras`` (each skip carries its reason), and, for each Python
version in ``python-versions``, asks pip to resolve the whole set for aarch64 with
``--only-binary=:all:``. By default that is ``pip install --dry-run --report``: the resolver picks the
wheels ``pip download`` would, reading PEP 658 metadata instead of downloading them (seconds instead
of ~300 MB); ``--download`` runs ``pip download`` into a temporary folder instead. When a resolve
fails, each requirement is resolved alone (``--no-deps``) so every offending package is named, not
just the first one pip met. Exit status 1 on any failure, 2 on a bad pyproject.

Markers (``; python_version < "3.11"``) are evaluated here for the target interpreter and platform,
not the one running the check.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

try:
    import tomllib
except ImportError:  # Python 3.10: tomli is in the dev extra for it
    import tomli as tomllib

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

# Jetson Linux 36 (JetPack 6) is Ubuntu 22.04: glibc 2.35. pip does not expand a manylinux_2_X platform to the
# older tags it accepts, so each tag a wheel may carry is listed.
GLIBC_MINORS = (17, 24, 26, 27, 28, 31, 34, 35)
PLATFORMS = ("manylinux2014_aarch64", *(f"manylinux_2_{m}_aarch64" for m in GLIBC_MINORS))
CONFIG_TABLE = "aarch64-wheels"


class ConfigError(ValueError):
    """pyproject.toml lacks what the check needs."""


@dataclass(frozen=True)
class Item:
    requirement: str  # without its marker
    origin: str  # "runtime" or "extra NAME"

    @property
    def name(self) -> str:
        return str(canonicalize_name(Requirement(self.requirement).name))


@dataclass(frozen=True)
class Plan:
    python_versions: tuple[str, ...]
    extras: tuple[str, ...]
    skipped: dict[str, str]
    raw: tuple[tuple[str, str], ...]  # (requirement string as written, origin)


@dataclass(frozen=True)
class PipResult:
    returncode: int
    stdout: str
    stderr: str


Runner = Callable[[Sequence[str]], PipResult]


def load_plan(pyproject: Path) -> Plan:
    data = tomllib.loads(pyproject.read_text(encoding="utf-8"))
    project = data.get("project", {})
    deps = project.get("dependencies")
    if not isinstance(deps, list):
        raise ConfigError(f"{pyproject}: [project] dependencies missing")
    cfg = data.get("tool", {}).get("edgevl", {}).get(CONFIG_TABLE)
    if not isinstance(cfg, dict):
        raise ConfigError(f"{pyproject}: [tool.edgevl.{CONFIG_TABLE}] missing")
    versions = cfg.get("python-versions")
    skips = cfg.get("skip-extras", {})
    if not versions or not all(isinstance(v, str) for v in versions):
        raise ConfigError(f"{pyproject}: [tool.edgevl.{CONFIG_TABLE}] python-versions must list versions")
    if not isinstance(skips, dict) or not all(isinstance(r, str) and r.strip() for r in skips.values()):
        raise ConfigError(f"{pyproject}: skip-extras must map each skipped extra to its reason")
    optional: dict[str, list[str]] = project.get("optional-dependencies", {})
    unknown = sorted(set(skips) - set(optional))
    if unknown:
        raise ConfigError(f"{pyproject}: skip-extras names extras that do not exist: {', '.join(unknown)}")
    extras = tuple(e for e in optional if e not in skips)
    raw = [(r, "runtime") for r in deps]
    for extra in extras:
        raw += [(r, f"extra {extra}") for r in optional[extra]]
    return Plan(tuple(versions), extras, dict(skips), tuple(raw))


def target_environment(python_version: str) -> dict[str, str]:
    """The marker environment of CPython ``python_version`` on Linux aarch64."""
    return {
        "python_version": python_version,
        "python_full_version": f"{python_version}.0",
        "implementation_name": "cpython",
        "platform_python_implementation": "CPython",
        "implementation_version": f"{python_version}.0",
        "sys_platform": "linux",
        "platform_system": "Linux",
        "os_name": "posix",
        "platform_machine": "aarch64",
        "platform_release": "",
        "platform_version": "",
        "extra": "",
    }


def items_for(plan: Plan, python_version: str, project_name: str = "edgevl") -> list[Item]:
    """Requirements that apply to the target, markers dropped; the project's own extras are checked
    by name, so a self-reference (``edgevl[scale]``) is left out."""
    env = target_environment(python_version)
    seen: set[str] = set()
    out: list[Item] = []
    for text, origin in plan.raw:
        req = Requirement(text)
        if canonicalize_name(req.name) == canonicalize_name(project_name):
            continue
        if req.marker is not None and not req.marker.evaluate(env):
            continue
        req.marker = None
        key = str(req)
        if key not in seen:
            seen.add(key)
            out.append(Item(key, origin))
    return out


def pip_command(
    requirements: Sequence[str], python_version: str, workdir: Path, *, no_deps: bool, download: bool
) -> list[str]:
    cmd = [sys.executable, "-m", "pip"]
    if download:
        cmd += ["download", "-q", "-d", str(workdir / "wheels")]
    else:
        cmd += ["install", "-q", "--dry-run", "--ignore-installed", "--target", str(workdir / "target")]
        cmd += ["--report", str(workdir / "report.json")]
    cmd += ["--only-binary=:all:", "--implementation", "cp", "--python-version", python_version]
    for p in PLATFORMS:
        cmd += ["--platform", p]
    if no_deps:
        cmd.append("--no-deps")
    return [*cmd, *requirements]


_NOT_FOUND = re.compile(r"No matching distribution found for ([A-Za-z0-9._-]+)")
_CONFLICT = re.compile(r"(?:Cannot install|conflict is caused by)[^\n]*", re.IGNORECASE)


def blamed_in(stderr: str) -> str | None:
    """The package pip's error names, when it names one."""
    m = _NOT_FOUND.search(stderr)
    if m:
        return str(canonicalize_name(Requirement(m.group(1)).name))
    m = _CONFLICT.search(stderr)
    return m.group(0).strip() if m else None


def error_lines(stderr: str) -> str:
    lines = [ln for ln in stderr.splitlines() if ln.startswith("ERROR") or "conflict" in ln.lower()]
    return "; ".join(lines[-3:]) if lines else stderr.strip().splitlines()[-1] if stderr.strip() else ""


def run_pip(cmd: Sequence[str]) -> PipResult:
    p = subprocess.run(list(cmd), capture_output=True, text=True, check=False)
    return PipResult(p.returncode, p.stdout, p.stderr)


@dataclass(frozen=True)
class VersionOutcome:
    python_version: str
    ok: bool
    seconds: float
    resolved: tuple[str, ...]  # wheel file names (dry-run) or downloaded files
    failures: tuple[str, ...]  # one line per offending package


def check_version(
    plan: Plan, python_version: str, *, runner: Runner = run_pip, download: bool = False
) -> VersionOutcome:
    items = items_for(plan, python_version)
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="edgevl-aarch64-") as tmp:
        work = Path(tmp)
        res = runner(pip_command([i.requirement for i in items], python_version, work, no_deps=False,
                                 download=download))
        resolved: tuple[str, ...] = ()
        if res.returncode == 0:
            report = work / "report.json"
            if report.exists():
                installs = json.loads(report.read_text())["install"]
                resolved = tuple(sorted(i["download_info"]["url"].rsplit("/", 1)[-1] for i in installs))
            elif (work / "wheels").is_dir():
                resolved = tuple(sorted(p.name for p in (work / "wheels").iterdir()))
            bad_files = [f for f in resolved if not f.endswith(".whl")]
            failures = tuple(f"{f}: not a wheel" for f in bad_files)
            return VersionOutcome(python_version, not failures, time.perf_counter() - t0, resolved, failures)
        # the whole set failed: resolve each requirement alone to name every offender
        lines: list[str] = []
        for item in items:
            cmd = pip_command([item.requirement], python_version, work, no_deps=True, download=download)
            one = runner(cmd)
            if one.returncode != 0:
                lines.append(f"{item.name} ({item.origin}: {item.requirement}): no aarch64 wheel for Python "
                             f"{python_version} [{error_lines(one.stderr)}]")
        if not lines:  # every package has a wheel alone: a dependency of one of them, or a version conflict
            blamed = blamed_in(res.stderr)
            what = blamed if blamed is not None else "the set"
            lines.append(f"{what}: the full resolve failed for Python {python_version} "
                         f"[{error_lines(res.stderr)}]")
        return VersionOutcome(python_version, False, time.perf_counter() - t0, (), tuple(lines))


def main(argv: Sequence[str] | None = None, runner: Runner = run_pip) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    ap.add_argument("--pyproject", type=Path, default=Path(__file__).resolve().parents[1] / "pyproject.toml")
    ap.add_argument("--download", action="store_true", help="pip download the wheels instead of a dry run")
    ap.add_argument("--json", type=Path, help="write the outcome here")
    args = ap.parse_args(argv)
    try:
        plan = load_plan(args.pyproject)
    except (ConfigError, OSError, tomllib.TOMLDecodeError) as exc:
        print(f"check_aarch64_wheels: error: {exc}", file=sys.stderr)
        return 2
    skipped = ", ".join(f"{k} ({v})" for k, v in plan.skipped.items()) or "none"
    print(f"aarch64 wheels: runtime + extras [{', '.join(plan.extras)}]; skipped: {skipped}")
    outcomes = [check_version(plan, v, runner=runner, download=args.download) for v in plan.python_versions]
    for o in outcomes:
        native = [f for f in o.resolved if "aarch64" in f]
        state = "ok" if o.ok else "FAIL"
        print(f"aarch64 wheels: Python {o.python_version}: {state} in {o.seconds:.1f} s, {len(o.resolved)} "
              f"distributions ({len(native)} aarch64 binaries, the rest pure Python)")
        for line in o.failures:
            print(f"aarch64 wheels: FAIL {line}", file=sys.stderr)
    if args.json:
        args.json.write_text(json.dumps([o.__dict__ for o in outcomes], indent=1) + "\n")
    return 0 if all(o.ok for o in outcomes) else 1


if __name__ == "__main__":
    sys.exit(main())
