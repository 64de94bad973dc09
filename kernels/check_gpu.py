#!/usr/bin/env python3
"""The GPU half of kernels/check_gpu.sh (see there). Needs torch with CUDA and numpy only.

Correctness: every kernel of include/edgevl_kernels.h against the float64 / bit-exact references in
export/trt/numerics.py (loaded by path), outputs poisoned first (NaN for floats, -128 for int8 —
a value the quantiser never writes). Speed: fused attention vs torch SDPA (flash backend) and an
unfused torch baseline (S = softmax(QKᵀ·scale) materialised), CUDA events, median of repeats.
"""

from __future__ import annotations

import argparse
import ctypes
import datetime as dt
import functools
import importlib.util
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("evk_numerics", ROOT / "export" / "trt" / "numerics.py")
assert _spec is not None and _spec.loader is not None
nx = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(nx)

ATTN_TOL = 2e-3  # max |error| vs float64, fp16 in/out (docs/kernels.md)
EVK_ERR_SHAPE, EVK_ERR_ALIGN = -1, -2


class Params(ctypes.Structure):
    _fields_ = [("q", ctypes.c_void_p), ("k", ctypes.c_void_p), ("v", ctypes.c_void_p),
                ("out", ctypes.c_void_p),
                ("q_stride", ctypes.c_int64 * 3), ("k_stride", ctypes.c_int64 * 3),
                ("v_stride", ctypes.c_int64 * 3), ("o_stride", ctypes.c_int64 * 3),
                ("batch", ctypes.c_int32), ("heads", ctypes.c_int32), ("seq_q", ctypes.c_int32),
                ("seq_k", ctypes.c_int32), ("head_dim", ctypes.c_int32), ("causal", ctypes.c_int32),
                ("scale", ctypes.c_float), ("key_mask", ctypes.c_void_p), ("bias", ctypes.c_void_p),
                ("bias_stride", ctypes.c_int64 * 3), ("q_scale", ctypes.c_float), ("k_scale", ctypes.c_float),
                ("v_scale", ctypes.c_float)]


def bhsd_strides(t: torch.Tensor) -> tuple[int, int, int]:
    """(batch, head, token) element strides of a [b, h, s, d] view with a contiguous last axis."""
    assert t.stride(3) == 1
    return t.stride(0), t.stride(1), t.stride(2)


class Lib:
    def __init__(self, path: str) -> None:
        self.lib = ctypes.CDLL(path)
        for name in ("evk_attention_fp16", "evk_attention_fp16_simt", "evk_attention_int8"):
            getattr(self.lib, name).argtypes = [ctypes.POINTER(Params), ctypes.c_void_p]
        vp, i64, i32 = ctypes.c_void_p, ctypes.c_int64, ctypes.c_int32
        for name in ("evk_quantize_rows_f32", "evk_quantize_rows_f16"):
            getattr(self.lib, name).argtypes = [vp, i64, i32, i32, vp, i64, vp, vp]
        for name in ("evk_layernorm_quantize_f16", "evk_layernorm_quantize_f32"):
            getattr(self.lib, name).argtypes = [vp, i64, i32, i32, vp, vp, ctypes.c_float, vp, i64, vp, vp]
        for name in ("evk_dequantize_rows_f32", "evk_dequantize_rows_f16"):
            getattr(self.lib, name).argtypes = [vp, i64, i32, i32, vp, vp, i64, vp]
        self.lib.evk_version.restype = ctypes.c_char_p

    def stream(self) -> int:
        return int(torch.cuda.current_stream().cuda_stream)

    def attention(self, fn: str, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, out: torch.Tensor, *,
                  scale: float, causal: bool = False, key_mask: torch.Tensor | None = None,
                  bias: torch.Tensor | None = None,
                  qkv_scales: tuple[float, float, float] = (1, 1, 1)) -> int:
        p = Params()
        p.q, p.k, p.v, p.out = q.data_ptr(), k.data_ptr(), v.data_ptr(), out.data_ptr()
        p.q_stride[:] = bhsd_strides(q)
        p.k_stride[:] = bhsd_strides(k)
        p.v_stride[:] = bhsd_strides(v)
        p.o_stride[:] = bhsd_strides(out)
        p.batch, p.heads, p.seq_q, p.head_dim = q.shape
        p.seq_k = k.shape[2]
        p.causal, p.scale = int(causal), scale
        p.key_mask = key_mask.data_ptr() if key_mask is not None else None
        if bias is not None:
            p.bias = bias.data_ptr()
            p.bias_stride[:] = tuple(0 if bias.shape[i] == 1 else bias.stride(i) for i in range(3))
        p.q_scale, p.k_scale, p.v_scale = qkv_scales
        return int(getattr(self.lib, fn)(ctypes.byref(p), ctypes.c_void_p(self.stream())))


