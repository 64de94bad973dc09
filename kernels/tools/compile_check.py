#!/usr/bin/env python3
"""Compile checks for kernels/ that run on a machine without a GPU (CI runs this; it fails on any miss).

1. nvcc compiles the kernels for sm_75, 80, 86, 87, 89, 90 with every warning an error, and ptxas's
   resource report (-Xptxas -v) shows no stack frame / local-memory spills in any attention kernel
   and static shared memory within each target's 48 KiB static limit.
2. NVRTC 12.6 (PyPI nvidia-cuda-nvrtc-cu12, the CUDA 12 toolchain JetPack 6 uses) compiles the same
   device code for sm_72 (Xavier, which CUDA 13 dropped) and sm_87 (Orin), with the same report check.
3. The TensorRT plugin library compiles and links as a shared library against the TensorRT 10.3
   headers in ../shared/third_party or $EDGEVL_TRT_INCLUDE (skipped, with a message, when missing),
   once per TensorRT API it supports (10.x with both flavours; 8.6 and 8.5, IPluginV2DynamicExt only,
   through -DEDGEVL_TRT_API), with only getPluginRegistry/getLogger-style TensorRT entry points left
   undefined and the entry points of that API exported; the host self-test
   (tools/plugin_selftest.cpp: creator lists and versions of both flavours, field parsing,
   serialisation round trips, type rules, parameters handed to the kernels, error guards under
   failed allocations, errors through TensorRT's logger) builds and passes for each; and the plugin
   host code compiles for aarch64 with g++-aarch64-linux-gnu (skipped with a message when absent).

Usage: python kernels/tools/compile_check.py [--only nvcc,nvrtc,plugin] [--out DIR]
"""

from __future__ import annotations

import argparse
import ctypes
import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
KERNELS = ROOT / "kernels"
NVCC_ARCHS = (75, 80, 86, 87, 89, 90)
NVRTC_ARCHS = (72, 87)
STATIC_SMEM_LIMIT = 48 * 1024
HEAD_DIMS = (32, 64, 80, 128)
# the public TensorRT 10.3 headers beside the checkout (../shared/third_party), or $EDGEVL_TRT_INCLUDE (a git
# worktree elsewhere, a TensorRT install)
TRT_INCLUDE = Path(os.environ.get("EDGEVL_TRT_INCLUDE")
                   or ROOT.parent / "shared" / "third_party" / "tensorrt-10.3" / "include")
# TensorRT entry points the plugin library may leave for libnvinfer to provide at load time
TRT_UNDEFINED_OK = {"getPluginRegistry", "getLogger"}


@dataclass(frozen=True)
class KernelResources:
    """ptxas's report for one kernel on one target."""

    arch: int
    name: str
    registers: int
    stack: int
    spill_stores: int
    spill_loads: int
    smem: int


def parse_ptxas(log: str, default_arch: int | None = None) -> list[KernelResources]:
    """The per-kernel resource lines of ``ptxas -v`` output (nvcc or NVRTC log)."""
    out: list[KernelResources] = []
    arch, name = default_arch, None
    stack = stores = loads = 0
    for line in log.splitlines():
        m = re.search(r"Compiling entry function '([^']+)' for 'sm_(\d+)'", line)
        if m:
            name, arch = m.group(1), int(m.group(2))
            continue
        m = re.search(r"Function properties for (\S+)", line)
        if m:
            name = m.group(1)
            continue
        m = re.search(r"(\d+) bytes stack frame, (\d+) bytes spill stores, (\d+) bytes spill loads", line)
        if m:
            stack, stores, loads = (int(x) for x in m.groups())
            continue
        m = re.search(r"Used (\d+) registers", line)
        if m and name is not None and arch is not None:
            smem = re.search(r"(\d+) bytes smem", line)
            out.append(KernelResources(arch, name, int(m.group(1)), stack, stores, loads,
                                       int(smem.group(1)) if smem else 0))
            stack = stores = loads = 0
    return out


