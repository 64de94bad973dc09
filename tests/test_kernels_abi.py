"""kernels/check_gpu.py drives the C ABI through ctypes: its struct must match the C header's layout
(checked here with the host C compiler, no GPU needed)."""

from __future__ import annotations

import ctypes
import shutil
import subprocess
from pathlib import Path
from types import ModuleType

import pytest
from conftest import load_script

ROOT = Path(__file__).resolve().parents[1]
FIELDS = ["q", "k", "v", "out", "q_stride", "k_stride", "v_stride", "o_stride", "batch", "heads", "seq_q",
          "seq_k", "head_dim", "causal", "scale", "key_mask", "bias", "bias_stride", "q_scale", "k_scale",
          "v_scale"]


@pytest.fixture(scope="module")
def check_gpu() -> ModuleType:
    pytest.importorskip("torch")
    return load_script(ROOT / "kernels" / "check_gpu.py", "check_gpu")


def test_ctypes_params_match_the_c_header(check_gpu: ModuleType, tmp_path: Path) -> None:
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        pytest.skip("no C compiler")
    body = "\n".join(f'  printf("{f} %zu\\n", offsetof(evk_attention_params, {f}));' for f in FIELDS)
    src = tmp_path / "abi.c"
    src.write_text('#include <stddef.h>\n#include <stdio.h>\n#include "edgevl_kernels.h"\nint main(void) {\n'
                   + body + '\n  printf("sizeof %zu\\n", sizeof(evk_attention_params));\n  return 0;\n}\n')
    exe = tmp_path / "abi"
    subprocess.run([cc, "-std=c99", "-Wall", "-Werror", f"-I{ROOT / 'kernels' / 'include'}", str(src), "-o",
                    str(exe)], check=True)
    got = dict(line.split() for line in subprocess.run([str(exe)], capture_output=True, text=True,
                                                       check=True).stdout.splitlines())
    params = check_gpu.Params
    assert [name for name, _ in params._fields_] == FIELDS
    for f in FIELDS:
        assert getattr(params, f).offset == int(got[f]), f
    assert ctypes.sizeof(params) == int(got["sizeof"])


def test_markdown_report_lists_failures_and_ratios(check_gpu: ModuleType, tmp_path: Path) -> None:
    checks = check_gpu.Checks()
    checks.add("attention_fp16", "b1 h2 s77", True, "max_abs_err", 4e-4, 2e-3)
    checks.add("quantize_rows_f32", "5x1", False, "mismatches", 3, "0 (bit-exact)")
    env = {"date": "2026-12-01T00:00:00+00:00", "gpu": "G", "compute_capability": "8.7", "driver": "540",
           "nvcc": "V12.6", "torch": "2.x", "cuda_runtime_torch": "12.6", "loadavg": [0.5, 0, 0]}

    class FakeLib:
        class lib:  # mimics ctypes.CDLL attribute access
            @staticmethod
            def evk_version() -> bytes:
                return b"edgevl-kernels 0.1.0"

    bench = [{"batch": 1, "heads": 12, "seq": 50, "head_dim": 64, "fused_ms": 0.01, "sdpa_flash_ms": 0.02,
              "unfused_ms": 0.05, "vs_sdpa_flash": 2.0, "vs_unfused": 5.0}]
    out = tmp_path / "r.md"
    check_gpu.write_md(out, env, checks, bench, FakeLib())
    text = out.read_text()
    assert checks.failed == 1 and "1/2 passed" in text and "**no**" in text
    assert "| 1 | 12 | 50 | 64 | 0.0100 | 0.0200 | 0.0500 | 2.00 | 5.00 |" in text