class Checks:
    def __init__(self) -> None:
        self.rows: list[dict[str, Any]] = []

    def add(self, kernel: str, case: str, ok: bool, metric: str, value: float, limit: float | str) -> None:
        self.rows.append({"kernel": kernel, "case": case, "ok": bool(ok), "metric": metric,
                          "value": float(value), "limit": limit})
        print(f"  {'ok  ' if ok else 'FAIL'} {kernel:28s} {case:48s} {metric}={value:.3g} (limit {limit})",
              flush=True)

    @property
    def failed(self) -> int:
        return sum(not r["ok"] for r in self.rows)


def _np(t: torch.Tensor) -> np.ndarray[Any, Any]:
    return t.detach().cpu().numpy()


def check_attention(lib: Lib, checks: Checks, gen: torch.Generator) -> None:
    cases = [  # (b, h, sq, sk, d, causal, mask, bias, layout)
        (2, 8, 77, 77, 64, True, False, False, "bhsd"),      # CLIP text
        (3, 12, 50, 50, 64, False, False, False, "bshd"),    # ViT-B/32, projection layout
        (2, 12, 197, 197, 64, False, True, False, "bhsd"),   # ViT-B/16 + padding
        (1, 16, 257, 257, 80, False, False, True, "bshd"),   # ViT-L/14-ish width, bias
        (4, 12, 256, 256, 32, False, True, True, "bhsd"),    # MiniLM
        (2, 4, 33, 33, 128, True, True, False, "bshd"),      # odd length, D=128
        (1, 2, 1, 1, 64, False, False, False, "bhsd"),       # single token
        (1, 2, 1, 257, 64, False, False, False, "bhsd"),     # one query (ViT class token)
        (1, 2, 1024, 1024, 64, True, True, True, "bhsd"),    # the maximum length
        (2, 3, 65, 130, 80, False, True, True, "bhsd"),      # seq_q != seq_k, tile edges
    ]
    dev = "cuda"
    for b, h, sq, sk, d, causal, masked, biased, layout in cases:
        q, k, v = (_rand_bhsd(b, h, n, d, layout, gen) for n in (sq, sk, sk))
        mask = None
        if masked:
            lens = torch.randint(1, sk + 1, (b,), generator=gen, device=dev)
            lens[0] = sk
            mask = (torch.arange(sk, device=dev)[None, :] < lens[:, None]).int().contiguous()
            if b > 1:
                mask[-1] = 0  # a fully masked batch row must give zeros, not NaN
        bias = torch.randn(b, 1, 1, sk, generator=gen, device=dev) if biased else None
        scale = d ** -0.5
        ref = nx.attention(_np(q), _np(k), _np(v), scale=scale, causal=causal,
                           key_mask=None if mask is None else _np(mask),
                           bias=None if bias is None else _np(bias))
        for fn in ("evk_attention_fp16", "evk_attention_fp16_simt"):
            out = torch.full((b, sq, h, d), float("nan"), device=dev, dtype=torch.half).transpose(1, 2) \
                if layout == "bshd" else torch.full((b, h, sq, d), float("nan"), device=dev, dtype=torch.half)
            rc = lib.attention(fn, q, k, v, out, scale=scale, causal=causal, key_mask=mask, bias=bias)
            torch.cuda.synchronize()
            err = nx.max_abs_error(_np(out), ref) if rc == 0 else float("inf")
            name = f"b{b} h{h} s{sq}x{sk} d{d}{' causal' if causal else ''}{' mask' if masked else ''}" \
                   f"{' bias' if biased else ''} {layout}"
            ok = rc == 0 and err <= ATTN_TOL
            checks.add(fn.replace("evk_", ""), name, ok, "max_abs_err", err, ATTN_TOL)
    # the int8 variant fed by Q/DQ scales
    for b, h, s, d, causal in ((2, 8, 77, 64, True), (2, 12, 197, 64, False), (1, 4, 50, 128, False),
                               (3, 2, 31, 80, False), (1, 12, 256, 32, False)):
        qi, ki, vi = (torch.randint(-127, 128, (b, h, s, d), generator=gen, device=dev, dtype=torch.int8)
                      for _ in range(3))
        sc = (1 / 127 * 2.0, 1 / 127 * 2.0, 1 / 127 * 1.5)
        ref = nx.attention_int8(_np(qi), _np(ki), _np(vi), *sc, scale=d ** -0.5, causal=causal)
        out = torch.full((b, h, s, d), float("nan"), device=dev, dtype=torch.half)
        rc = lib.attention("evk_attention_int8", qi, ki, vi, out, scale=d ** -0.5, causal=causal,
                           qkv_scales=sc)
        torch.cuda.synchronize()
        err = nx.max_abs_error(_np(out), ref) if rc == 0 else float("inf")
        checks.add("attention_int8", f"b{b} h{h} s{s} d{d}{' causal' if causal else ''}",
                   rc == 0 and err <= ATTN_TOL, "max_abs_err", err, ATTN_TOL)
    # argument errors come back as codes, nothing launched
    q = torch.zeros(1, 1, 8, 48, device=dev, dtype=torch.half)
    rc = lib.attention("evk_attention_fp16", q, q, q, q.clone(), scale=1.0)
    checks.add("attention_fp16", "head_dim 48 rejected", rc == EVK_ERR_SHAPE, "rc", rc, EVK_ERR_SHAPE)
    q = torch.zeros(1, 1, 1025, 64, device=dev, dtype=torch.half)
    rc = lib.attention("evk_attention_fp16", q, q, q, q.clone(), scale=1.0)
    checks.add("attention_fp16", "seq 1025 rejected", rc == EVK_ERR_SHAPE, "rc", rc, EVK_ERR_SHAPE)
    if torch.cuda.get_device_capability() >= (8, 0):
        base = torch.zeros(1, 1, 8, 68, device=dev, dtype=torch.half)[..., :64]  # token stride 68
        rc = lib.attention("evk_attention_fp16", base, base, base, torch.zeros(1, 1, 8, 64, device=dev,
                           dtype=torch.half), scale=1.0)
        checks.add("attention_fp16", "stride not a multiple of 8 rejected", rc == EVK_ERR_ALIGN, "rc", rc,
                   EVK_ERR_ALIGN)