def resource_problems(report: list[KernelResources], archs: tuple[int, ...]) -> list[str]:
    """What breaks the rules: spills/stack in attention kernels, smem over the limit, a missing arch."""
    bad = []
    seen = {r.arch for r in report}
    for a in archs:
        if a not in seen:
            bad.append(f"sm_{a}: no ptxas resource report")
        if not any(r.arch == a and "attn" in r.name for r in report):
            bad.append(f"sm_{a}: no attention kernel in the report")
    for r in report:
        if "attn" in r.name and (r.spill_stores or r.spill_loads or r.stack):
            bad.append(f"sm_{r.arch} {r.name}: {r.stack} B stack, {r.spill_stores}/{r.spill_loads} B spilled")
        if r.smem > STATIC_SMEM_LIMIT:
            bad.append(f"sm_{r.arch} {r.name}: {r.smem} B shared memory > {STATIC_SMEM_LIMIT}")
    return bad


def nvcc_path() -> str | None:
    return shutil.which("nvcc") or (str(p) if (p := Path("/usr/local/cuda/bin/nvcc")).is_file() else None)


def cuda_home() -> Path | None:
    """The CUDA toolkit folder (headers, libcudart_static): $CUDA_HOME, /usr/local/cuda, or nvcc's parent."""
    cands = [os.environ.get("CUDA_HOME"), os.environ.get("CUDA_PATH"), "/usr/local/cuda"]
    nvcc = nvcc_path()
    if nvcc:
        cands.append(str(Path(nvcc).resolve().parents[1]))
    for c in cands:
        if c and (Path(c) / "include" / "cuda_runtime_api.h").is_file():
            return Path(c)
    return None


def check_nvcc(out: Path) -> list[str]:
    nvcc = nvcc_path()
    if nvcc is None:
        return ["nvcc not found (install the CUDA toolkit; CI machines have /usr/local/bin/nvcc)"]
    cmd = [nvcc, "-std=c++17", "-O3", f"-I{KERNELS / 'include'}", "-Xptxas", "-v", "-Werror", "all-warnings",
           "-Xcompiler", "-Wall,-Wextra,-Werror", "-c", str(KERNELS / "src" / "evk_kernels.cu"),
           "-o", str(out / "evk_kernels.o")]
    for a in NVCC_ARCHS:
        cmd[1:1] = ["-gencode", f"arch=compute_{a},code=sm_{a}"]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    log = proc.stdout + proc.stderr
    (out / "nvcc_ptxas.log").write_text(log)
    if proc.returncode != 0:
        return [f"nvcc failed (exit {proc.returncode}):\n{log[-4000:]}"]
    report = parse_ptxas(log)
    print(f"nvcc: sm_{', sm_'.join(map(str, NVCC_ARCHS))} compiled, {len(report)} kernel reports")
    _print_attention(report)
    return resource_problems(report, NVCC_ARCHS)


def _print_attention(report: list[KernelResources]) -> None:
    for r in report:
        if "attn" in r.name:
            print(f"  sm_{r.arch} {r.name}: {r.registers} regs, {r.smem} B smem, "
                  f"{r.spill_stores}/{r.spill_loads} B spills")


def nvrtc_library() -> Path | None:
    try:
        import nvidia.cuda_nvrtc as pkg  # type: ignore[import-not-found]
    except ImportError:
        return None
    libdir = Path(next(iter(pkg.__path__))) / "lib"
    found = sorted(libdir.glob("libnvrtc.so*"))
    return found[0] if found else None


def nvrtc_name_expressions() -> list[str]:
    names = [f"evk::attn_fp16_mma<{d}>" for d in HEAD_DIMS]
    for t in ("evk::half_bits", "signed char"):
        names += [f"evk::attn_simt<{t}, {d}>" for d in HEAD_DIMS]
    for t in ("float", "evk::half_bits"):
        names += [f"evk::quantize_rows<{t}>", f"evk::layernorm_quantize<{t}>", f"evk::dequantize_rows<{t}>"]
    return names


