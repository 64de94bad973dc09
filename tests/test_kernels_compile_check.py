"""The parsers behind kernels/tools/compile_check.py (the compile checks themselves run in .ci/run)."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

import pytest
from conftest import load_script

TOOL = Path(__file__).resolve().parents[1] / "kernels" / "tools" / "compile_check.py"


@pytest.fixture(scope="module")
def cc() -> ModuleType:
    return load_script(TOOL, "compile_check")


NVCC_LOG = """\
ptxas info    : 0 bytes gmem
ptxas info    : Compiling entry function '_ZN3evk13attn_fp16_mmaILi64EEEvNS_8AttnArgsE' for 'sm_80'
ptxas info    : Function properties for _ZN3evk13attn_fp16_mmaILi64EEEvNS_8AttnArgsE
    0 bytes stack frame, 0 bytes spill stores, 0 bytes spill loads
ptxas info    : Used 128 registers, used 1 barriers, 18432 bytes smem, 544 bytes cmem[0]
ptxas info    : Compiling entry function '_ZN3evk9attn_simtItLi128EEEvNS_8AttnArgsE' for 'sm_75'
ptxas info    : Function properties for _ZN3evk9attn_simtItLi128EEEvNS_8AttnArgsE
    24 bytes stack frame, 8 bytes spill stores, 8 bytes spill loads
ptxas info    : Used 255 registers, used 1 barriers, 50000 bytes smem, 544 bytes cmem[0]
ptxas info    : Compiling entry function '_ZN3evk13quantize_rowsIfEEvPKT_xiPaxPf' for 'sm_75'
ptxas info    : Function properties for _ZN3evk13quantize_rowsIfEEvPKT_xiPaxPf
    8 bytes stack frame, 0 bytes spill stores, 0 bytes spill loads
ptxas info    : Used 31 registers, used 1 barriers, 32 bytes smem, 400 bytes cmem[0]
"""


def test_parse_ptxas_reads_every_kernel_with_its_arch(cc: ModuleType) -> None:
    rep = cc.parse_ptxas(NVCC_LOG)
    assert [(r.arch, r.registers, r.smem, r.spill_stores, r.stack) for r in rep] == [
        (80, 128, 18432, 0, 0), (75, 255, 50000, 8, 24), (75, 31, 32, 0, 8)]
    assert "attn_simt" in rep[1].name


def test_resource_problems_flag_spills_smem_and_missing_arches(cc: ModuleType) -> None:
    rep = cc.parse_ptxas(NVCC_LOG)
    bad = cc.resource_problems(rep, (75, 80, 86))
    assert any("sm_75" in b and "spilled" in b for b in bad)
    assert any("50000 B shared memory" in b for b in bad)
    assert any(b.startswith("sm_86: no ptxas") for b in bad)
    assert not any("quantize_rows" in b for b in bad)  # a stack frame outside attention is allowed
    assert cc.resource_problems(rep[:1], (80,)) == []


def test_nvrtc_log_without_arch_lines_uses_the_default(cc: ModuleType) -> None:
    log = "\n".join(NVCC_LOG.splitlines()[2:5]).replace("'", "")
    rep = cc.parse_ptxas(log, default_arch=72)
    assert [(r.arch, r.registers) for r in rep] == [(72, 128)]


def test_unversioned_undefined_keeps_only_symbols_no_system_library_versions(cc: ModuleType) -> None:
    nm = """\
                 w _ITM_deregisterTMCloneTable
                 U memcpy@GLIBC_2.14
                 U _ZdlPvm@GLIBCXX_3.4.9
                 U getPluginRegistry
                 U cudaLaunchKernel
"""
    assert cc.unversioned_undefined(nm) == {"getPluginRegistry", "cudaLaunchKernel"}


def test_every_templated_kernel_is_named_for_nvrtc(cc: ModuleType) -> None:
    src = (TOOL.parents[1] / "src" / "evk_device.cuh").read_text()
    names = cc.nvrtc_name_expressions()
    for kernel in ("attn_fp16_mma", "attn_simt", "quantize_rows", "layernorm_quantize", "dequantize_rows"):
        assert f"{kernel}(" in src
        assert any(f"evk::{kernel}<" in n for n in names)