def check_int8_rows(lib: Lib, checks: Checks, gen: torch.Generator) -> None:
    dev, s = "cuda", lib.stream()
    for rows, cols, dtype in ((77, 512, torch.float32), (197, 768, torch.float16), (5, 1, torch.float32),
                              (33, 1000, torch.float16), (8, 4096, torch.float32)):
        x = torch.randn(rows, cols, generator=gen, device=dev) * 3
        x[0] = 0  # an all-zero row: scale 1
        if rows > 2:
            x[1, 0] = 1e4  # one outlier row
        x = x.to(dtype)
        tag = "f32" if dtype == torch.float32 else "f16"
        q = torch.full((rows, cols), -128, device=dev, dtype=torch.int8)
        sc = torch.full((rows,), float("nan"), device=dev)
        rc = getattr(lib.lib, f"evk_quantize_rows_{tag}")(x.data_ptr(), cols, rows, cols, q.data_ptr(), cols,
                                                          sc.data_ptr(), s)
        torch.cuda.synchronize()
        rq, rs = nx.quantize_rows(_np(x))
        same = rc == 0 and np.array_equal(_np(q), rq) and np.array_equal(_np(sc), rs)
        checks.add(f"quantize_rows_{tag}", f"{rows}x{cols}", same, "mismatches",
                   float(np.sum(_np(q) != rq)) if rc == 0 else -1.0, "0 (bit-exact)")
        out = torch.full((rows, cols), float("nan"), device=dev, dtype=dtype)
        rc = getattr(lib.lib, f"evk_dequantize_rows_{tag}")(q.data_ptr(), cols, rows, cols, sc.data_ptr(),
                                                            out.data_ptr(), cols, s)
        torch.cuda.synchronize()
        want = nx.dequantize_rows(rq, rs).astype(np.float32 if tag == "f32" else np.float16)
        same = rc == 0 and np.array_equal(_np(out), want)
        checks.add(f"dequantize_rows_{tag}", f"{rows}x{cols}", same, "max_abs_err",
                   nx.max_abs_error(_np(out), want) if rc == 0 else float("inf"), "0 (bit-exact)")
        gamma = torch.randn(cols, generator=gen, device=dev)
        beta = torch.randn(cols, generator=gen, device=dev) * 0.1
        q.fill_(-128)
        sc.fill_(float("nan"))
        ln = getattr(lib.lib, f"evk_layernorm_quantize_{tag}")
        rc = ln(x.data_ptr(), cols, rows, cols, gamma.data_ptr(), beta.data_ptr(), ctypes.c_float(1e-5),
                q.data_ptr(), cols, sc.data_ptr(), s)
        torch.cuda.synchronize()
        lq, ls = nx.layernorm_quantize(_np(x), _np(gamma), _np(beta), 1e-5)
        dq = np.abs(_np(q).astype(np.int32) - lq.astype(np.int32))
        srel = float(np.max(np.abs(_np(sc).astype(np.float64) / ls - 1))) if rc == 0 else float("inf")
        ok = rc == 0 and int(dq.max()) <= 1 and float(np.mean(dq > 0)) <= 0.01 and srel <= 1e-5
        checks.add(f"layernorm_quantize_{tag}", f"{rows}x{cols}", ok, "max_code_diff/scale_rel",
                   float(dq.max()) + srel if rc == 0 else float("inf"), "<=1 code, <=1% codes, scale 1e-5")