def check_nvrtc(out: Path) -> list[str]:
    lib_path = nvrtc_library()
    if lib_path is None:
        return ["NVRTC not installed: pip install 'nvidia-cuda-nvrtc-cu12==12.6.*' "
                "(the README test command does)"]
    lib = ctypes.CDLL(str(lib_path))
    major, minor = ctypes.c_int(), ctypes.c_int()
    lib.nvrtcVersion(ctypes.byref(major), ctypes.byref(minor))
    if (major.value, minor.value) != (12, 6):
        return [f"NVRTC {major.value}.{minor.value} loaded from {lib_path}; the check wants 12.6"]
    lib.nvrtcGetErrorString.restype = ctypes.c_char_p
    src = (KERNELS / "src" / "evk_device.cuh").read_bytes()
    problems: list[str] = []
    for arch in NVRTC_ARCHS:
        prog = ctypes.c_void_p()
        rc = lib.nvrtcCreateProgram(ctypes.byref(prog), src, b"evk_device.cu", 0, None, None)
        if rc:
            return [f"nvrtcCreateProgram: {lib.nvrtcGetErrorString(rc).decode()}"]
        for name in nvrtc_name_expressions():
            lib.nvrtcAddNameExpression(prog, name.encode())
        opts = [f"--gpu-architecture=sm_{arch}", "-std=c++17", "--ptxas-options=-v", "-default-device"]
        arr = (ctypes.c_char_p * len(opts))(*[o.encode() for o in opts])
        rc = lib.nvrtcCompileProgram(prog, len(opts), arr)
        size = ctypes.c_size_t()
        lib.nvrtcGetProgramLogSize(prog, ctypes.byref(size))
        buf = ctypes.create_string_buffer(size.value)
        lib.nvrtcGetProgramLog(prog, buf)
        log = buf.value.decode(errors="replace")
        (out / f"nvrtc_sm_{arch}.log").write_text(log)
        if rc:
            problems.append(f"NVRTC sm_{arch}: {lib.nvrtcGetErrorString(rc).decode()}\n{log[-4000:]}")
            continue
        if re.search(r"\bwarning\b", log):
            problems.append(f"NVRTC sm_{arch}: warnings\n{log[-4000:]}")
        cubin = ctypes.c_size_t()
        lib.nvrtcGetCUBINSize(prog, ctypes.byref(cubin))
        report = parse_ptxas(log, default_arch=arch)
        print(f"nvrtc {major.value}.{minor.value}: sm_{arch} compiled, cubin {cubin.value} B, "
              f"{len(report)} kernel reports")
        _print_attention(report)
        if cubin.value == 0:
            problems.append(f"NVRTC sm_{arch}: empty cubin")
        problems += resource_problems(report, (arch,))
        lowered = ctypes.c_char_p()
        for name in nvrtc_name_expressions():
            if lib.nvrtcGetLoweredName(prog, name.encode(), ctypes.byref(lowered)) or not lowered.value:
                problems.append(f"NVRTC sm_{arch}: {name} was not instantiated")
        lib.nvrtcDestroyProgram(ctypes.byref(prog))
    return problems


def plugin_sources() -> list[Path]:
    """Every plugin source: the families (attention/, rowops/), common/ and api/."""
    return sorted((KERNELS / "plugin").rglob("*.cpp"))


def _object_name(src: Path, variant: str, suffix: str = "o") -> str:
    return f"{src.parent.name}_{src.stem}.{variant}.{suffix}"


def unversioned_undefined(nm_output: str) -> set[str]:
    """Strong undefined symbols without a symbol version (``nm -D --undefined-only`` output).

    Everything libc/libstdc++/libgcc provide carries a version (``memcpy@GLIBC_2.14``); what is left
    unversioned must come from a library loaded before this one — for the plugin, libnvinfer.
    """
    out = set()
    for line in nm_output.splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[-2] == "U" and "@" not in parts[-1]:
            out.add(parts[-1])
    return out


PLUGIN_NAMES = ("EdgevlAttention", "EdgevlAttentionInt8", "EdgevlQuantizeRows", "EdgevlLayerNormQuantize",
                "EdgevlDequantizeRows")
# the version each flavour registers (TensorRT's convention: the IPluginV2 flavour keeps "1", IPluginV3
# is "2"); export/trt/rewrite.py's PLUGIN_VERSION must be the V2 one, which every supported TensorRT has
PLUGIN_VERSIONS = {"V2": "1", "V3": "2"}
SELFTEST = KERNELS / "tools" / "plugin_selftest.cpp"


@dataclass(frozen=True)
class PluginVariant:
    """One TensorRT API the library is compiled for: the 10.3 headers, with EDGEVL_TRT_API lowered for 8.x."""

    name: str
    defs: tuple[str, ...]
    v3: bool             # IPluginV3 creators and getCreators
    logger_finder: bool  # setLoggerFinder
    aarch64: bool        # also cross-compiled


PLUGIN_VARIANTS = (
    PluginVariant("trt10", (), v3=True, logger_finder=True, aarch64=True),
    PluginVariant("trt8.6", ("-DEDGEVL_TRT_API=806",), v3=False, logger_finder=True, aarch64=False),
    PluginVariant("trt8.5", ("-DEDGEVL_TRT_API=805",), v3=False, logger_finder=False, aarch64=True),
)


def expected_exports(variant: PluginVariant) -> dict[str, bool]:
    """Entry point -> whether the library built for this TensorRT exports it."""
    return {"getPluginCreators": True, "getCreators": variant.v3, "setLoggerFinder": variant.logger_finder}


def listed_creators(log: str) -> dict[str, list[tuple[str, ...]]]:
    """The self-test's creator lists.

    getPluginCreators -> [(name, version)], getCreators -> [(name, version, flavour)], in listing order.
    """
    return {
        "getPluginCreators": re.findall(r"^getPluginCreators: (\S+) (\S+)$", log, re.M),
        "getCreators": re.findall(r"^getCreators: (\S+) (\S+) (V2|V3)$", log, re.M),
    }


def expected_creators(variant: PluginVariant) -> dict[str, list[tuple[str, ...]]]:
    """What the library must list: each plugin's V2 creator ("1"), its V3 creator ("2") beside it on 10.x."""
    v2 = [(n, PLUGIN_VERSIONS["V2"]) for n in PLUGIN_NAMES]
    both = [(n, PLUGIN_VERSIONS[f], f) for n in PLUGIN_NAMES for f in ("V2", "V3")]
    return {"getPluginCreators": v2, "getCreators": both if variant.v3 else []}


def plugin_flags(cuda_inc: Path, plugin_dir: Path | None = None) -> list[str]:
    """g++ flags for the plugin sources: warnings as errors, TensorRT and CUDA headers as system headers."""
    return ["-std=c++17", "-O2", "-fPIC", "-Wall", "-Wextra", "-Werror", "-fvisibility=hidden",
            f"-I{KERNELS / 'include'}", f"-I{plugin_dir or KERNELS / 'plugin'}",
            "-isystem", str(TRT_INCLUDE), "-isystem", str(cuda_inc)]


def run_selftest(out: Path, cuda_inc: Path, variant: str, defs: list[str] | tuple[str, ...],
                 source: Path = SELFTEST) -> tuple[bool, str]:
    """Build and run the host self-test of the plugin logic; (passed, its output or the compile error)."""
    exe = out / f"plugin_selftest.{variant}"
    plugin_dir = source.parents[1] / "plugin"
    flags = [f for f in plugin_flags(cuda_inc, plugin_dir) if f not in ("-fPIC", "-fvisibility=hidden")]
    proc = subprocess.run(["g++", *flags, *defs, str(source), "-o", str(exe)], capture_output=True, text=True)
    if proc.returncode != 0:
        return False, f"self-test did not compile\n{proc.stderr[-4000:]}"
    run = subprocess.run([str(exe)], capture_output=True, text=True, timeout=60)
    return run.returncode == 0, run.stdout