def _rand_bhsd(b: int, h: int, s: int, d: int, layout: str, gen: torch.Generator) -> torch.Tensor:
    """fp16 N(0,1) as a [b, h, s, d] view: contiguous, or a [b, s, h, d] buffer transposed."""
    if layout == "bshd":
        return torch.randn(b, s, h, d, generator=gen, device="cuda").half().transpose(1, 2)
    return torch.randn(b, h, s, d, generator=gen, device="cuda").half()


def _sdpa_flash(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, scale: float) -> None:
    from torch.nn.attention import SDPBackend, sdpa_kernel

    with sdpa_kernel([SDPBackend.FLASH_ATTENTION]):
        torch.nn.functional.scaled_dot_product_attention(q, k, v, scale=scale)


def _unfused(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, scale: float) -> None:
    torch.softmax((q @ k.transpose(-1, -2)) * scale, dim=-1) @ v


def _time(fn: Any, reps: int) -> float:
    """Median milliseconds of ``fn`` over ``reps`` CUDA-event-timed calls, after warm-up."""
    for _ in range(3):
        fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(reps):
        a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        a.record()
        fn()
        b.record()
        b.synchronize()
        times.append(a.elapsed_time(b))
    return float(np.median(times))


def bench_attention(lib: Lib, gen: torch.Generator, budget_s: float) -> list[dict[str, Any]]:
    rows = []
    shapes = [(batch, heads, s, 64) for s, heads in ((50, 12), (77, 8), (197, 12), (257, 16))
              for batch in (1, 8, 32)] + [(batch, 12, 256, 32) for batch in (1, 32)]
    t_end = time.monotonic() + budget_s
    for b, h, s, d in shapes:
        if time.monotonic() > t_end:
            print(f"  bench: time budget reached, skipping from b{b} h{h} s{s}")
            break
        q, k, v = (torch.randn(b, h, s, d, generator=gen, device="cuda").half() for _ in range(3))
        out = torch.empty_like(q)
        scale = d ** -0.5
        reps = 50 if b * s < 4000 else 20

        fused = functools.partial(lib.attention, "evk_attention_fp16", q, k, v, out, scale=scale)
        flash = functools.partial(_sdpa_flash, q, k, v, scale)
        unfused = functools.partial(_unfused, q, k, v, scale)

        row: dict[str, Any] = {"batch": b, "heads": h, "seq": s, "head_dim": d}
        row["fused_ms"] = _time(fused, reps)
        try:
            row["sdpa_flash_ms"] = _time(flash, reps)
        except RuntimeError as e:  # flash backend unavailable for this GPU/shape
            row["sdpa_flash_ms"], row["sdpa_note"] = None, str(e).splitlines()[0][:120]
        row["unfused_ms"] = _time(unfused, reps)
        row["vs_sdpa_flash"] = (row["sdpa_flash_ms"] / row["fused_ms"]) if row["sdpa_flash_ms"] else None
        row["vs_unfused"] = row["unfused_ms"] / row["fused_ms"]
        print(f"  bench b{b:<2} h{h:<2} s{s:<3} d{d}: fused {row['fused_ms']:.4f} ms, "
              f"sdpa(flash) {row['sdpa_flash_ms'] or float('nan'):.4f} ms, "
              f"unfused {row['unfused_ms']:.4f} ms",
              flush=True)
        rows.append(row)
    return rows