def _kernel_object(out: Path, nvcc: str) -> tuple[Path, list[str]]:
    kobj = out / "evk_kernels_pic.o"
    if kobj.is_file():
        return kobj, []
    proc = subprocess.run([nvcc, "-std=c++17", "-O3", "-Xcompiler", "-fPIC", f"-I{KERNELS / 'include'}",
                           "-gencode", "arch=compute_80,code=sm_80", "-c",
                           str(KERNELS / "src" / "evk_kernels.cu"), "-o", str(kobj)],
                          capture_output=True, text=True)
    return kobj, ([] if proc.returncode == 0 else [f"nvcc -fPIC failed\n{proc.stderr[-4000:]}"])


def check_plugin_variant(out: Path, home: Path, nvcc: str, variant: PluginVariant) -> list[str]:
    """Compile, link and self-test the library for one TensorRT API (x86-64)."""
    flags = plugin_flags(home / "include")
    objs: list[str] = []
    for src in plugin_sources():
        obj = out / _object_name(src, variant.name)
        proc = subprocess.run(["g++", *flags, *variant.defs, "-c", str(src), "-o", str(obj)],
                              capture_output=True, text=True)
        if proc.returncode != 0:
            return [f"plugin ({variant.name}) x86-64: {src.relative_to(KERNELS)} failed\n"
                    f"{proc.stderr[-4000:]}"]
        objs.append(str(obj))
    kobj, problems = _kernel_object(out, nvcc)
    if problems:
        return problems
    lib = out / f"libedgevl_trt_plugin.{variant.name}.so"
    proc = subprocess.run(["g++", "-shared", "-o", str(lib), *objs, str(kobj), f"-L{home / 'lib64'}",
                           "-lcudart_static", "-ldl", "-lpthread", "-lrt"], capture_output=True, text=True)
    if proc.returncode != 0:
        return [f"plugin ({variant.name}) link failed\n{proc.stderr[-4000:]}"]
    nm = subprocess.run(["nm", "-D", "--undefined-only", str(lib)], capture_output=True, text=True,
                        check=True).stdout
    foreign = unversioned_undefined(nm)
    exported = subprocess.run(["nm", "-D", "--defined-only", str(lib)], capture_output=True, text=True,
                              check=True).stdout
    print(f"plugin ({variant.name}): {lib.name} linked for x86-64, TensorRT symbols left to libnvinfer: "
          f"{sorted(foreign) or 'none'}")
    if foreign - TRT_UNDEFINED_OK:
        extra = sorted(foreign - TRT_UNDEFINED_OK)
        problems.append(f"plugin ({variant.name}): unexpected undefined symbols {extra}")
    for sym, want in expected_exports(variant).items():
        if bool(re.search(rf"\b{sym}\b", exported)) != want:
            problems.append(f"plugin ({variant.name}): {sym} is {'not ' if want else ''}exported")
    ok, log = run_selftest(out, home / "include", variant.name, variant.defs)
    listed = listed_creators(log)
    print(f"plugin ({variant.name}): self-test {'passed' if ok else 'FAILED'}, "
          f"{len(listed['getPluginCreators'])} V2 creators, {len(listed['getCreators'])} in getCreators")
    if not ok:
        problems.append(f"plugin ({variant.name}): self-test failed\n{log[-4000:]}")
    elif listed != expected_creators(variant):
        problems.append(f"plugin ({variant.name}): creators {listed}, want {expected_creators(variant)}")
    return problems


def check_plugin(out: Path) -> list[str]:
    if not TRT_INCLUDE.is_dir():
        print(f"plugin: SKIPPED, {TRT_INCLUDE} not found (TensorRT 10.3 headers live in "
              "../shared/third_party, or set EDGEVL_TRT_INCLUDE; a fresh clone without shared/ cannot "
              "compile the plugin)")
        return []
    nvcc = nvcc_path()
    if nvcc is None:
        return ["nvcc not found: the plugin library needs the kernel objects"]
    home = cuda_home()
    if home is None:
        return ["CUDA headers not found (set CUDA_HOME)"]
    problems: list[str] = []
    for variant in PLUGIN_VARIANTS:
        problems += check_plugin_variant(out, home, nvcc, variant)
    cross = shutil.which("aarch64-linux-gnu-g++")
    if cross is None:
        print("plugin aarch64: SKIPPED, aarch64-linux-gnu-g++ not installed "
              "(apt-get install g++-aarch64-linux-gnu)")
        return problems
    flags = plugin_flags(home / "include")
    cross_variants = [v for v in PLUGIN_VARIANTS if v.aarch64]
    for variant in cross_variants:
        for src in plugin_sources():
            obj = out / _object_name(src, variant.name, "aarch64.o")
            proc = subprocess.run([cross, *flags, *variant.defs, "-c", str(src), "-o", str(obj)],
                                  capture_output=True, text=True)
            if proc.returncode != 0:
                problems.append(f"plugin ({variant.name}) aarch64: {src.relative_to(KERNELS)} failed\n"
                                f"{proc.stderr[-4000:]}")
                continue
            kind = subprocess.run(["readelf", "-h", str(obj)], capture_output=True, text=True).stdout
            if "AArch64" not in kind:
                problems.append(f"plugin aarch64: {obj.name} is not an aarch64 object ({kind.strip()})")
    if not problems:
        print(f"plugin aarch64: {len(plugin_sources())} sources x {len(cross_variants)} TensorRT APIs "
              f"({', '.join(v.name for v in cross_variants)}) compiled with {Path(cross).name}")
    return problems


def check_cmake(out: Path) -> list[str]:
    """The root CMakeLists.txt configures and builds for sm_87 (Orin), with the plugin where the
    TensorRT headers are present."""
    cmake = shutil.which("cmake")
    if cmake is None:
        print("cmake: SKIPPED, cmake not installed")
        return []
    build = out / "cmake-build"
    cfg = [cmake, "-S", str(ROOT), "-B", str(build), "-DCMAKE_CUDA_ARCHITECTURES=87", "-DEDGEVL_WERROR=ON"]
    if TRT_INCLUDE.is_dir():
        cfg.append(f"-DTensorRT_INCLUDE_DIR={TRT_INCLUDE}")
    if (nvcc := nvcc_path()) is not None:
        cfg.append(f"-DCMAKE_CUDA_COMPILER={nvcc}")
    for cmd in (cfg, [cmake, "--build", str(build), "-j2"]):
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            return [f"{' '.join(cmd[:2])} failed\n{(proc.stdout + proc.stderr)[-4000:]}"]
    want = ["libedgevl_kernels.so"] + (["libedgevl_trt_plugin.so"] if TRT_INCLUDE.is_dir() else [])
    missing = [w for w in want if not (build / w).is_file()]
    print(f"cmake: built {', '.join(w for w in want if w not in missing)} for sm_87")
    return [f"cmake did not produce {m}" for m in missing]


CHECKS = {"nvcc": check_nvcc, "nvrtc": check_nvrtc, "plugin": check_plugin, "cmake": check_cmake}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", default=",".join(CHECKS), help="comma-separated subset of " + ",".join(CHECKS))
    ap.add_argument("--out", type=Path, default=None, help="keep objects and logs here")
    args = ap.parse_args(argv)
    out = args.out or Path(tempfile.mkdtemp(prefix="edgevl-kernels-"))
    out.mkdir(parents=True, exist_ok=True)
    problems: list[str] = []
    for name in args.only.split(","):
        if name not in CHECKS:
            ap.error(f"unknown check {name!r}")
        problems += [f"[{name}] {p}" for p in CHECKS[name](out)]
    if args.out is None:
        shutil.rmtree(out, ignore_errors=True)
    for p in problems:
        print("FAIL", p, file=sys.stderr)
    print("compile checks:", "FAILED" if problems else "all passed")
    return 1 if problems else 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONDONTWRITEBYTECODE", "1")
    sys.exit(main())