def environment(ptxas: Path | None) -> dict[str, Any]:
    props = torch.cuda.get_device_properties(0)
    try:
        smi = subprocess.run(["nvidia-smi", "--query-gpu=driver_version,name", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=20).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        smi = ""
    try:
        nvcc = subprocess.run(["nvcc", "--version"], capture_output=True, text=True, timeout=20).stdout
        nvcc = nvcc.strip().splitlines()[-1]
    except (OSError, subprocess.SubprocessError, IndexError):
        nvcc = ""
    return {
        "gpu": props.name, "compute_capability": f"{props.major}.{props.minor}",
        "driver": smi.split(",")[0].strip() if smi else None, "cuda_runtime_torch": torch.version.cuda,
        "nvcc": nvcc, "torch": torch.__version__, "python": platform.python_version(),
        "host": platform.node(), "loadavg": list(os.getloadavg()),
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "ptxas_log": str(ptxas) if ptxas else None,
    }


def write_md(path: Path, env: dict[str, Any], checks: Checks, bench: list[dict[str, Any]], lib: Lib) -> None:
    lines = ["# GPU kernel check (kernels/check_gpu.sh)", "",
             f"{env['date']} on {env['gpu']} (sm_{env['compute_capability'].replace('.', '')}), driver "
             f"{env['driver']}, {env['nvcc']}, torch {env['torch']} (CUDA {env['cuda_runtime_torch']}), "
             f"load average {env['loadavg'][0]:.2f}. {lib.lib.evk_version().decode()}.", "",
             f"Numerical checks: {len(checks.rows) - checks.failed}/{len(checks.rows)} passed "
             "(outputs poisoned before every call).", "",
             "| kernel | case | metric | value | limit | ok |", "|---|---|---|---|---|---|"]
    for r in checks.rows:
        lines.append(f"| {r['kernel']} | {r['case']} | {r['metric']} | {r['value']:.3g} | {r['limit']} | "
                     f"{'yes' if r['ok'] else '**no**'} |")
    lines += ["", "Attention timing, fp16, median of CUDA-event timed calls, side by side in one run "
              "(ratio > 1: the fused kernel is faster). Target: ≥ 1.0× SDPA (flash) for S ≤ 257, D = 64 and "
              "≥ 2× unfused.", "",
              "| batch | heads | seq | d | fused ms | SDPA flash ms | unfused ms | × SDPA flash "
              "| × unfused |",
              "|---|---|---|---|---|---|---|---|---|"]
    for r in bench:
        fl = f"{r['sdpa_flash_ms']:.4f}" if r["sdpa_flash_ms"] else "n/a"
        vs = f"{r['vs_sdpa_flash']:.2f}" if r["vs_sdpa_flash"] else "n/a"
        lines.append(f"| {r['batch']} | {r['heads']} | {r['seq']} | {r['head_dim']} | {r['fused_ms']:.4f} | "
                     f"{fl} | {r['unfused_ms']:.4f} | {vs} | {r['vs_unfused']:.2f} |")
    path.write_text("\n".join(lines) + "\n")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lib", required=True)
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    ap.add_argument("--ptxas", type=Path, default=None)
    ap.add_argument("--bench-seconds", type=float, default=150.0)
    ap.add_argument("--no-bench", action="store_true")
    args = ap.parse_args()
    t0 = time.monotonic()
    lib = Lib(args.lib)
    gen = torch.Generator(device="cuda").manual_seed(0)
    env = environment(args.ptxas)
    print(f"check_gpu: {env['gpu']} sm_{env['compute_capability']}, driver {env['driver']}", flush=True)
    checks = Checks()
    check_attention(lib, checks, gen)
    check_int8_rows(lib, checks, gen)
    bench = [] if args.no_bench else bench_attention(lib, gen, args.bench_seconds)
    env["seconds"] = round(time.monotonic() - t0, 1)
    args.out.mkdir(parents=True, exist_ok=True)
    doc = {"environment": env, "checks": checks.rows, "failed": checks.failed, "attention_timing": bench}
    (args.out / "gpu_kernels.json").write_text(json.dumps(doc, indent=2) + "\n")
    write_md(args.out / "gpu_kernels.md", env, checks, bench, lib)
    n_ok = len(checks.rows) - checks.failed
    print(f"check_gpu: {n_ok}/{len(checks.rows)} checks passed in {env['seconds']} s; "
          f"wrote {args.out / 'gpu_kernels.json'} and .md")
    return 1 if checks.failed else 0


if __name__ == "__main__":
    sys.exit(main())
